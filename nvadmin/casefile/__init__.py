"""Encrypted offline case files (``.nvcase``).

A compliance reviewer takes the events of an investigation (any filter) to a laptop with no
network, and keeps browsing, reporting and verifying there. A case file holds, encrypted as a
whole (:mod:`nvadmin.casefile.container`):

* an SQLite database with nvadmin's own schema, so the same browser opens it unchanged: the
  matching events (``activity_events``), their workspaces, team members and API clients;
* ``case_chain_context``: the other events of each workspace's chain segment, from the first
  matching event to the first signed checkpoint after the last one, which verification needs
  (a hash chain can only be recomputed link by link) but the browser does not show;
* ``chain_checkpoints`` of that segment and ``case_public_keys`` (the keys that signed them);
* ``case_manifest``: what the file is (filter, who made it when, from which database, counts,
  segments, chain heads at creation).

Building happens in an in-memory SQLite database and opening deserialises the decrypted bytes
into one (``sqlite3.Connection.deserialize``): no plaintext ever touches the disk, and SQLite's
own temporary storage is kept in memory too.
"""
