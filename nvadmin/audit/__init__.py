"""The Activity Log domain: event taxonomy, hash chain, queries and reports (no Qt widgets)."""
