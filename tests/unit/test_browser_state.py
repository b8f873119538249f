"""The browser's state without a window: workspaces, zone, logging of views, presets, saved
searches and the workspace column, decided with no Qt at all."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from nvadmin.db.taxonomy import Category
from nvadmin.errors import AccessDenied
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.paging import Sort
from nvadmin.query.search import Search
from nvadmin.query.workspaces import WorkspaceInfo
from nvadmin.ui.browser.state import (
    FAILED_SIGN_INS,
    BrowserState,
    Refused,
    SavedSearch,
    patient_search,
    user_search,
    with_value,
)

ADMIN = StaffIdentity(1, "dana@n.example", "Dana", Role.ADMIN)
SUPPORT = StaffIdentity(2, "sam@n.example", "Sam", Role.SUPPORT)
PLATFORM = WorkspaceInfo(1, "platform", "Platform", "UTC", is_system=True)
RIVERSIDE = WorkspaceInfo(2, "riverside", "Riverside Family Clinic", "America/Chicago")
HARBOUR = WorkspaceInfo(3, "harbour", "Harbour Dental", "Europe/Berlin")
ODD = WorkspaceInfo(4, "odd", "Odd Zone Clinic", "Mars/Olympus_Mons")


def loaded(identity: StaffIdentity = ADMIN, *, read_only: bool = False) -> BrowserState:
    state = BrowserState(identity, read_only=read_only)
    state.set_workspaces([PLATFORM, RIVERSIDE, HARBOUR, ODD])
    return state


def test_the_state_module_imports_no_qt() -> None:
    code = (
        "import sys\n"
        "import nvadmin.ui.browser.state\n"
        "bad = [m for m in sys.modules if m.startswith('PySide6') or m == 'shiboken6']\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_first_choice_remembered_then_first_clinic_then_all() -> None:
    state = loaded()
    assert state.first_choice("3") == (True, HARBOUR)
    assert state.first_choice("") == (True, None)  # all workspaces, remembered
    assert state.first_choice("99") == (True, RIVERSIDE)  # gone: the first clinic
    assert state.first_choice("not a number") == (True, RIVERSIDE)
    assert loaded(SUPPORT).first_choice("") == (True, RIVERSIDE)  # may not browse all
    only_platform = BrowserState(SUPPORT)
    only_platform.set_workspaces([PLATFORM])
    assert only_platform.first_choice(None) == (False, None)
    only_platform_admin = BrowserState(ADMIN)
    only_platform_admin.set_workspaces([PLATFORM])
    assert only_platform_admin.first_choice(None) == (True, None)


@pytest.mark.parametrize("workspace", [RIVERSIDE, PLATFORM])
def test_a_case_file_of_one_workspace_has_no_all_workspaces(workspace: WorkspaceInfo) -> None:
    case = BrowserState(ADMIN, read_only=True)
    case.set_workspaces([workspace])
    assert not case.may_browse_all
    assert case.first_choice("") == (True, workspace)  # "all" remembered from the database
    assert case.target_of(EventFilter()) == workspace  # a filter over every workspace
    saved = SavedSearch("everything", "", None)
    case.open_saved(saved)
    assert case.workspace == workspace
    # The database itself, or a case file of several workspaces, still offers them all.
    database = BrowserState(ADMIN)
    database.set_workspaces([workspace])
    assert database.may_browse_all
    assert loaded(read_only=True).may_browse_all


def test_all_workspaces_only_for_admins() -> None:
    state = loaded(SUPPORT)
    with pytest.raises(Refused, match="Only admins"):
        state.choose(None)
    assert not state.chosen
    with pytest.raises(Refused, match="Only admins"):
        state.target_of(EventFilter())
    with pytest.raises(Refused, match="Workspace 42 does not exist"):
        state.target_of(EventFilter(workspace_ids=(42,)))
    assert state.target_of(EventFilter(workspace_ids=(3, 2))) == HARBOUR


def test_a_filter_over_several_workspaces_keeps_them_while_its_first_is_chosen() -> None:
    state = loaded()
    state.choose(RIVERSIDE, keep=(2, 3))
    assert state.workspace_ids() == (2, 3)
    assert state.several_workspaces()
    state.choose(HARBOUR)  # another workspace picked: only that one
    assert state.workspace_ids() == (3,)
    assert not state.several_workspaces()
    state.choose(None)
    assert state.workspace_ids() == ()
    assert state.several_workspaces()


def test_display_zone_follows_the_workspace_utc_and_unknown_zones() -> None:
    state = loaded()
    assert state.display_zone().key == "UTC"  # nothing chosen yet
    state.choose(RIVERSIDE)
    assert state.display_zone().key == "America/Chicago"
    state.times_in_utc = True
    assert state.display_zone().key == "UTC"
    state.times_in_utc = False
    state.choose(ODD)
    assert state.display_zone().key == "UTC"  # an unknown zone never stops the browser
    state.choose(None)
    assert state.display_zone().key == "UTC"


def test_a_view_is_logged_once_per_new_search_and_never_for_a_case_file() -> None:
    state = loaded()
    state.choose(RIVERSIDE)
    search = Search(terms=(Term("user", "ana@n.example"),))
    first = state.request(search)
    assert first.log_view and first.event_filter.workspace_ids == (2,)
    assert not state.request(search).log_view  # the same search again: not logged again
    assert state.request(search, log_view=True).log_view  # unlocking logs it again
    state.choose(HARBOUR)
    assert state.request(search).log_view  # another workspace is another view
    case = loaded(read_only=True)
    case.choose(RIVERSIDE)
    assert not case.request(search).log_view


def test_a_request_over_all_workspaces_is_refused_to_support() -> None:
    state = loaded(SUPPORT)
    state.workspace, state.chosen = None, True  # as a stale choice would leave it
    with pytest.raises(AccessDenied):
        state.request(Search())


def test_may_run_only_when_loaded_chosen_and_unlocked() -> None:
    state = BrowserState(ADMIN)
    assert not state.may_run()
    state.set_workspaces([RIVERSIDE])
    assert not state.may_run()
    state.choose(RIVERSIDE)
    assert state.may_run()
    state.locked = True
    assert not state.may_run()


def test_filter_by_value_narrows_and_exclude_adds_a_negated_term() -> None:
    search = Search(terms=(Term("user", "a@n.example"), Term("user", "b@n.example", True)))
    narrowed = with_value(search, "user", "c@n.example")
    # the other positive values of the field go (OR-ing would widen); the exclusion stays
    assert narrowed.terms == (Term("user", "b@n.example", True), Term("user", "c@n.example"))
    assert with_value(narrowed, "user", "c@n.example") == narrowed  # already there
    excluded = with_value(search, "ip", "10.0.0.9", negate=True)
    assert Term("ip", "10.0.0.9", True) in excluded.terms
    no_log = with_value(Search(), "category", Category.LOG_ACCESS.value, negate=True)
    assert no_log.include_log_access is False and no_log.terms == ()


def test_presets_and_searches_from_a_row() -> None:
    assert FAILED_SIGN_INS.search.last == "24h"
    assert user_search("ana@n.example", "Ana").terms == (Term("user", "ana@n.example"),)
    assert user_search(None, "Ana Lee").terms == (Term("name", "Ana Lee"),)
    assert patient_search("P-1").terms == (Term("patient", "P-1"),)


def test_a_saved_search_keeps_text_workspace_and_sort_and_opens_as_saved() -> None:
    state = loaded()
    state.choose(RIVERSIDE)
    state.sort = Sort("member", descending=False)
    search = Search(terms=(Term("patient", "P-1"),), last="24h")
    saved = state.saved("patient", search)
    assert saved == SavedSearch("patient", "patient:P-1 last:24h", 2, "member", False)
    other = loaded()
    other.choose(HARBOUR, keep=(3, 2))
    assert other.open_saved(saved) == replace(search, zone="America/Chicago")
    assert other.workspace == RIVERSIDE and other.extra_workspaces == ()
    assert other.sort == Sort("member", descending=False)


def test_saved_searches_that_cannot_open_say_why() -> None:
    state = loaded(SUPPORT)
    state.choose(HARBOUR)
    with pytest.raises(Refused, match="covers all workspaces"):
        state.open_saved(SavedSearch("all", "", None))
    with pytest.raises(Refused, match="workspace 42, which does not exist"):
        state.open_saved(SavedSearch("gone", "", 42))
    assert state.workspace == HARBOUR  # nothing changed
    with pytest.raises(Refused, match="cannot be read"):
        state.open_saved(SavedSearch("bad", "after:yesterday-ish", 2))
    unknown_sort = state.open_saved(SavedSearch("odd sort", "", 2, "shoe size"))
    assert unknown_sort.terms == () and state.sort == Sort()


def test_the_workspace_column_comes_for_several_workspaces_and_goes_again() -> None:
    state = loaded()
    state.choose(RIVERSIDE)
    assert state.workspace_column(hidden=True) is None  # one workspace: left hidden
    state.choose(None)
    assert state.workspace_column(hidden=True) is False  # shown for all workspaces
    assert state.workspace_column(hidden=False) is None
    state.choose(RIVERSIDE)
    assert state.workspace_column(hidden=False) is True  # hidden again
    # shown by the staff member themselves: it stays when back to one workspace
    state.choose(None)
    assert state.workspace_column(hidden=False) is None
    state.choose(HARBOUR)
    assert state.workspace_column(hidden=False) is None


def test_the_saved_text_is_read_in_the_saved_workspace_zone() -> None:
    state = loaded()
    state.choose(HARBOUR)  # Berlin
    saved = state.saved("day", Search(start=datetime(2026, 3, 1, 23, tzinfo=UTC)))
    assert saved.text.startswith("after:2026-03-02")  # midnight in Berlin
    other = loaded()
    other.choose(RIVERSIDE)
    assert other.open_saved(saved).start == datetime(2026, 3, 1, 23, tzinfo=UTC)
