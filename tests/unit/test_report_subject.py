"""A user activity report is one team member's: the start of a name or of an address (which
the search reads as a prefix of anyone's) is refused, never reported under one name."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from nvadmin.analysis.reports import user_activity_report
from nvadmin.db.models import ActivityEvent
from nvadmin.errors import UserError
from nvadmin.identity import Role, StaffIdentity
from tests.factories import add_workspace, draft, write

REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey Reviewer", Role.COMPLIANCE)


def views(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(ActivityEvent)
                .where(ActivityEvent.action == "activity_log.view")
            ).scalar_one()
        )


@pytest.mark.parametrize("typed", ["ana", "Ana Ru", "an"])
def test_the_start_of_a_name_is_refused(engine: Engine, typed: str) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(0, email="ana@riverside.example", name="Ana Ruiz"),
                       draft(1, email="anastasia@riverside.example", name="Anastasia Berg"),
                       draft(2, email="ben@riverside.example", name="Ana-Maria Ben")])  # fmt: skip
    with pytest.raises(UserError, match="whole e-mail address"):
        user_activity_report(
            engine, REVIEWER, workspace_id=ws, user_email=typed, start=None, end=None
        )
    assert views(engine) == 0  # refused before anything is read or recorded


def test_a_whole_address_is_that_person_only(engine: Engine) -> None:
    ws = add_workspace(engine)
    ana = draft(0, email="ana@riverside.example", name="Ana Ruiz")
    write(engine, ws, [ana, draft(1, email="anastasia@riverside.example", name="Anastasia Berg")])
    report = user_activity_report(
        engine, REVIEWER, workspace_id=ws, user_email="Ana@Riverside.example", start=None, end=None
    )
    assert report.row_count == 1 and report.subject == "Ana Ruiz <ana@riverside.example>"
