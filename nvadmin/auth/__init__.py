"""Staff accounts, sign-in, roles and the credential store (no Qt widgets)."""
