"""How long tests wait for background work."""

HANG_GUARD_MS = 120_000
"""How long a test waits for a signal, a condition or a worker by default. Only a guard
against a hang: background work scales with how busy the machine is, so a wait ends when the
awaited thing happens, never when a short deadline passes (pytest-qt's default is 5 s)."""
