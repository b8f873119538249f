"""CSV profiles: who opens the file decides its bytes and how its times are written.

Declared once here. The PostgreSQL ``COPY``, the SQLite lines and the Python path take every
time cell from the profile, so an export is the same bytes whichever path wrote it.

* **excel** (the export form's default: support sends files to clinics, who open them in
  Excel): UTF-8 with a BOM (without it Excel reads UTF-8 as the PC's code page), CRLF line
  ends, times as ``2026-10-19 23:59:24``, the form Excel (and LibreOffice Calc) turns into a
  date-time cell on opening. Whole seconds, cut, not rounded (an event stays in its second
  and its day): Excel holds no finer than a millisecond and does not read every fraction
  on opening, and the order of the rows keeps the events' order within a second. The offset
  is a cell of its own, ``UTC-07:00``: an offset alone (``-07:00``, ``+05:30``) is read as
  a time of day by spreadsheets. Times in a spreadsheet carry no zone, so the local and the
  UTC time are two plain date-times and the offset says how they relate.
* **data** (pandas, BI tools, scripts): UTF-8 without BOM, LF line ends, ISO 8601 instants
  with six fraction digits, fixed width: the local time ends with its offset
  (``2026-10-19T23:59:24.000000-07:00``) and the UTC time with ``Z``, so each cell is an
  exact instant (``pandas.to_datetime(..., utc=True)``, ``datetime.fromisoformat``). The
  event hash covers the time to the microsecond: only this profile can be checked row by
  row (``verify-export``), so the hash columns need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any


@dataclass(frozen=True, slots=True)
class Profile:
    key: str  # --profile, the manifest
    label: str  # the export form's choice
    bom: bool
    line_end: str  # "\r\n" or "\n"
    separator: str  # between the date and the time
    microseconds: bool  # six fraction digits; else whole seconds (cut)
    offset_in_local: bool  # the local time ends with its offset
    utc_suffix: str  # after the UTC time
    offset_prefix: str  # before the offset in its own column

    @property
    def line_end_name(self) -> str:
        return "CRLF" if self.line_end == "\r\n" else "LF"

    def clock(self, wall: datetime) -> str:
        """A wall-clock time (naive) as this profile writes it."""
        return wall.isoformat(self.separator, "microseconds" if self.microseconds else "seconds")

    def offset(self, offset: timedelta) -> str:
        """The offset column's cell."""
        return self.offset_prefix + iso_offset(offset)

    def local(self, instant: datetime, zone: tzinfo) -> str:
        """The local time column's cell for an aware instant."""
        local = instant.astimezone(zone)
        text = self.clock(local.replace(tzinfo=None))
        if self.offset_in_local:
            text += iso_offset(local.utcoffset() or timedelta(0))
        return text

    def utc(self, instant: datetime) -> str:
        """The UTC time column's cell for an aware instant."""
        return self.clock(instant.astimezone(UTC).replace(tzinfo=None)) + self.utc_suffix

    def describe(self) -> dict[str, Any]:
        """The manifest's account of the profile (in its ``csv`` field)."""
        example = datetime(2026, 10, 20, 6, 59, 24, 123456, tzinfo=UTC)
        zone = timedelta(hours=-7)
        return {
            "profile": self.key,
            "bom": self.bom,
            "line_terminator": self.line_end_name,
            "times": {
                "local": self.local(example, timezone(zone)),
                "utc_offset": self.offset(zone),
                "utc": self.utc(example),
                "precision": "microsecond" if self.microseconds else "second (cut)",
            },
        }


def iso_offset(offset: timedelta) -> str:
    """An UTC offset as ISO 8601 writes it, ``±HH:MM`` (UTC as ``+00:00``); local mean time's
    seconds follow (``-05:50:36``), as Python writes and reads them."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if secs:
        text += f":{secs:02d}"
    return text


EXCEL = Profile(
    key="excel",
    label="Excel: BOM, CRLF, date-times a spreadsheet reads (to the second)",
    bom=True,
    line_end="\r\n",
    separator=" ",
    microseconds=False,
    offset_in_local=False,
    utc_suffix="",
    offset_prefix="UTC",
)
DATA = Profile(
    key="data",
    label="Data: UTF-8, LF, ISO 8601 instants (to the microsecond) for pandas/BI",
    bom=False,
    line_end="\n",
    separator="T",
    microseconds=True,
    offset_in_local=True,
    utc_suffix="Z",
    offset_prefix="",
)
PROFILES: tuple[Profile, ...] = (EXCEL, DATA)
BY_KEY: dict[str, Profile] = {p.key: p for p in PROFILES}
# Support staff send files to clinics, who open them in Excel.
DEFAULT = EXCEL


def by_key(key: str) -> Profile:
    try:
        return BY_KEY[key]
    except KeyError:
        raise ValueError(
            f"unknown CSV profile {key!r} (the profiles are: {', '.join(BY_KEY)})"
        ) from None
