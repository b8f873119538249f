"""The one way nvadmin runs background work: see :mod:`nvadmin.workers.jobs`."""
