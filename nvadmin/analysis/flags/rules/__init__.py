"""One module per flag rule, named after the rule, each declaring ``RULE`` (see
:mod:`nvadmin.analysis.flags.rule`). Modules starting with ``_`` hold pieces several rules share."""
