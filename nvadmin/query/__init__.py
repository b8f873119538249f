"""Querying the log: filters, search language, keyset paging, local time, workspaces."""
