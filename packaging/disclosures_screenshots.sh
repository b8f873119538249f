#!/bin/bash
# Screenshots of one patient's accounting of disclosures asked for from the Requests dock
# (Alt+I), the report it opens, and the export form with JSON Lines chosen, from the real app
# on an X server with a window manager, driven with xdotool at 1280x720.
#
#   apt-get install -y xvfb openbox xdotool scrot
#   packaging/disclosures_screenshots.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/nvadmin-disclosures-shots}
OUT=$ROOT/docs/screenshots
PY=$ROOT/.venv/bin/python
DB=sqlite:///$WORK/demo.sqlite3
rm -rf "$WORK"; mkdir -p "$WORK/exports"
export PYTHONPATH=$ROOT NVADMIN_HOME=$WORK/home-seed
$PY -m nvadmin --database "$DB" seed --workspaces 2 --events 20000 --days 14
printf 'support-shots-2026\n' | $PY -m nvadmin --database "$DB" \
  staff add sam@clinic.example --role support --name "Sam Support" --password-stdin
FROM=$(date -u -d '-10 days' +%F); TO=$(date -u -d '-3 days' +%F)
# The first clinic, its practice admin, and the two patients with the most events in the range.
read -r SLUG ADMIN PATIENT OTHER < <($PY - "$WORK/demo.sqlite3" "$FROM" "$TO" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
slug, ws = db.execute("SELECT slug, id FROM workspaces WHERE NOT is_system ORDER BY id").fetchone()
admin = db.execute("SELECT email FROM team_members WHERE workspace_id = ? AND role = "
                   "'practice_admin' ORDER BY id", (ws,)).fetchone()[0]
patients = [p for (p,) in db.execute(
    "SELECT patient_id FROM activity_events WHERE workspace_id = ? AND patient_id IS NOT NULL "
    "AND occurred_at >= ? AND occurred_at < ? GROUP BY patient_id ORDER BY count(*) DESC LIMIT 2",
    (ws, sys.argv[2], sys.argv[3]))]
print(slug, admin, *patients)
PYEOF
)
$PY -c "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute(\"UPDATE team_members SET created_at = '2025-01-01 00:00:00'\"); db.commit()" "$WORK/demo.sqlite3"
req() { $PY -m nvadmin --database "$DB" requests add --workspace "$SLUG" --from "$FROM" --to "$TO" --requester "$ADMIN" "$@"; }
req --ticket HD-4830 --purpose "annual HIPAA audit" --recipient "external auditor" \
  --received "$(date -u -d '-3 days' +%FT%H:%M+00:00)"
req --ticket HD-4851 --purpose "patient complaint" --recipient "patient's attorney" --patient "$PATIENT" \
  --received "$(date -u -d '-2 days' +%FT%H:%M+00:00)"
req --ticket HD-4852 --purpose "right of access" --recipient "the patient" --patient "$OTHER"
req --ticket HD-4860 --purpose "staff dispute" --recipient "practice admin"
for ticket in HD-4830 HD-4851 HD-4852; do
  $PY -m nvadmin --database "$DB" requests fulfil "$ticket" --output "$WORK/exports" --deliver
done

. "$ROOT/packaging/xdesktop.sh"
start_desktop 78 1280x720
export HOME=$WORK/exports
trap 'kill $APP $WM $XVFB 2>/dev/null' EXIT
export NVADMIN_HOME=$WORK/home-app
$PY -m nvadmin --database "$DB" > "$WORK/app.log" 2>&1 & APP=$!
sign_in sam@clinic.example support-shots-2026
xdotool key ctrl+shift+r; sleep 2
xdotool key alt+i; sleep 2
xdotool key alt+p; xdotool type --delay 15 "$PATIENT"; sleep 0.5
scrot -o "$OUT/disclosures-patient-ask.png"
xdotool key Return; sleep 4
scrot -o "$OUT/disclosures-patient-report.png"
xdotool key Escape; sleep 1
xdotool key ctrl+e; sleep 3
xdotool key alt+f; xdotool key Down; sleep 1
scrot -o "$OUT/export-form-jsonl.png"
xdotool key Escape; sleep 1
