"""The search bar language: what people type becomes exactly the filter they meant."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvadmin.query.filters import Term
from nvadmin.query.search import MAX_SEARCH_LENGTH, Search, SearchError, format_search, parse

CHICAGO = ZoneInfo("America/Chicago")


def test_the_documented_example() -> None:
    text = (
        "user:alice@clinic.example action:chart.view patient:P123 after:2025-03-01 "
        "before:2025-03-31 outcome:failure -category:api"
    )
    search = parse(text, CHICAGO)
    assert set(search.terms) == {
        Term("user", "alice@clinic.example"),
        Term("action", "chart.view"),
        Term("patient", "P123"),
        Term("outcome", "failure"),
        Term("category", "api_usage", negate=True),
    }
    # Whole days in the zone on screen: March 1 00:00 to April 1 00:00, Chicago time.
    assert search.start == datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
    assert search.end == datetime(2025, 4, 1, 5, 0, tzinfo=UTC)  # after the DST change
    event_filter = search.to_filter((4,))
    assert event_filter.workspace_ids == (4,)
    assert event_filter.end == search.end


def test_end_date_includes_the_whole_day() -> None:
    search = parse("on:2025-03-09", UTC)
    assert search.start == datetime(2025, 3, 9, tzinfo=UTC)
    assert search.end == datetime(2025, 3, 10, tzinfo=UTC)
    assert format_search(search, UTC) == "on:2025-03-09"


def test_exact_times_and_free_text() -> None:
    search = parse('after:2025-03-01T09:30 "lab results" -ip:10.0.0.1', UTC)
    assert search.start == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert search.text == "lab results"
    assert search.terms == (Term("ip", "10.0.0.1", negate=True),)


def test_same_field_twice_is_either() -> None:
    search = parse("user:a@x.example user:b@x.example", UTC)
    assert search.to_filter().values("user") == ["a@x.example", "b@x.example"]


def test_hiding_log_access_is_the_toggle() -> None:
    search = parse("-category:log", UTC)
    assert search.include_log_access is False
    assert search.terms == ()
    assert format_search(search) == "-category:log"


def test_relative_ranges_stay_relative() -> None:
    search = parse("last:24h category:failed", UTC)
    now = datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert search.to_filter(now=now).start == datetime(2025, 4, 30, 12, tzinfo=UTC)
    assert format_search(search) == "category:failed last:24h"


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("category:staff_accounts", "category:staff"),  # a KeyError once: no short name
        ("category:staff", "category:staff"),
        ("category:Chart_Views", "category:chart"),
        ("category:sign-in", "category:signin"),
    ],
)
def test_every_category_is_written_back_by_its_short_name(typed: str, written: str) -> None:
    search = parse(typed, UTC)
    assert format_search(search) == written
    assert parse(written, UTC).terms == search.terms


@pytest.mark.parametrize(
    ("text", "message", "spot"),
    [
        ("usr:alice", "unknown qualifier usr: (did you mean user:?)", "usr"),
        ("patient:P1 after:2025-13-01", "is not a date", "2025-13-01"),
        ("category:charts outcome:maybe", "outcome: is success or failure", "maybe"),
        ("action:chart.viewed", "did you mean chart.view?", "chart.viewed"),
        ('name:"Ana Ruiz', "never closed", '"Ana Ruiz'),
        ("category:nope", "unknown category", "nope"),
        ("after:2025-03-05 before:2025-03-01", "ends before it starts", "before:2025-03-01"),
        ("last:24h after:2025-03-01", "either last: or after:", "last:24h"),
        ("-chart", "only a qualifier can be excluded", "-chart"),
        ("user:", "needs a value", "user:"),
        ("last:soon", "hours or days", "soon"),
        ("weekday:mo", "weekday: is mon, tue", "mo"),
        ("hour:24", "hour: is an hour of the day", "24"),
        ("status:ok", "status: is an HTTP status", "ok"),
    ],
)
def test_errors_point_at_the_spot(text: str, message: str, spot: str) -> None:
    with pytest.raises(SearchError) as caught:
        parse(text, UTC)
    assert message in str(caught.value)
    assert text[caught.value.start : caught.value.end] == spot


def test_injection_text_is_just_a_value() -> None:
    search = parse('patient:"\'; drop table activity_events; --" ) OR 1=1 --', UTC)
    assert search.terms == (Term("patient", "'; drop table activity_events; --"),)
    assert search.text == ") OR 1=1 --"


values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12
).filter(lambda v: v.strip() == v and v.strip())
fields = st.sampled_from(["user", "name", "role", "patient", "ip", "resource", "session"])


@given(
    st.lists(st.tuples(fields, values, st.booleans()), max_size=5),
    values | st.just(""),
    st.booleans(),
)
def test_format_then_parse_is_identity(terms, text, log_access) -> None:  # type: ignore[no-untyped-def]
    search = Search(
        terms=tuple(Term(f, v.lower() if f == "user" and "@" in v else v, n) for f, v, n in terms),
        text=" ".join(text.split()),
        start=datetime(2025, 3, 1, 6, tzinfo=UTC),
        end=datetime(2025, 3, 2, 6, 0, 0, 1, tzinfo=UTC),
        include_log_access=log_access,
    )
    again = parse(format_search(search, CHICAGO), CHICAGO)
    assert set(again.terms) == set(search.terms)
    assert (again.text, again.start, again.end, again.include_log_access) == (
        search.text,
        search.start,
        search.end,
        search.include_log_access,
    )


def test_clock_and_status_qualifiers() -> None:
    search = parse("weekday:Tuesday hour:09 -status:none status:503", CHICAGO)
    assert set(search.terms) == {
        Term("weekday", "tue"),
        Term("hour", "9"),
        Term("status", "503"),
        Term("status", "none", negate=True),
    }
    # Read in the zone on screen, which the filter carries.
    assert search.to_filter().zone == "America/Chicago"
    assert set(parse(format_search(search, CHICAGO), CHICAGO).terms) == set(search.terms)


TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("text", "message", "spot"),
    [
        # Found by fuzzing: each raised OverflowError, ValueError or ran a wrong search.
        ("\x00", "cannot contain a NUL character", "\x00"),
        ("a\x00b", "cannot contain a NUL character", "\x00"),
        ("after:0001-01-01", "after:0001-01-01 is outside the days", "0001-01-01"),
        ("before:9999-12-31", "before:9999-12-31 is outside the days", "9999-12-31"),
        ("after:2025-01-01T00:00 before:9999-12-31T23:59", "outside the days", "9999-12-31T23:59"),
        ("hour:\u00b2", "hour: is an hour of the day", "\u00b2"),
        ('hour:"\u2070\u2074\u2075"', "hour: is an hour of the day", '"\u2070\u2074\u2075"'),
        ("status:\u00b2\u2070\u2070", "status: is an HTTP status", "\u00b2\u2070\u2070"),
        ("last:\u0663h", "last: takes hours or days", "\u0663h"),
        ("last:0h", "last: takes hours or days", "0h"),  # the rule `flags --last` uses too
        ('user:" "', "not a blank", '" "'),  # a blank start of a name is every member's
    ],
)
def test_hostile_values_are_parse_errors(text: str, message: str, spot: str) -> None:
    with pytest.raises(SearchError) as caught:
        parse(text, TOKYO)
    assert message in str(caught.value)
    assert text[caught.value.start : caught.value.end] == spot


def test_the_days_a_search_covers_are_accepted_to_their_ends() -> None:
    search = parse("after:1900-01-01 before:2999-12-31 hour:3", TOKYO)
    assert search.start is not None and search.end is not None
    assert search.to_filter().end == search.end


def test_an_overlong_search_is_refused_before_it_runs() -> None:
    text = "user:a@x.example " + "x" * 5000
    with pytest.raises(SearchError, match="too long: 5,017 characters, at most 500") as caught:
        parse(text, UTC)
    assert caught.value.start == MAX_SEARCH_LENGTH
    parse("x" * MAX_SEARCH_LENGTH, UTC)  # the limit itself is fine
