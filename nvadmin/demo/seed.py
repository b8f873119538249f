"""Deterministic, realistic demo activity for the audit database.

Given the same plan (workspaces, events, seed, end date, days) the generator produces the same
events, byte for byte. Clinics sit in several time zones; team members (clinicians, front desk,
billing...) work shifts mostly on weekdays in working hours; they sign in, view charts, read
and update patient records (with before/after values), sign notes; API clients call endpoints
around the clock. A case worth finding is planted for every security flag rule, by the rule's
own module (:meth:`nvadmin.analysis.flags.rule.FlagRule.plant`, through :class:`_Planting`), and
listed in the database (meta key ``demo_planted``).

Nothing is written after the moment the seed runs (``SeedPlan.now``, read once; tests inject
it). The simulated days are local days in each clinic's zone, and the default ``end`` is
tomorrow (UTC), so the last day or two of a clinic's range may lie partly or wholly after now.
The seeder *cuts* that future out of the simulation rather than squeezing it into the past:

* a shift that would start less than :data:`MIN_SHIFT_HOURS` before now does not happen, a
  shift under way at now ends (signs out) just before it, and its share of the events shrinks
  with its length;
* API traffic on the day that holds now is weighted by the part of the day already gone, and a
  call drawn for a later hour gets a uniform earlier hour of that day; days wholly after now get
  no traffic;
* planted cases go only on days that ended before now.

The exact event count still holds because events are allocated over the shifts and days that
remain (the past gets the few events the future would have had). Compressing the future into
the elapsed part of the day was the alternative; it was rejected because it moves clinicians'
daytime work into the early morning and bunches the day's volume into a few hours, which is
exactly what the after-hours and volume-spike flags look for: the demo would show cases nobody
planted. When every local day of the range ended before now, none of this changes a single draw
from the random generator, so a past ``end`` gives byte-identical events whenever the seed runs.
An ``end`` later than tomorrow is refused: most of its range would be in the future.

Events are sealed with the chain writer's own encoding (:func:`nvadmin.audit.chain.seal`) so
every chain verifies, and written with COPY on PostgreSQL and batched inserts on SQLite, all
in one transaction: a seed either completes or leaves the database as it was.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, select

from nvadmin.analysis.flags.catalog import RULES
from nvadmin.analysis.flags.rule import DemoClient, DemoMember, FlagRule
from nvadmin.audit.chain import STORED_FIELDS, EventDraft, lock_head, seal, store_head
from nvadmin.db import migrate, partitions
from nvadmin.db.models import ActivityEvent, ApiClient, Meta, TeamMember, Workspace
from nvadmin.db.taxonomy import ActorType
from nvadmin.db.types import sqlite_timestamp
from nvadmin.demo import vocabulary as vocab
from nvadmin.errors import UserError

ProgressFn = Callable[[int, int], None]

# Working hours used by the generator (local time); normal shifts never leave them.
WORK_START, WORK_END = 7, 19
API_SHARE = 0.18
MIN_EVENTS_FOR_PLANTS = 8_000
# A shift on the day that holds "now" happens only if it began at least this long before now.
MIN_SHIFT_HOURS = 0.25
# Stand-in for "no --end given": the plan's end becomes the day after ``now`` (UTC).
_END_FROM_NOW = date.min


# A day's events are generated in memory before they are written (a few kB each with
# the simulation's state): this keeps a seed within about a gigabyte.
MAX_EVENTS_PER_DAY = 100_000


@dataclass(frozen=True)
class SeedPlan:
    workspaces: int = 3
    events: int = 150_000
    seed: int = 1
    end: date = _END_FROM_NOW  # day after the last generated day; default: tomorrow (UTC)
    days: int = 90
    plant: bool = True  # False gives a clean data set (no planted cases), for flag tests
    # No event is later than this; read once when the plan is made (tests inject it).
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("SeedPlan.now must be an aware datetime")
        object.__setattr__(self, "now", self.now.astimezone(UTC))
        tomorrow = self.now.date() + timedelta(days=1)
        if self.end == _END_FROM_NOW:
            object.__setattr__(self, "end", tomorrow)
        if self.end > tomorrow:
            raise UserError(
                f"--end: give {tomorrow.isoformat()} (tomorrow, UTC) or earlier; demo activity "
                "is never generated after the current time"
            )
        if not 1 <= self.workspaces <= 500:
            raise UserError("--workspaces must be between 1 and 500")
        if not 7 <= self.days <= 3650:
            raise UserError("--days must be between 7 and 3650")
        limit = self.workspaces * self.days * MAX_EVENTS_PER_DAY
        if not 0 <= self.events <= limit:
            raise UserError(
                f"--events must be between 0 and {limit:,} for {self.workspaces} workspace(s) "
                f"over {self.days} days (at most {MAX_EVENTS_PER_DAY:,} a day per workspace)"
            )


@dataclass(frozen=True)
class PlantedCase:
    """A case a reviewer (and the security flags) should find."""

    flag: str
    workspace: str
    subject: str  # member e-mail, IP address or API client name
    day: str  # local date, ISO
    events: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "flag": self.flag,
            "workspace": self.workspace,
            "subject": self.subject,
            "day": self.day,
            "events": self.events,
        }


@dataclass
class SeedReport:
    workspaces: list[str]
    events: int
    planted: list[PlantedCase]


@dataclass(frozen=True)
class _Member:
    id: int
    email: str
    name: str
    role: str
    factor: float
    home_ip: str
    browser: str


@dataclass(frozen=True)
class _Client:
    id: int
    name: str
    agent: str
    endpoints: tuple[str, ...]
    ip: str


def seed(
    engine: Engine,
    plan: SeedPlan,
    progress: ProgressFn | None = None,
    *,
    rules: Sequence[FlagRule] | None = None,
) -> SeedReport:
    """Fill an empty, migrated database with the plan's demo activity, with a planted case
    for each of ``rules`` (default: every flag rule)."""
    planted_rules = list(RULES.values()) if rules is None else rules
    migrate.require_head(engine)
    with engine.connect() as connection:
        existing = connection.execute(
            select(func.count()).select_from(Workspace).where(Workspace.is_system.is_(False))
        ).scalar_one()
        events = connection.execute(select(func.count()).select_from(ActivityEvent)).scalar_one()
    if existing or events:
        raise UserError(
            "the database already holds workspaces or activity: seed only into an empty "
            "database (nothing was changed)"
        )
    first_day = plan.end - timedelta(days=plan.days)
    partitions.ensure(
        engine,
        partitions.months_between(
            datetime.combine(first_day - timedelta(days=1), time(), UTC),
            datetime.combine(plan.end + timedelta(days=1), time(), UTC),
        ),
    )
    targets = _split(plan.events, plan.workspaces, random.Random(f"{plan.seed}:split"))
    report = SeedReport(workspaces=[], events=0, planted=[])
    done = 0
    with engine.begin() as connection:
        for index, target in enumerate(targets):
            sim = _ClinicSim(connection, plan, index, target, planted_rules)
            last_seq, last_hash = lock_head(connection, sim.workspace_id)
            sink = _sink(connection)
            for row in seal(sim.workspace_id, last_seq, last_hash, sim.events()):
                sink.add(row)
                done += 1
                last_seq, last_hash = row[1], row[-1]
                if progress and done % 5000 == 0:
                    progress(done, plan.events)
            sink.close()
            store_head(connection, sim.workspace_id, last_seq, last_hash)
            report.workspaces.append(sim.slug)
            report.planted.extend(sim.planted)
        report.events = done
        connection.execute(
            insert(Meta),
            [
                {
                    "key": "demo_plan",
                    "value": json.dumps(
                        {
                            "workspaces": plan.workspaces,
                            "events": plan.events,
                            "seed": plan.seed,
                            "end": plan.end.isoformat(),
                            "days": plan.days,
                            "now": plan.now.isoformat(),
                        }
                    ),
                },
                {"key": "demo_planted", "value": json.dumps([c.to_dict() for c in report.planted])},
            ],
        )
    if progress:
        progress(done, plan.events)
    return report


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """Split events over workspaces unevenly (clinics differ in size), summing exactly."""
    weights = [rng.uniform(0.6, 1.6) for _ in range(parts)]
    return _allocate(total, weights)


def _allocate(total: int, weights: list[float]) -> list[int]:
    """Largest-remainder allocation of ``total`` proportional to ``weights``."""
    if not weights:
        return []
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class _Sink:
    def add(self, row: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _CopySink(_Sink):
    """PostgreSQL: one COPY per workspace on the transaction's own connection."""

    def __init__(self, connection: Connection) -> None:
        raw = connection.connection.driver_connection
        assert raw is not None
        self._cursor = raw.cursor()
        columns = ", ".join(STORED_FIELDS)
        self._copy_cm = self._cursor.copy(f"COPY activity_events ({columns}) FROM STDIN")
        self._copy = self._copy_cm.__enter__()

    def add(self, row: tuple[Any, ...]) -> None:
        self._copy.write_row(row)

    def close(self) -> None:
        self._copy_cm.__exit__(None, None, None)
        self._cursor.close()


class _InsertSink(_Sink):
    """SQLite: batched executemany inside the open transaction."""

    BATCH = 20_000
    TIME_INDEX = STORED_FIELDS.index("occurred_at")

    def __init__(self, connection: Connection) -> None:
        self._cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        # Six indexes take turns on every insert; a page cache of 256 MiB (default 2 MiB)
        # keeps their hot pages in memory for the length of the seed.
        self._cursor.execute("PRAGMA cache_size = -262144")
        marks = ", ".join("?" for _ in STORED_FIELDS)
        self._sql = f"INSERT INTO activity_events ({', '.join(STORED_FIELDS)}) VALUES ({marks})"
        self._batch: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        i = self.TIME_INDEX
        self._batch.append((*row[:i], sqlite_timestamp(row[i]), *row[i + 1 :]))
        if len(self._batch) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        self._cursor.executemany(self._sql, self._batch)
        self._batch.clear()

    def close(self) -> None:
        self._flush()
        self._cursor.execute("PRAGMA cache_size = -2000")
        self._cursor.close()


def _sink(connection: Connection) -> _Sink:
    if connection.dialect.name == "postgresql":
        return _CopySink(connection)
    return _InsertSink(connection)


def _ip(rng: random.Random, first: int | None = None) -> str:
    a = first if first is not None else rng.choice((24, 50, 67, 73, 98, 104, 108, 174))
    return f"{a}.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(2, 254)}"


# -- the clinic: its workspace, team, API clients and patients ---------------------------------


@dataclass(frozen=True)
class _Clinic:
    workspace_id: int
    slug: str
    domain: str
    office_ip: str
    members: list[_Member]
    clients: list[_Client]
    patients: list[str]


def _open_clinic(
    connection: Connection,
    rng: random.Random,
    index: int,
    calendar: _Calendar,
    target: int,
) -> _Clinic:
    """The clinic's workspace row, team and API clients, written; its patients, named."""
    base_name, base_slug, zone = vocab.CLINICS[index % len(vocab.CLINICS)]
    round_ = index // len(vocab.CLINICS)
    name = base_name if round_ == 0 else f"{base_name} {round_ + 1}"
    slug = base_slug if round_ == 0 else f"{base_slug}-{round_ + 1}"
    workdays = sum(1 for d in calendar.days if d.weekday() < 5)
    team_size = max(6, min(400, round(target / max(1, workdays * 55))))
    workspace_id = int(
        connection.execute(
            insert(Workspace).returning(Workspace.id),
            {
                "slug": slug,
                "name": name,
                "timezone": zone,
                "work_day_start": WORK_START,
                "work_day_end": WORK_END,
                "is_system": False,
            },
        ).scalar_one()
    )
    domain = f"{slug}.example"
    office_ip = _ip(rng)
    members = _add_members(connection, rng, workspace_id, domain, team_size)
    clients = _add_clients(connection, rng, workspace_id)
    n_patients = max(150, min(60_000, target // (len(calendar.days) * 2) + team_size * 40))
    patients = [f"P{index:02d}{n:05d}" for n in range(1, n_patients + 1)]
    return _Clinic(workspace_id, slug, domain, office_ip, members, clients, patients)


def _add_members(
    connection: Connection, rng: random.Random, workspace_id: int, domain: str, size: int
) -> list[_Member]:
    roles = list(vocab.ROLES)
    shares = _allocate(size, [vocab.ROLES[r][0] for r in roles])
    # Every clinic has at least one physician and one front-desk member.
    for must in ("physician", "front_desk"):
        if shares[roles.index(must)] == 0:
            shares[roles.index(must)] = 1
    rows: list[dict[str, Any]] = []
    taken: set[str] = set()
    for role, count in zip(roles, shares, strict=True):
        for _ in range(count):
            while True:
                first, last = rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.LAST_NAMES)
                local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
                email = f"{_ascii(local)}@{domain}"
                if email not in taken:
                    taken.add(email)
                    break
            title = "Dr. " if role == "physician" else ""
            rows.append(
                {
                    "workspace_id": workspace_id,
                    "email": email,
                    "display_name": f"{title}{first} {last}",
                    "role": role,
                    "active": True,
                }
            )
    connection.execute(insert(TeamMember), rows)
    ids = dict(
        connection.execute(
            select(TeamMember.email, TeamMember.id).where(TeamMember.workspace_id == workspace_id)
        ).all()
    )
    return [
        _Member(
            id=ids[r["email"]],
            email=r["email"],
            name=r["display_name"],
            role=r["role"],
            factor=rng.uniform(0.6, 1.6),
            home_ip=_ip(rng),
            browser=rng.choice(vocab.BROWSERS),
        )
        for r in rows
    ]


def _add_clients(connection: Connection, rng: random.Random, workspace_id: int) -> list[_Client]:
    chosen = rng.sample(vocab.API_CLIENTS, k=rng.randint(1, len(vocab.API_CLIENTS)))
    clients = []
    for name, agent, endpoints in chosen:
        client_id = connection.execute(
            insert(ApiClient).returning(ApiClient.id),
            {
                "workspace_id": workspace_id,
                "name": name,
                "client_key": f"ck_{rng.getrandbits(64):016x}",
            },
        ).scalar_one()
        clients.append(_Client(int(client_id), name, agent, endpoints, _ip(rng, 34)))
    return clients


# -- the calendar: the clinic's local days, cut at now -----------------------------------------


class _Calendar:
    """The plan's days on the clinic's wall clock, and how much of each lies before now."""

    def __init__(self, plan: SeedPlan, zone: ZoneInfo) -> None:
        self.zone = zone
        self.days = [plan.end - timedelta(days=plan.days - i) for i in range(plan.days)]
        self.until = [self._until(day, plan.now) for day in self.days]

    def at(self, day: date, hour: float) -> datetime:
        seconds = round(hour * 3600 * 1_000_000) // 1  # microseconds since local midnight
        local = datetime.combine(day, time(), self.zone) + timedelta(microseconds=seconds)
        return local.astimezone(UTC)

    def _until(self, day: date, now: datetime) -> float:
        """Local hours of ``day`` that lie before ``now``: 24 for a day that has ended, 0 for
        one that has not begun; on the day that holds now, an hour below it maps through
        :meth:`at` to an instant no later than now (less one second, against rounding).

        :meth:`at` reads hours as wall-clock time. When clocks spring forward, the wall time
        of now runs ahead of the time elapsed since midnight and the skipped hour maps past
        it; when they fall back, the elapsed time runs ahead. The smaller of the two holds
        on both days."""
        local = now.astimezone(self.zone)
        if day < local.date():
            return 24.0
        if day > local.date():
            return 0.0
        wall = local.hour * 3600 + local.minute * 60 + local.second
        elapsed = int((now - self.at(day, 0.0)).total_seconds())
        return max(0.0, (min(wall, elapsed) - 1) / 3600)

    def late_weekdays(self) -> list[date]:
        """Weekdays in the last third of the range that ended before now (for planted
        cases)."""
        third = len(self.days) * 2 // 3
        return [
            d
            for d, until in zip(self.days[third:], self.until[third:], strict=True)
            if d.weekday() < 5 and until == 24
        ]


# -- events: shifts, clinical work and API traffic ---------------------------------------------


def _member_common(member: DemoMember, ip: str) -> dict[str, Any]:
    return {
        "actor_type": ActorType.MEMBER,
        "actor_id": member.id,
        "actor_email": member.email,
        "actor_name": member.name,
        "actor_role": member.role,
        "ip": ip,
        "user_agent": member.browser,
    }


class _Activity:
    """Draws a clinic's events: a member's shift, one clinical action, a day of API calls."""

    def __init__(self, rng: random.Random, clinic: _Clinic, calendar: _Calendar) -> None:
        self.rng = rng
        self.clinic = clinic
        self.calendar = calendar
        self.shifts_seen: dict[int, int] = {}

    def shift(
        self,
        day: date,
        member: _Member,
        count: int,
        start: float,
        end: float,
        schedule: list[str],
    ) -> list[EventDraft]:
        rng, at = self.rng, self.calendar.at
        # Each member's second shift is from home, so both of their usual addresses are
        # known from the first days on; later, one shift in ten is remote.
        shift_number = self.shifts_seen.get(member.id, 0)
        self.shifts_seen[member.id] = shift_number + 1
        remote = shift_number == 1 or (shift_number > 1 and rng.random() < 0.1)
        ip = member.home_ip if remote else self.clinic.office_ip
        session = f"s_{rng.getrandbits(64):016x}"
        common = _member_common(member, ip)
        drafts = []
        middle = count - 2
        typo = middle >= 1 and rng.random() < 0.03
        if typo:
            middle -= 1
            drafts.append(
                EventDraft(
                    occurred_at=at(day, start - 0.01),
                    action="auth.sign_in_failed",
                    outcome="failure",
                    failure_reason="wrong_password",
                    details={"attempted_email": member.email, "method": "password"},
                    **common,
                )
            )
        drafts.append(
            EventDraft(
                occurred_at=at(day, start),
                action="auth.sign_in",
                session_id=session,
                details={"method": rng.choice(("password", "sso")), "mfa": rng.random() < 0.7},
                **common,
            )
        )
        mix = vocab.ROLES[member.role][2]
        actions = [a for a, _ in mix]
        weights = [w for _, w in mix]
        times = sorted(rng.uniform(start + 0.005, end - 0.005) for _ in range(middle))
        chosen = rng.choices(actions, weights, k=middle)
        for hour, action in zip(times, chosen, strict=True):
            patient = rng.choice(schedule)
            drafts.append(self.clinical(day, hour, action, patient, session, common))
        drafts.append(
            EventDraft(
                occurred_at=at(day, end),
                action="auth.sign_out",
                session_id=session,
                details={"reason": rng.choice(("user", "user", "idle_timeout"))},
                **common,
            )
        )
        return drafts

    def clinical(
        self,
        day: date,
        hour: float,
        action: str,
        patient: str,
        session: str,
        common: dict[str, Any],
    ) -> EventDraft:
        rng = self.rng
        resource_type, resource_id = "patient_record", patient
        details: dict[str, Any] = {}
        if action == "chart.view":
            resource_type, resource_id = "chart", f"chart-{patient}"
            details = {"sections": sorted(rng.sample(vocab.CHART_SECTIONS, rng.randint(1, 4)))}
        elif action == "chart.print":
            resource_type, resource_id = "chart", f"chart-{patient}"
            details = {"pages": rng.randint(1, 12), "printer": "front-office"}
        elif action == "patient_record.read":
            details = {"fields": sorted(rng.sample(vocab.RECORD_FIELDS, rng.randint(1, 3)))}
        elif action == "patient_record.create":
            details = {"fields": ["demographics", "insurance", "phone"]}
        elif action == "patient_record.update":
            name = rng.choice(vocab.RECORD_FIELDS)
            before, after = _field_change(rng, name)
            details = {"changes": {name: {"after": after, "before": before}}}
        elif action == "encounter.note_signed":
            resource_type = "encounter"
            resource_id = f"E{rng.getrandbits(40):010x}"
            details = {"note_type": rng.choice(vocab.NOTE_TYPES), "words": rng.randint(80, 900)}
        return EventDraft(
            occurred_at=self.calendar.at(day, hour),
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            patient_id=patient,
            session_id=session,
            details=details,
            **common,
        )

    def api_day(
        self,
        day: date,
        count: int,
        *,
        client: DemoClient | None = None,
        hours: tuple[float, float] = (0.0, 24.0),
        error_rate: float = 0.012,
        until: float = 24.0,
    ) -> list[EventDraft]:
        rng = self.rng
        drafts = []
        for _ in range(count):
            c = client or rng.choice(self.clinic.clients)
            # Integrations run all day, busiest in clinic hours, with a nightly batch at 2 am.
            if hours != (0.0, 24.0):
                hour = rng.uniform(*hours)
            elif rng.random() < 0.15:
                hour = rng.uniform(2.0, 3.0)
            else:
                hour = min(23.99, max(0.0, rng.gauss(12.5, 3.2)))
            if hour >= until:  # only on the day that holds now: an hour that has not come yet
                hour = rng.uniform(0.0, until)
            drafts.append(self._api_call(day, hour, c, error_rate))
        return drafts

    def _api_call(self, day: date, hour: float, c: DemoClient, error_rate: float) -> EventDraft:
        rng = self.rng
        template = rng.choice(c.endpoints)
        patient = rng.choice(self.clinic.patients) if "{p}" in template else None
        method, path = template.split(" ", 1)
        path = path.replace("{p}", patient or "").replace("{e}", f"E{rng.getrandbits(40):010x}")
        roll = rng.random()
        if roll < error_rate * 0.2:
            status = rng.choice((500, 502, 503))
        elif roll < error_rate * 0.45:
            status = 429
        elif roll < error_rate:
            status = rng.choice((400, 401, 404))
        else:
            status = 201 if method == "POST" else 200
        failed = status >= 400
        return EventDraft(
            occurred_at=self.calendar.at(day, hour),
            action="api.request",
            actor_type=ActorType.API_CLIENT,
            actor_id=c.id,
            actor_name=c.name,
            outcome="failure" if failed else "success",
            failure_reason=f"HTTP {status}" if failed else None,
            resource_type="api_endpoint",
            resource_id=template,
            patient_id=patient,
            ip=c.ip,
            user_agent=c.agent,
            request_id=f"req_{rng.getrandbits(64):016x}",
            details={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": int(rng.lognormvariate(4.2, 0.6)),
                "bytes": rng.randint(200, 48_000),
            },
        )


def _schedule_shifts(
    rng: random.Random, calendar: _Calendar, members: list[_Member], total: int
) -> list[tuple[int, _Member, int, float, float]]:
    """``(day index, member, events, start hour, end hour)`` for ``total`` events of members'
    shifts: mostly weekdays in working hours, weighted by role and person."""
    candidates = []
    for day_index, day in enumerate(calendar.days):
        weekday = day.weekday()
        for member in members:
            if weekday < 5:
                works = rng.random() < 0.88
            elif weekday == 5:
                works = member.role in ("physician", "front_desk", "medical_assistant") and (
                    rng.random() < 0.12
                )
            else:
                works = rng.random() < 0.02
            if not works:
                continue
            start = rng.uniform(WORK_START, 9.5)
            length = rng.uniform(6.0, 9.4) if weekday < 5 else rng.uniform(3.0, 5.0)
            end = min(start + length, WORK_END - 0.02)
            weight = vocab.ROLES[member.role][1] * member.factor * rng.uniform(0.75, 1.25)
            if weekday >= 5:
                weight *= 0.5
            until = calendar.until[day_index]
            if until < 24:  # the day holds now (or lies after it): cut the future off
                if start > until - MIN_SHIFT_HOURS:
                    continue
                cut = min(end, until - 0.01)
                weight *= (cut - start) / (end - start)
                end = cut
            candidates.append((day_index, member, weight, start, end))
    if not candidates or total <= 0:
        return []
    # Each shift holds at least a sign-in and a sign-out; with few events, fewer shifts.
    keep = min(len(candidates), total // 2)
    if keep < len(candidates):
        candidates = sorted(rng.sample(candidates, keep), key=lambda c: c[0])
    if not candidates:
        return []
    extra = _allocate(total - 2 * len(candidates), [c[2] for c in candidates])
    shifts = [(d, m, 2 + x, s, e) for (d, m, _w, s, e), x in zip(candidates, extra, strict=True)]
    leftover = total - sum(s[2] for s in shifts)  # only when total is odd and tiny
    if leftover:
        d, m, c, s, e = shifts[-1]
        shifts[-1] = (d, m, c + leftover, s, e)
    return shifts


# -- planted cases -----------------------------------------------------------------------------


class _Planting:
    """The seeder's side of :class:`~nvadmin.analysis.flags.rule.DemoCases`: each flag rule plants
    its case through this, on days and members drawn once for all the cases."""

    def __init__(
        self,
        activity: _Activity,
        days: list[date],
        members: list[_Member],
        unknown: list[str],
    ) -> None:
        self.activity = activity
        self.rng = activity.rng
        clinic = activity.clinic
        self.slug = clinic.slug
        self.office_ip = clinic.office_ip
        self.members = clinic.members
        self.patients = clinic.patients
        self.clients = clinic.clients
        self._days = days
        self._members = members
        self._unknown = unknown
        self.planted_days: list[date] = []
        self._members_taken = 0
        self.by_day: dict[date, list[EventDraft]] = {}
        self.cases: list[PlantedCase] = []

    def take_days(self, count: int) -> list[date]:
        taken = self._days[len(self.planted_days) : len(self.planted_days) + count]
        if len(taken) < count:
            raise ValueError("a rule's demo case takes more days than its Planting declares")
        self.planted_days.extend(taken)
        return taken

    def take_members(self, count: int) -> list[_Member]:
        first = self._members_taken
        taken = self._members[first : first + count]
        if len(taken) < count:
            raise ValueError("a rule's demo case takes more members than its Planting declares")
        self._members_taken += count
        return taken

    def unknown_accounts(self, count: int) -> list[str]:
        return self._unknown[:count]

    def address(self, first_octet: int | None = None) -> str:
        return _ip(self.rng, first_octet)

    def session(self) -> str:
        return f"s_{self.rng.getrandbits(64):016x}"

    def sign_in(
        self, day: date, hour: float, member: DemoMember, ip: str, session: str, *, mfa: bool
    ) -> EventDraft:
        return EventDraft(
            occurred_at=self.activity.calendar.at(day, hour),
            action="auth.sign_in",
            session_id=session,
            details={"method": "password", "mfa": mfa},
            **_member_common(member, ip),
        )

    def failed_sign_ins(
        self, account: str, day: date, hour: float, count: int, ip: str, minutes: float
    ) -> list[EventDraft]:
        member = next((m for m in self.members if m.email == account), None)
        if member is not None:
            common, reason = _member_common(member, ip), "wrong_password"
        else:
            common = {
                "actor_type": ActorType.MEMBER,
                "actor_email": account,
                "actor_name": account,
                "ip": ip,
                "user_agent": "python-requests/2.32",
            }
            reason = "unknown_user"
        return [
            EventDraft(
                occurred_at=self.activity.calendar.at(day, hour + i * minutes / 60 / count),
                action="auth.sign_in_failed",
                outcome="failure",
                failure_reason=reason,
                details={"attempted_email": account, "method": "password"},
                **common,
            )
            for i in range(count)
        ]

    def chart_view(
        self, day: date, hour: float, patient: str, session: str, member: DemoMember, ip: str
    ) -> EventDraft:
        common = _member_common(member, ip)
        return self.activity.clinical(day, hour, "chart.view", patient, session, common)

    def api_calls(
        self,
        day: date,
        count: int,
        client: DemoClient,
        hours: tuple[float, float],
        error_rate: float,
    ) -> list[EventDraft]:
        return self.activity.api_day(day, count, client=client, hours=hours, error_rate=error_rate)

    def add(self, rule: FlagRule, subject: str, day: date, drafts: list[EventDraft]) -> None:
        self.by_day.setdefault(day, []).extend(drafts)
        self.also(rule, subject, day, len(drafts))

    def also(self, rule: FlagRule, subject: str, day: date, events: int) -> None:
        self.cases.append(PlantedCase(rule.name, self.slug, subject, day.isoformat(), events))


def _plant(activity: _Activity, calendar: _Calendar, rules: Sequence[FlagRule]) -> _Planting:
    """Every rule's demo case, in the rules' planting order, on distinct weekdays in the last
    third of the range that ended before now and on distinct members; none at all in a clinic
    too small for every case."""
    rng, clinic = activity.rng, activity.clinic
    ordered = sorted(rules, key=lambda r: (r.planting.order, r.name))
    days_needed = sum(r.planting.days for r in ordered)
    members_needed = sum(r.planting.members for r in ordered)
    late = calendar.late_weekdays()
    unknown = [e.format(domain=clinic.domain) for e in vocab.UNKNOWN_EMAILS]
    if len(late) < days_needed or len(clinic.members) < members_needed:
        return _Planting(activity, [], [], unknown)
    days = rng.sample(late, days_needed)
    members = rng.sample(clinic.members, members_needed)
    planting = _Planting(activity, days, members, unknown)
    for rule in ordered:
        rule.plant(planting)
    return planting


# -- one clinic --------------------------------------------------------------------------------


class _ClinicSim:
    """Generates one clinic's activity, day by day, in time order."""

    def __init__(
        self,
        connection: Connection,
        plan: SeedPlan,
        index: int,
        target: int,
        rules: Sequence[FlagRule],
    ) -> None:
        self.rng = random.Random(f"{plan.seed}:workspace:{index}")
        zone = ZoneInfo(vocab.CLINICS[index % len(vocab.CLINICS)][2])
        self.calendar = _Calendar(plan, zone)
        self.clinic = _open_clinic(connection, self.rng, index, self.calendar, target)
        self.activity = _Activity(self.rng, self.clinic, self.calendar)
        self.plan = plan
        self.target = target
        self.rules = rules
        self.planted: list[PlantedCase] = []

    @property
    def workspace_id(self) -> int:
        return self.clinic.workspace_id

    @property
    def slug(self) -> str:
        return self.clinic.slug

    def events(self) -> Iterator[EventDraft]:
        rng, calendar = self.rng, self.calendar
        planted: dict[date, list[EventDraft]] = {}
        if self.plan.plant and self.target >= MIN_EVENTS_FOR_PLANTS:
            planting = _plant(self.activity, calendar, self.rules)
            planted, self.planted = planting.by_day, planting.cases
        n_planted = sum(len(v) for v in planted.values())
        n_api = round(self.target * API_SHARE) if self.clinic.clients else 0
        n_members = self.target - n_planted - n_api
        if n_members < 2:  # too few for even one shift (sign-in + sign-out): all API calls
            n_api, n_members = n_api + n_members, 0
        shifts = _schedule_shifts(rng, calendar, self.clinic.members, n_members)
        api_per_day = _allocate(
            n_api,
            [
                (1.0 if d.weekday() < 5 else 0.35) * (until / 24 if until < 24 else 1.0)
                for d, until in zip(calendar.days, calendar.until, strict=True)
            ],
        )
        by_day: dict[int, list[tuple[_Member, int, float, float]]] = {}
        for day_index, member, count, start, end in shifts:
            by_day.setdefault(day_index, []).append((member, count, start, end))
        patients = self.clinic.patients
        for day_index, day in enumerate(calendar.days):
            todays = by_day.get(day_index, [])
            schedule = rng.sample(patients, k=min(len(patients), max(10, len(todays) * 9)))
            drafts: list[EventDraft] = []
            for member, count, start, end in todays:
                drafts.extend(self.activity.shift(day, member, count, start, end, schedule))
            drafts.extend(
                self.activity.api_day(day, api_per_day[day_index], until=calendar.until[day_index])
            )
            drafts.extend(planted.get(day, ()))
            drafts.sort(key=lambda d: d.occurred_at)
            yield from drafts


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _field_change(rng: random.Random, name: str) -> tuple[Any, Any]:
    if name == "phone":
        return (
            f"(555) 01{rng.randint(0, 9)}-{rng.randint(1000, 9999)}",
            f"(555) 01{rng.randint(0, 9)}-{rng.randint(1000, 9999)}",
        )
    if name == "address":
        streets = ("Oak St", "Pine Ave", "Elm Rd", "Calle Mayor", "Rue des Lilas", "Maple Dr")
        return (
            f"{rng.randint(1, 999)} {rng.choice(streets)}",
            f"{rng.randint(1, 999)} {rng.choice(streets)}",
        )
    if name == "email":
        return ("old.address@mail.example", "new.address@mail.example")
    if name == "allergies":
        options = ["penicillin", "latex", "peanuts", "sulfa", "iodine"]
        before = sorted(rng.sample(options, rng.randint(0, 2)))
        return before, sorted({*before, rng.choice(options)})
    if name == "insurance":
        plans = ("Aetna PPO", "Blue Cross HMO", "Medicare Part B", "Kaiser", "Cigna Open Access")
        return rng.choice(plans), rng.choice(plans)
    return (f"{name} v{rng.randint(1, 5)}", f"{name} v{rng.randint(6, 9)}")


def seed_demo(engine: Engine, plan: SeedPlan, progress: ProgressFn | None = None) -> SeedReport:
    """Seed, then add the demo staff accounts (whose passwords the sign-in dialog shows)."""
    from nvadmin.demo.accounts import create_demo_accounts

    report = seed(engine, plan, progress)
    create_demo_accounts(engine)
    return report
