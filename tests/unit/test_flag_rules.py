"""The flag rules' declarations: one module per rule, listed by the catalog, readable without
the database layer."""

from __future__ import annotations

import subprocess
import sys

from nvadmin.analysis.flags.catalog import NAMES, RULES


def test_the_rule_names_and_thresholds_need_only_the_standard_library() -> None:
    """``nvadmin flags --rule`` offers the names before any database code is loaded."""
    code = (
        "import sys\n"
        "from nvadmin.analysis.flags.catalog import RULES\n"
        "assert all(r.thresholds is not None for r in RULES.values())\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded - set(sys.stdlib_module_names) - {'nvadmin', '__main__'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('nvadmin.')\n"
        "             and not m.startswith(('nvadmin.analysis.flags', 'nvadmin.db.taxonomy'))\n"
        "             and m not in ('nvadmin.analysis', 'nvadmin.db')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "[]"]


def test_each_rule_is_declared_once_in_its_own_module() -> None:
    assert tuple(RULES) == NAMES and len(NAMES) >= 8
    for name, rule in RULES.items():
        assert type(rule).__module__ == f"nvadmin.analysis.flags.rules.{name}"
    assert len({r.listed for r in RULES.values()}) == len(RULES)
    assert len({r.planting.order for r in RULES.values()}) == len(RULES)
    assert len({r.title for r in RULES.values()}) == len(RULES)


def test_every_explanation_states_the_defaults_it_is_given() -> None:
    for rule in RULES.values():
        values: dict[str, float | str] = dict(rule.values())
        assert values == {t.key: t.default for t in rule.thresholds}
        for t in rule.thresholds:
            assert t.minimum <= t.default <= t.maximum, (rule.name, t.key)
        if rule.uses_working_hours:
            values["hours"] = "07:00-19:00 America/Chicago"
        explained = rule.explain(values)
        assert "{" not in explained and explained.endswith("."), rule.name


def test_a_fraction_is_explained_as_a_percentage() -> None:
    spike = RULES["api_spike"]
    assert "20 % or more failed" in spike.explain(spike.values())
    assert "35 % or more" in spike.explain(spike.values({"api_spike": {"error_rate": 0.35}}))


def test_thresholds_that_are_not_numbers_are_the_defaults() -> None:
    """The thresholds come from a settings file a person can edit: text, null, true, NaN or a
    rule set to a number instead of its thresholds give the defaults; numbers out of range are
    kept within the limits."""
    burst = RULES["failed_sign_in_burst"]
    defaults = burst.values()
    for odd in ("abc", None, True, float("nan"), [5], {"n": 5}):
        assert burst.values({burst.name: {"failures": odd}}) == defaults, odd  # type: ignore[dict-item]
    for odd_rule in (5, "x", None, [1, 2]):
        assert burst.values({burst.name: odd_rule}) == defaults, odd_rule  # type: ignore[dict-item]
    assert burst.values({burst.name: {"failures": -3, "minutes": 0}}) == {
        "failures": 2,
        "minutes": 1,
    }
    assert burst.values({burst.name: {"failures": 1e300, "minutes": float("inf")}}) == {
        "failures": 1000,
        "minutes": 1440,
    }
