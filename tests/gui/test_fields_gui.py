"""The filter bar's boxes come from the field registry: each typed-value field gets a box that
writes its qualifier into the search bar, each choice field a list of its choices."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from nvadmin.query import fields
from nvadmin.query.filters import Term
from nvadmin.ui.filter_bar import FilterBar

LINES = [k for k, s in fields.SEARCHED.items() if s.widget is fields.Widget.LINE]
CHOICES = [k for k, s in fields.SEARCHED.items() if s.widget is fields.Widget.CHOICE]


@pytest.mark.parametrize("key", LINES)
def test_a_typed_value_box_writes_its_qualifier(qtbot, key: str) -> None:  # type: ignore[no-untyped-def]
    bar = FilterBar()
    qtbot.addWidget(bar)
    spec = fields.SEARCHED[key]
    edit = bar.line_edits[key]
    assert edit.accessibleName() == spec.placeholder == edit.placeholderText()
    with qtbot.waitSignal(bar.search_requested) as ran:
        qtbot.keyClicks(edit, spec.example)
    assert ran.args[0].terms == (Term(key, spec.parse(spec.example)),)
    assert bar.search_edit.text() == f"{spec.qualifiers[0]}:{spec.example}"


@pytest.mark.parametrize("key", CHOICES)
def test_a_choice_box_offers_every_choice(qtbot, key: str) -> None:  # type: ignore[no-untyped-def]
    bar = FilterBar()
    qtbot.addWidget(bar)
    spec = fields.SEARCHED[key]
    assert spec.choices is not None
    box = bar.choice_boxes[key]
    assert box.accessibleName() == spec.placeholder
    assert [box.itemData(i) for i in range(box.count())] == [
        None,
        *(value for _, value in spec.choices()),
    ]
    box.setFocus()
    with qtbot.waitSignal(bar.search_requested) as ran:
        qtbot.keyClick(box, Qt.Key.Key_Down)
    first = spec.choices()[0][1]
    assert ran.args[0].terms == (Term(key, first),)
    assert bar.search_edit.text() == f"{spec.qualifiers[0]}:{first}"
