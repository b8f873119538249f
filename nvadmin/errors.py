"""Errors that carry a message meant for the person using nvadmin.

Anything raised as a :class:`UserError` is shown as one plain line (CLI) or one message box
(GUI); its details go to the log file. Anything else is a bug and is reported as such.
"""


class UserError(Exception):
    """A failure the user can understand and act on; ``str(error)`` is the message."""


class DatabaseUnavailable(UserError):
    """The database cannot be reached, or the connection was lost."""


class SchemaError(UserError):
    """The database schema is missing, newer than this nvadmin, or the file is not a database."""


class AccessDenied(UserError):
    """The signed-in staff member's role does not allow the action."""
