#!/bin/bash
# Screenshots of the export form's CSV profile choice, from the real app on an X server with a
# window manager, driven with xdotool from the keyboard as a support agent would.
#
#   apt-get install -y xvfb openbox xdotool scrot
#   packaging/export_profile_screenshots.sh
#
# Pictures go to docs/screenshots/export-form.png (the whole form, Excel chosen) and
# export-profile-open.png (the choice opened). A demo database is made once under $WORK.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/nvadmin-profile-shots}
OUT=$ROOT/docs/screenshots
PY=$ROOT/.venv/bin/python
DB=sqlite:///$WORK/demo.sqlite3
mkdir -p "$WORK"
if [ ! -f "$WORK/demo.sqlite3" ]; then
  NVADMIN_HOME=$WORK/home-seed $PY -m nvadmin --database "$DB" seed --workspaces 2 --events 40000 --days 75
fi
. "$ROOT/packaging/xdesktop.sh"
start_desktop 79 1280x720
export NVADMIN_HOME=$WORK/home
rm -rf "$NVADMIN_HOME"; mkdir -p "$NVADMIN_HOME"
$PY -m nvadmin --database "$DB" > "$WORK/app.log" 2>&1 & APP=$!
trap 'kill $APP $WM $XVFB 2>/dev/null' EXIT

sign_in support@demo.nvadmin.example support-demo-2025

xdotool key ctrl+e; sleep 2
xdotool key alt+t; xdotool key ctrl+a; xdotool type --delay 40 SUP-4821; sleep 0.3
# The profile: Alt+P, then its list opened from the keyboard.
xdotool key alt+p; sleep 1.5
scrot -o "$OUT/export-form.png"
xdotool key alt+Down; sleep 1
scrot -o "$OUT/export-profile-open.png"
xdotool key Escape; sleep 0.3
xdotool key Escape; sleep 0.5
kill $APP 2>/dev/null || true
