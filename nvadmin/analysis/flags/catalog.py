"""Every flag rule: the ``RULE`` of each module in ``nvadmin/analysis/flags/rules/``, in the order
they are listed. Adding a rule is adding a module there; nothing else names it.

Importing this module loads only the standard library and the rule declarations (no database
layer): ``NAMES`` is what ``nvadmin flags --rule`` offers."""

from __future__ import annotations

import importlib
import pkgutil

from nvadmin.analysis.flags import rules as _package
from nvadmin.analysis.flags.rule import FlagRule


def _discover() -> dict[str, FlagRule]:
    found: list[FlagRule] = []
    for module_info in pkgutil.iter_modules(_package.__path__):
        if module_info.name.startswith("_"):  # shared pieces, not rules
            continue
        module = importlib.import_module(f"{_package.__name__}.{module_info.name}")
        rule = getattr(module, "RULE", None)
        if not isinstance(rule, FlagRule):
            raise TypeError(f"{module.__name__} declares no RULE (a FlagRule instance)")
        if rule.name != module_info.name:
            raise TypeError(f"{module.__name__} declares the rule {rule.name!r}")
        found.append(rule)
    found.sort(key=lambda r: (r.listed, r.name))
    return {r.name: r for r in found}


RULES: dict[str, FlagRule] = _discover()
NAMES: tuple[str, ...] = tuple(RULES)
