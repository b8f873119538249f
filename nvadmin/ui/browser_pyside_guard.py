"""Keep PySide6 6.12 from deallocating None, True and False on Python 3.11.

PySide6 6.12 returns ``None``/``True``/``False`` to Python without taking a reference in some
paths (every ``SignalInstance.emit()`` call drops one reference to ``True``; every call of a
Python slot from a C++ signal drops one to ``None``). On Python 3.12+ these objects are
immortal and nothing happens; on 3.11 their reference counts drain and, after a few hundred
emits or a few thousand slot calls, the interpreter aborts with "Fatal Python error:
bool_dealloc" / "none_dealloc". Scrolling through a large log issues thousands of page loads,
so the browser hits this within minutes.

:func:`install` does what Python 3.12 does: it gives the three singletons a reference count
so large that no leak can ever drain it. It is idempotent and does nothing on 3.12+.
"""

from __future__ import annotations

import ctypes
import sys

_HUGE = 1 << 40


def install() -> None:
    if sys.version_info >= (3, 12):
        return
    for singleton in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(singleton))
        if count.value < _HUGE // 2:
            count.value += _HUGE
