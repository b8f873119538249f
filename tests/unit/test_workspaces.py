"""The workspace repository: one shape, found by slug or id, one clear error, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, update

from nvadmin.db.models import SYSTEM_WORKSPACE_SLUG, Workspace
from nvadmin.errors import UserError
from nvadmin.query import workspaces
from nvadmin.query.workspaces import UnknownWorkspace, WorkspaceInfo
from tests.factories import add_workspace


@pytest.fixture
def clinics(engine: Engine) -> dict[str, int]:
    return {
        "riverside": add_workspace(engine, "riverside", "Riverside Family Clinic"),
        "oak": add_workspace(engine, "oak", "Oak Street Pediatrics", "Europe/Paris"),
        "alder": add_workspace(engine, "alder", "Alder Dental", "Asia/Kolkata"),
    }


def test_a_workspace_by_slug_has_every_fact_in_one_shape(
    engine: Engine, clinics: dict[str, int]
) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(Workspace)
            .where(Workspace.id == clinics["oak"])
            .values(work_day_start=8, work_day_end=18)
        )
    oak = workspaces.by_slug(engine, "oak")
    assert isinstance(oak, WorkspaceInfo)
    assert (oak.id, oak.slug, oak.name, oak.timezone, oak.is_system) == (
        clinics["oak"],
        "oak",
        "Oak Street Pediatrics",
        "Europe/Paris",
        False,
    )
    assert (oak.work_day_start, oak.work_day_end) == (8, 18)
    assert oak.hours_text() == "08:00-18:00 Europe/Paris"
    assert oak.label == "Oak Street Pediatrics (oak)"
    assert oak.created_at is not None and oak.created_at.tzinfo is not None
    assert oak.created_at <= datetime.now(UTC)
    assert workspaces.by_id(engine, clinics["oak"]) == oak
    assert workspaces.find(engine, "oak") == workspaces.find(engine, clinics["oak"]) == oak


def test_an_unknown_slug_is_named_with_the_slugs_there_are(
    engine: Engine, clinics: dict[str, int]
) -> None:
    with pytest.raises(UnknownWorkspace) as raised:
        workspaces.by_slug(engine, "nowhere")
    assert isinstance(raised.value, UserError)  # one plain line on the command line
    assert str(raised.value) == (
        "no workspace 'nowhere' in this database (workspaces: alder, oak, riverside)"
    )


def test_a_long_list_of_slugs_is_cut_short(engine: Engine) -> None:
    for number in range(workspaces.KNOWN_SLUGS_SHOWN + 2):
        add_workspace(engine, f"clinic-{number:02d}", f"Clinic {number}")
    with pytest.raises(UnknownWorkspace, match=r"clinic-00, .*clinic-09, …\)$"):
        workspaces.by_slug(engine, "nowhere")


def test_an_unknown_slug_in_a_database_without_clinics(engine: Engine) -> None:
    with pytest.raises(UnknownWorkspace, match="has no workspaces yet"):
        workspaces.by_slug(engine, "riverside")


def test_by_ids_keeps_the_order_given_and_names_what_is_missing(
    engine: Engine, clinics: dict[str, int]
) -> None:
    order = (clinics["riverside"], clinics["alder"], clinics["riverside"])
    assert [w.slug for w in workspaces.by_ids(engine, order)] == ["riverside", "alder"]
    assert workspaces.by_ids(engine, ()) == []
    with pytest.raises(UnknownWorkspace, match=r"^workspace 9999 does not exist in this database"):
        workspaces.by_ids(engine, (clinics["oak"], 9999))
    with pytest.raises(UnknownWorkspace, match=r"^workspaces 9998, 9999 do not exist"):
        workspaces.by_ids(engine, (9998, 9999))
    with pytest.raises(UnknownWorkspace, match="does not exist"):
        workspaces.by_id(engine, 9999)


def test_lists_show_clinics_by_name_and_the_staff_workspace_last(
    engine: Engine, clinics: dict[str, int]
) -> None:
    listed = workspaces.all_workspaces(engine)
    assert [w.slug for w in listed] == ["alder", "oak", "riverside", SYSTEM_WORKSPACE_SLUG]
    assert listed[-1].is_system
    clinics_only = workspaces.all_workspaces(engine, include_staff=False)
    assert [w.slug for w in clinics_only] == ["alder", "oak", "riverside"]


def test_a_filters_scope_is_the_named_workspaces_or_every_clinic(
    engine: Engine, clinics: dict[str, int]
) -> None:
    named = workspaces.in_scope(engine, (clinics["riverside"], clinics["oak"], 9999))
    assert [w.slug for w in named] == ["oak", "riverside"]  # by name; a gone one is no error
    assert [w.slug for w in workspaces.in_scope(engine, ())] == ["alder", "oak", "riverside"]


def test_lookups_read_in_the_callers_own_transaction(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            Workspace.__table__.insert().values(
                slug="birch",
                name="Birch Clinic",
                timezone="UTC",
                work_day_start=6,
                work_day_end=22,
                is_system=False,
            )
        )
        birch = workspaces.by_slug(connection, "birch")  # not committed yet: same connection
        assert birch.work_day_start == 6
        assert [w.slug for w in workspaces.all_workspaces(connection, include_staff=False)] == [
            "birch"
        ]
