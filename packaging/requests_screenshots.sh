#!/bin/bash
# Screenshots of the Requests dock (the queue, the pre-filled form, the fulfilled request, the
# package's passphrase shown once) from
# the real app on an X server with a window manager, driven with xdotool at 1280x720.
#
#   apt-get install -y xvfb openbox xdotool scrot
#   packaging/requests_screenshots.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/nvadmin-requests-shots}
OUT=$ROOT/docs/screenshots
PY=$ROOT/.venv/bin/python
DB=sqlite:///$WORK/demo.sqlite3
rm -rf "$WORK"; mkdir -p "$WORK/exports"
export PYTHONPATH=$ROOT NVADMIN_HOME=$WORK/home-seed
$PY -m nvadmin --database "$DB" seed --workspaces 2 --events 20000 --days 14
printf 'support-shots-2026\n' | $PY -m nvadmin --database "$DB" \
  staff add sam@clinic.example --role support --name "Sam Support" --password-stdin
# A practice admin of the first clinic (the requester the check accepts) and someone else.
read -r SLUG ADMIN OTHER < <($PY - "$WORK/demo.sqlite3" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
slug, ws = db.execute("SELECT slug, id FROM workspaces WHERE NOT is_system ORDER BY id").fetchone()
admin = db.execute("SELECT email FROM team_members WHERE workspace_id = ? AND role = "
                   "'practice_admin' ORDER BY id", (ws,)).fetchone()[0]
other = db.execute("SELECT email FROM team_members WHERE workspace_id = ? AND role = "
                   "'front_desk' ORDER BY id", (ws,)).fetchone()[0]
print(slug, admin, other)
PYEOF
)
# The seed adds team members as of today; in this demo they have been members all along.
$PY -c "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute(\"UPDATE team_members SET created_at = '2025-01-01 00:00:00'\"); db.commit()" "$WORK/demo.sqlite3"
FROM=$(date -u -d '-10 days' +%F); TO=$(date -u -d '-3 days' +%F)
req() { $PY -m nvadmin --database "$DB" requests add --workspace "$SLUG" --from "$FROM" --to "$TO" "$@"; }
req --requester "$ADMIN" --ticket HD-4811 --purpose "complaint investigation" \
  --recipient "practice admin" --received "$(date -u -d '-4 days' +%FT%H:%M+00:00)"
req --requester "$ADMIN" --ticket HD-4830 --purpose "annual HIPAA audit" --recipient "external auditor"
req --requester "$OTHER" --ticket HD-4832 --purpose "staff dispute"

. "$ROOT/packaging/xdesktop.sh"
start_desktop 79 1280x720
export HOME=$WORK/exports
trap 'kill $APP $WM $XVFB 2>/dev/null' EXIT
export NVADMIN_HOME=$WORK/home-app
$PY -m nvadmin --database "$DB" > "$WORK/app.log" 2>&1 & APP=$!
sign_in sam@clinic.example support-shots-2026
xdotool key ctrl+shift+r; sleep 2
scrot -o "$OUT/requests-queue.png"
xdotool key Down; sleep 0.5; xdotool key Return; sleep 3
scrot -o "$OUT/requests-fulfil-form.png"
xdotool key Return; sleep 5
scrot -o "$OUT/requests-fulfilled.png"
xdotool key alt+p; sleep 5
scrot -o "$OUT/requests-packaged.png"
xdotool key Escape; sleep 1
