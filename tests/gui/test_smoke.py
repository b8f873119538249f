"""``nvadmin --smoke``: the whole application, offscreen, in its own process.

The same command checks a built bundle (packaging/build.py runs it); here it runs from the
source tree, so a change that breaks start-up, sign-in or the first page fails the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_smoke(tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("NVADMIN_HOME", None)
    env["TMPDIR"] = str(tmp_path)  # the smoke test's temporary home goes here
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "nvadmin", "--smoke"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )


def test_smoke_signs_in_and_shows_rows_then_cleans_up(tmp_path: Path) -> None:
    result = run_smoke(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any("sign-in dialog interactive" in line for line in lines)
    assert any("signed in as admin@demo.nvadmin.example (admin)" in line for line in lines)
    assert any("activity rows shown" in line for line in lines)
    assert lines[-1] == "nvadmin smoke: OK"
    assert "Traceback" not in result.stderr
    # The temporary home (database, settings, log) is gone afterwards.
    assert not list(tmp_path.glob("nvadmin-smoke-*"))


def test_smoke_fails_with_a_reason_and_nonzero_status(tmp_path: Path) -> None:
    result = run_smoke(tmp_path, NVADMIN_SMOKE_TIMEOUT="0.001")
    assert result.returncode == 1
    assert "nvadmin smoke: FAILED: no result after" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("nvadmin-smoke-*"))
