#!/bin/bash
# Screenshots of the app reading from a hot standby: the status bar naming the standby and its
# lag (replay paused), the export form's "Read server" line, and the notice after the standby
# stops. A throwaway primary + standby (tests/pgcluster.py) with a small demo is started here;
# the app runs on an X server with a window manager and is typed into with xdotool.
#
#   apt-get install -y xvfb openbox xdotool scrot
#   packaging/replica_screenshots.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/nvadmin-replica-shots}
OUT=$ROOT/docs/screenshots
PY=$ROOT/.venv/bin/python
rm -rf "$WORK"; mkdir -p "$WORK"
cd "$ROOT"

# The servers: up until $WORK/stop-standby (standby stopped) and $WORK/stop appear.
$PY - "$WORK" > "$WORK/servers.log" 2>&1 <<'EOF' & SERVERS=$!
import sys, threading
from pathlib import Path
from sqlalchemy import text
from sqlalchemy.engine import make_url
from nvadmin.auth import db_roles
from nvadmin.auth.accounts import add_staff, command_line_operator
from nvadmin.db import migrate, routing
from nvadmin.db.engine import make_engine
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.identity import Role
from tests.factories import draft, write
from tests.pgcluster import primary_and_standby

work = Path(sys.argv[1])
with primary_and_standby() as pair:
    owner, standby = make_engine(pair.primary.url), make_engine(pair.standby.url)
    migrate.upgrade(owner)
    seed(owner, SeedPlan(workspaces=2, events=20_000, days=30))
    db_roles.create_roles(owner)
    add_staff(owner, command_line_operator(), "compliance@demo.example",
              "Replica screenshots 2026", Role.COMPLIANCE, "Casey Compliance")
    assert routing.wait_for_replay(standby, routing.current_lsn(owner), timeout=120)
    (work / "urls").write_text(
        make_url(pair.primary.url)._replace(username=None).render_as_string() + "\n"
        + make_url(pair.standby.url)._replace(username=None).render_as_string() + "\n")
    while not (work / "pause").exists():
        threading.Event().wait(0.2)
    admin = make_engine(make_url(pair.standby.url).set(database="postgres"))
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_wal_replay_pause()"))
    with owner.connect() as connection:
        workspace = connection.execute(text("SELECT min(id) FROM workspaces WHERE NOT is_system")).scalar()
    write(owner, workspace, [draft(minutes=i) for i in range(500)])
    (work / "paused").write_text("")
    while not (work / "stop-standby").exists():
        threading.Event().wait(0.2)
    pair.standby.stop()
    (work / "standby-stopped").write_text("")
    while not (work / "stop").exists():
        threading.Event().wait(0.2)
    pair.standby.start()
EOF
wait_for() { for _ in $(seq 600); do [ -e "$WORK/$1" ] && return; sleep 0.5; done; exit 1; }
wait_for urls
PRIMARY=$(sed -n 1p "$WORK/urls"); STANDBY=$(sed -n 2p "$WORK/urls")

. "$ROOT/packaging/xdesktop.sh"
start_desktop 79 1280x720
export NVADMIN_HOME=$WORK/home
$PY -m nvadmin --database "$PRIMARY" --read-database "$STANDBY" > "$WORK/app.log" 2>&1 & APP=$!
trap 'touch "$WORK/stop"; kill $APP $WM $XVFB 2>/dev/null; wait $SERVERS' EXIT

sign_in compliance@demo.example "Replica screenshots 2026"
scrot -o "$OUT/replica-status-bar.png"
touch "$WORK/pause"; wait_for paused
xdotool key F5; sleep 3
scrot -o "$OUT/replica-lag.png"
xdotool key ctrl+e; sleep 3
scrot -o "$OUT/replica-export-form.png"
xdotool key Escape; sleep 0.5
touch "$WORK/stop-standby"; wait_for standby-stopped
xdotool key F5; sleep 4
scrot -o "$OUT/replica-fallback.png"
