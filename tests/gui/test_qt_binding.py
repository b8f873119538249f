"""PySide6 6.12.0 on Python 3.11 drops a reference to True on every signal emit and to None on
every slot call, and the interpreter aborts after a few hundred ("bool_dealloc"). nvadmin pins
a release without that bug; this test fails if an upgrade brings it back."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class Emitter(QObject):
    fired = Signal(int)
emitter, seen = Emitter(), []
emitter.fired.connect(lambda value: seen.append(value))
true_refs, none_refs = sys.getrefcount(True), sys.getrefcount(None)
for i in range(20_000):
    emitter.fired.emit(i)
assert len(seen) == 20_000
assert sys.getrefcount(True) >= true_refs - 10, "emit() leaks references to True"
assert sys.getrefcount(None) >= none_refs - 10, "slot calls leak references to None"
print("ok")
"""


def test_signals_do_not_drain_interpreter_singletons() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
