"""Widgets, dialogs and table models. Only this package imports QtWidgets."""
