"""Exports of the Activity Log (CSV, JSON Lines): the columns, the formats, the manifest and the
export service that ties them together (:mod:`nvadmin.export.service`). No Qt widgets here."""
