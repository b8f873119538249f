"""Encrypted offline case files (``.nvcase``).

A compliance reviewer takes the events of an investigation (any filter) to a laptop with no
network, and keeps browsing, reporting and verifying there. A case file is an SQLCipher
database, encrypted page by page (:mod:`nvadmin.casefile.encrypted`; version 1 files,
:mod:`nvadmin.casefile.container`, are still read), holding:

* an SQLite database with nvadmin's own schema, so the same browser opens it unchanged: the
  matching events (``activity_events``), their workspaces, team members and API clients;
* ``case_chain_context``: the other events of each workspace's chain segment, from the first
  matching event to the first signed checkpoint after the last one, which verification needs
  (a hash chain can only be recomputed link by link) but the browser does not show;
* ``chain_checkpoints`` of that segment and ``case_public_keys`` (the keys that signed them);
* ``case_manifest``: what the file is (filter, who made it when, from which database, counts,
  segments, chain heads at creation).

Building writes the encrypted pages straight into the destination's temporary file, and
opening reads the file in place, one authenticated page at a time: the plaintext database
never exists whole, in memory or on disk, and memory does not grow with the case's size.
SQLite's own temporary storage is kept in memory (SQLCipher does not encrypt it).
"""
