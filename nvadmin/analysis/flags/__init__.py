"""Security monitoring: rule-based flags over a workspace's activity.

Each rule is a plain, explainable statement with thresholds (defaults, every one changeable),
evaluated by the database: counts, windows and baselines are ``GROUP BY``, self-joins and window
functions in SQL; Python only merges the few matching windows into findings. Every finding
carries the :class:`~nvadmin.query.filters.EventFilter` that shows its events, and its event count
is the count of exactly that filter, so "show these events" never disagrees with the number on
the flag.

One rule, one module: ``rules/<name>.py`` declares the rule's title, explanation and thresholds,
evaluates it, builds its findings' click-through filters and plants its case in the demo data
(:class:`~nvadmin.analysis.flags.rule.FlagRule`). :mod:`~nvadmin.analysis.flags.catalog` lists them
(importing it needs only the standard library, so the command line can offer the rule names
without loading the database layer); :mod:`~nvadmin.analysis.flags.evaluation` runs them and
:mod:`~nvadmin.analysis.flags.report` holds their findings.

This package's ``__init__`` imports nothing: a light module (the catalog) must stay light.
"""
