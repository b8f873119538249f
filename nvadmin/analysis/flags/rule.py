"""What a flag rule is, and what its demo case may ask of the demo seeder.

A rule is a subclass of :class:`FlagRule` with one instance, ``RULE``, in its own module under
``nvadmin/analysis/flags/rules/``: its name, title, explanation and thresholds are class
attributes; :meth:`FlagRule.find` evaluates it over one workspace (through
:class:`~nvadmin.analysis.flags.check.WorkspaceCheck`) and gives each finding the filter that
shows its events; :meth:`FlagRule.plant` adds a case worth finding to the demo data (through
:class:`DemoCases`, which the seeder implements).

This module, and every rule module, imports only the standard library at import time: the
command line offers the rule names before the database layer is loaded. The database-facing
types are named for the type checker only.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    import random
    from datetime import date

    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.audit.chain import EventDraft


@dataclass(frozen=True, slots=True)
class Threshold:
    key: str
    label: str
    default: float
    minimum: float
    maximum: float
    unit: str = ""
    decimals: int = 0
    percent: bool = False  # a fraction (0.2), stated as a percentage (20) in explanations

    def clamp(self, value: object) -> float:
        """``value`` kept within the limits; anything that is not a finite number (a setting
        edited by hand: text, null, true, NaN) is the default."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.default
        if math.isnan(value):
            return self.default
        return min(self.maximum, max(self.minimum, float(value)))


@dataclass(frozen=True, slots=True)
class Planting:
    """Where a rule's demo case goes in the seeder's sequence, and what it takes.

    Every case draws from its clinic's one random stream, so ``order`` is part of what makes a
    plan's data reproducible. ``days`` and ``members`` are the fresh days and team members the
    case takes from the seeder's pools (drawn once, before any case is planted): a clinic too
    small for all the cases together gets none."""

    order: int
    days: int = 0
    members: int = 0


class FlagRule(ABC):
    """One flag rule: declaration, evaluation, click-through filters and demo case."""

    name: ClassVar[str]  # stable: thresholds' settings, CSV rows, ``nvadmin flags --rule``
    title: ClassVar[str]
    explanation: ClassVar[str]  # str.format()-ed with the threshold values (and ``hours``)
    thresholds: ClassVar[tuple[Threshold, ...]] = ()
    listed: ClassVar[int]  # position in every list of rules (Insights, CSV, command line)
    planting: ClassVar[Planting]
    # The rule reads the workspace's working hours: its explanation names them (``{hours}``)
    # and the thresholds dialog offers to change them beside the rule's own thresholds.
    uses_working_hours: ClassVar[bool] = False

    def threshold(self, key: str) -> Threshold:
        return next(t for t in self.thresholds if t.key == key)

    def values(
        self, overrides: Mapping[str, Mapping[str, float]] | None = None
    ) -> dict[str, float]:
        """The thresholds in force: the defaults, changed by ``overrides[self.name]`` and kept
        within each threshold's limits (a value from a settings file is not trusted)."""
        given = (overrides or {}).get(self.name, {})
        if not isinstance(given, Mapping):
            given = {}
        return {t.key: t.clamp(given.get(t.key, t.default)) for t in self.thresholds}

    def explain(self, values: Mapping[str, float | str]) -> str:
        percent = {t.key for t in self.thresholds if t.percent}
        shown = {k: _number(float(v) * 100 if k in percent else v) for k, v in values.items()}
        return self.explanation.format(**shown)

    @abstractmethod
    def find(self, check: WorkspaceCheck) -> list[Finding]:
        """The rule's findings in one workspace and range, each with the filter that shows
        exactly the events it counts (the Insights window's click-through)."""

    @abstractmethod
    def plant(self, demo: DemoCases) -> None:
        """Add one case this rule should find to a clinic's demo activity."""


def _number(value: float | str) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


class DemoMember(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def home_ip(self) -> str: ...
    @property
    def browser(self) -> str: ...


class DemoClient(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def endpoints(self) -> tuple[str, ...]: ...
    @property
    def ip(self) -> str: ...


class DemoCases(Protocol):
    """What a rule's demo case may ask of the seeder, for one clinic. Hours are local hours of
    the day (``10.5`` is 10:30 in the clinic's zone); every random draw comes from the clinic's
    one stream, in call order."""

    @property
    def rng(self) -> random.Random: ...
    @property
    def office_ip(self) -> str: ...
    @property
    def members(self) -> Sequence[DemoMember]: ...
    @property
    def patients(self) -> Sequence[str]: ...
    @property
    def clients(self) -> Sequence[DemoClient]: ...
    @property
    def planted_days(self) -> Sequence[date]:
        """The days taken so far, in the order they were taken."""

    def take_days(self, count: int) -> list[date]:
        """Fresh weekdays (late in the range, ended before now) no other case has taken."""

    def take_members(self, count: int) -> Sequence[DemoMember]:
        """Team members no other case has taken."""

    def unknown_accounts(self, count: int) -> list[str]:
        """E-mail addresses at the clinic's domain that belong to no team member."""

    def address(self, first_octet: int | None = None) -> str:
        """A random IPv4 address."""

    def session(self) -> str:
        """A new session id."""

    def sign_in(
        self, day: date, hour: float, member: DemoMember, ip: str, session: str, *, mfa: bool
    ) -> EventDraft: ...

    def failed_sign_ins(
        self,
        account: str,
        day: date,
        hour: float,
        count: int,
        ip: str,
        minutes: float,
    ) -> list[EventDraft]:
        """``count`` failed password sign-ins for ``account`` (a member's e-mail, or an address
        no member has) from ``ip``, spread over ``minutes``."""

    def chart_view(
        self, day: date, hour: float, patient: str, session: str, member: DemoMember, ip: str
    ) -> EventDraft: ...

    def api_calls(
        self,
        day: date,
        count: int,
        client: DemoClient,
        hours: tuple[float, float],
        error_rate: float,
    ) -> list[EventDraft]: ...

    def add(self, rule: FlagRule, subject: str, day: date, drafts: list[EventDraft]) -> None:
        """Add the case's events, listed as a case of ``rule``."""

    def also(self, rule: FlagRule, subject: str, day: date, events: int) -> None:
        """List events already added as a case of another rule too."""
