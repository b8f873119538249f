#!/bin/bash
# Screenshots of the export form and the Exports dock, from the real app on an X server with a
# window manager, typed into with xdotool as a support agent would.
#
#   apt-get install -y xvfb openbox xdotool scrot
#   packaging/export_form_screenshots.sh [SOURCE_TREE] [PREFIX]
#
# SOURCE_TREE defaults to this checkout (give an exported older tree to take "before" shots);
# pictures go to docs/screenshots/export-PREFIX*.png. A demo database is made once under $WORK.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${1:-$ROOT}
PREFIX=${2:-after-}
WORK=${WORK:-/tmp/nvadmin-export-shots}
OUT=$ROOT/docs/screenshots
PY=$ROOT/.venv/bin/python
DB=sqlite:///$WORK/demo.sqlite3
mkdir -p "$WORK"
export PYTHONPATH=$SRC
if [ ! -f "$WORK/demo.sqlite3" ]; then
  NVADMIN_HOME=$WORK/home-seed $PY -m nvadmin --database "$DB" seed --workspaces 2 --events 40000 --days 75
fi
. "$ROOT/packaging/xdesktop.sh"
start_desktop 78 1280x720
export NVADMIN_HOME=$WORK/home-$PREFIX
rm -rf "$NVADMIN_HOME"; mkdir -p "$NVADMIN_HOME"
cd "$WORK"  # python -m puts the working folder first on the path: run SOURCE_TREE's code
$PY -m nvadmin --database "$DB" > "$WORK/app-$PREFIX.log" 2>&1 & APP=$!
trap 'kill $APP $WM $XVFB 2>/dev/null' EXIT

sign_in support@demo.nvadmin.example support-demo-2025

# The first day is one Tab after the workspace (two with the range presets between them).
TABS=1
grep -q range_preset_box "$SRC/nvadmin/ui/export_dialog.py" && TABS=2
to_day() { xdotool key alt+w; for _ in $(seq $((TABS + $1))); do xdotool key Tab; done; }
xdotool key ctrl+e; sleep 2
to_day 0; xdotool key ctrl+a; xdotool type --delay 40 2025-03-10
to_day 1; xdotool key ctrl+a; xdotool type --delay 40 2025-03-01; sleep 0.5
xdotool key alt+s; sleep 1.5
scrot -o "$OUT/export-${PREFIX}range.png"
# Fix the last day, start without the ticket id, then type it where the focus went.
to_day 1; xdotool key ctrl+a; xdotool type --delay 40 2025-03-31; sleep 0.5
xdotool key alt+s; sleep 1
xdotool type --delay 40 SUP-4821; sleep 1.5
scrot -o "$OUT/export-${PREFIX}ticket.png"
if [ "$TABS" = 2 ]; then
  # The range presets, opened from the keyboard.
  xdotool key alt+r; sleep 0.3; xdotool key alt+Down; sleep 1
  scrot -o "$OUT/export-${PREFIX}presets.png"
  xdotool key Escape; sleep 0.3
fi
# A fresh form (the last 30 days), the ticket id, Start: how much room the dock takes.
xdotool key Escape; sleep 0.5
xdotool key ctrl+e; sleep 2
xdotool key alt+t; xdotool key ctrl+a; xdotool type --delay 40 SUP-4821; sleep 0.3
xdotool key alt+s; sleep 6
scrot -o "$OUT/export-${PREFIX}dock.png"
kill $APP 2>/dev/null || true
rm -f "$HOME"/*_SUP-4821.csv "$HOME"/*_SUP-4821.csv.manifest.json
