"""CSV exports of the Activity Log: the columns, the atomic file writer, the manifest and the
export service that ties them together (:mod:`nvadmin.export.service`). No Qt widgets here."""
