"""What the Activity Log records: categories, actions and their readable labels.

The categories are the ones named on the product's help page. Every action belongs to exactly
one category; the category is stored on the event so filters and charts never need a mapping
table at query time.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    CHART_VIEWS = "chart_views"
    PATIENT_RECORDS = "patient_records"
    SIGN_INS = "sign_ins"
    FAILED_SIGN_INS = "failed_sign_ins"
    API_USAGE = "api_usage"
    LOG_ACCESS = "activity_log_access"
    STAFF_ACCOUNTS = "staff_accounts"  # nvadmin's own staff accounts (staff workspace only)

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS: dict[Category, str] = {
    Category.CHART_VIEWS: "Chart views",
    Category.PATIENT_RECORDS: "Patient records",
    Category.SIGN_INS: "Sign-ins",
    Category.FAILED_SIGN_INS: "Failed sign-ins",
    Category.API_USAGE: "API usage",
    Category.LOG_ACCESS: "Activity log access",
    Category.STAFF_ACCOUNTS: "Staff accounts",
}

# Each category's short name, as the search bar writes it (`category:api`).
CATEGORY_SHORT: dict[Category, str] = {
    Category.CHART_VIEWS: "chart",
    Category.PATIENT_RECORDS: "records",
    Category.SIGN_INS: "signin",
    Category.FAILED_SIGN_INS: "failed",
    Category.API_USAGE: "api",
    Category.LOG_ACCESS: "log",
    Category.STAFF_ACCOUNTS: "staff",
}

# The names the search bar and the command line accept: the short ones, a few spellings
# people type, and the stored values.
CATEGORY_ALIASES: dict[str, Category] = {
    **{short: category for category, short in CATEGORY_SHORT.items()},
    "charts": Category.CHART_VIEWS,
    "record": Category.PATIENT_RECORDS,
    "sign-in": Category.SIGN_INS,
    **{c.value: c for c in Category},
}


class ActorType(StrEnum):
    MEMBER = "member"  # a team member of the workspace
    API_CLIENT = "api_client"
    STAFF = "staff"  # nvadmin support / compliance / admin staff
    SYSTEM = "system"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


# Staff reading the log: recorded before every query, its details the query itself.
LOG_VIEW = "activity_log.view"
# A workspace's working hours (the after-hours flags' notion of "open") changed by staff.
WORKING_HOURS_CHANGED = "activity_log.working_hours_changed"

# action -> (category, readable label)
ACTIONS: dict[str, tuple[Category, str]] = {
    "chart.view": (Category.CHART_VIEWS, "Viewed chart"),
    "chart.print": (Category.CHART_VIEWS, "Printed chart"),
    "patient_record.read": (Category.PATIENT_RECORDS, "Read patient record"),
    "patient_record.create": (Category.PATIENT_RECORDS, "Created patient record"),
    "patient_record.update": (Category.PATIENT_RECORDS, "Updated patient record"),
    "encounter.note_signed": (Category.PATIENT_RECORDS, "Signed encounter note"),
    "auth.sign_in": (Category.SIGN_INS, "Signed in"),
    "auth.sign_out": (Category.SIGN_INS, "Signed out"),
    "auth.sign_in_failed": (Category.FAILED_SIGN_INS, "Sign-in failed"),
    "api.request": (Category.API_USAGE, "API request"),
    LOG_VIEW: (Category.LOG_ACCESS, "Viewed activity log"),
    "activity_log.export": (Category.LOG_ACCESS, "Exported activity log"),
    "activity_log.export_request.received": (Category.LOG_ACCESS, "Export request received"),
    "activity_log.export_request.verified": (Category.LOG_ACCESS, "Export requester verified"),
    "activity_log.export_request.overridden": (
        Category.LOG_ACCESS,
        "Export requester check overridden",
    ),
    "activity_log.export_request.exported": (Category.LOG_ACCESS, "Export request exported"),
    "activity_log.export_request.delivered": (Category.LOG_ACCESS, "Export request delivered"),
    "activity_log.export_request.rejected": (Category.LOG_ACCESS, "Export request rejected"),
    "activity_log.export_request.assigned": (Category.LOG_ACCESS, "Export request assigned"),
    WORKING_HOURS_CHANGED: (Category.LOG_ACCESS, "Working hours changed"),
    "staff.sign_in": (Category.SIGN_INS, "Staff signed in"),
    "staff.sign_in_failed": (Category.FAILED_SIGN_INS, "Staff sign-in failed"),
    "staff.sign_out": (Category.SIGN_INS, "Staff signed out"),
    "staff.session_locked": (Category.SIGN_INS, "Staff session locked"),
    "staff.account_created": (Category.STAFF_ACCOUNTS, "Staff account created"),
    "staff.account_disabled": (Category.STAFF_ACCOUNTS, "Staff account disabled"),
    "staff.account_enabled": (Category.STAFF_ACCOUNTS, "Staff account enabled"),
    "staff.account_unlocked": (Category.STAFF_ACCOUNTS, "Staff account unlocked"),
    "staff.password_reset": (Category.STAFF_ACCOUNTS, "Staff password reset"),
    "staff.role_changed": (Category.STAFF_ACCOUNTS, "Staff role changed"),
    "staff.second_factor_changed": (Category.STAFF_ACCOUNTS, "Staff second factor changed"),
}


def category_of(action: str) -> Category:
    try:
        return ACTIONS[action][0]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None


def action_label(action: str) -> str:
    entry = ACTIONS.get(action)
    return entry[1] if entry else action


def role_label(role: str | None) -> str:
    """A role as people say it: ``medical_assistant`` -> "Medical assistant"."""
    if not role:
        return ""
    words = role.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def reason_label(reason: str | None) -> str:
    """A failure reason in words: ``wrong_password`` -> "wrong password"."""
    return (reason or "").replace("_", " ").strip()
