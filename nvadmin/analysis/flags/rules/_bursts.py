"""Failed sign-in bursts, shared by the burst rules, and windows of events merged into
episodes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from nvadmin.db.taxonomy import ACTIONS, Category

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck


def _actions_in(category: Category) -> str:
    """``action IN (...)`` for a category: the same rows as ``category = ...`` (the category
    is derived from the action), but answered by the ``(action, occurred_at)`` index."""
    names = ", ".join(f"'{a}'" for a, (c, _label) in ACTIONS.items() if c is category)
    return f"action IN ({names})"


# Failed sign-ins are rare: the action index finds them without reading the workspace's other
# events. Chart views and API calls are a large share of all events: the workspace's own
# (workspace_id, occurred_at) index reads fewer rows for those, so they filter by category.
FAILED = _actions_in(Category.FAILED_SIGN_INS)
Episode = tuple[str, datetime, datetime]  # (subject, first event, last event)


def bursts(
    check: WorkspaceCheck, key: str, threshold: float, minutes: float, *, distinct: bool
) -> list[Episode]:
    """Failed sign-ins by ``key`` (``actor_email`` or ``ip``) with ``threshold`` failures (or,
    ``distinct``, failures for that many accounts) within ``minutes``; overlapping windows
    merged into one episode."""
    measure = "COUNT(DISTINCT f2.account)" if distinct else "COUNT(*)"
    sql = f"""
        WITH failed AS (
            SELECT {key} AS subject, actor_email AS account, occurred_at, id
            FROM activity_events
            WHERE workspace_id = :ws AND {FAILED}
              AND occurred_at >= :start AND occurred_at < :end
              AND {key} IS NOT NULL AND actor_email IS NOT NULL
        )
        SELECT f1.subject, f1.occurred_at, MAX(f2.occurred_at)
        FROM failed f1 JOIN failed f2
          ON f2.subject = f1.subject
         AND {check.sql.within("f2.occurred_at", "f1.occurred_at", "window")}
        GROUP BY f1.subject, f1.occurred_at, f1.id
        HAVING {measure} >= :threshold
        ORDER BY f1.subject, f1.occurred_at
    """
    anchors = check.rows(sql, window=minutes * 60, threshold=int(threshold))
    return merge_windows(check, anchors)


def merge_windows(check: WorkspaceCheck, anchors: list[Any]) -> list[Episode]:
    """Windows ``(subject, first event, last event within the window it starts)``, ordered
    by subject and start, merged where they overlap."""
    episodes: list[Episode] = []
    for subject, first_raw, last_raw in anchors:
        first, last = check.sql.parse(first_raw), check.sql.parse(last_raw)
        if episodes and episodes[-1][0] == subject and first <= episodes[-1][2]:
            s, f, l_ = episodes[-1]
            episodes[-1] = (s, f, max(l_, last))
        else:
            episodes.append((subject, first, last))
    return episodes
