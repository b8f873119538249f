"""Command-line subcommands. Each module has ``register(subparsers)`` setting ``run``."""
