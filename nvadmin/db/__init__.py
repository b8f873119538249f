"""The audit database: models, engine, migrations and partitions (no Qt widgets)."""
