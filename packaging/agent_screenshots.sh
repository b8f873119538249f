#!/bin/bash
# Screenshot of the agent: search (Browser/app field) from the real app on an X server with a
# window manager, driven with xdotool at 1280x720.
#
#   apt-get install -y xvfb openbox xdotool scrot
#   packaging/agent_screenshots.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/nvadmin-agent-shots}
OUT=$ROOT/docs/screenshots
PY=$ROOT/.venv/bin/python
DB=sqlite:///$WORK/demo.sqlite3
mkdir -p "$WORK"
export PYTHONPATH=$ROOT
if [ ! -f "$WORK/demo.sqlite3" ]; then
  NVADMIN_HOME=$WORK/home-seed $PY -m nvadmin --database "$DB" seed --workspaces 1 --events 20000 --days 7
  printf 'admin-shots-2026\n' | NVADMIN_HOME=$WORK/home-seed $PY -m nvadmin --database "$DB" \
    staff add dana@clinic.example --role admin --name "Dana Admin" --password-stdin
fi
. "$ROOT/packaging/xdesktop.sh"
start_desktop 78 1280x720
trap 'kill $APP $WM $XVFB 2>/dev/null' EXIT
export NVADMIN_HOME=$WORK/home-agent
rm -rf "$NVADMIN_HOME"; mkdir -p "$NVADMIN_HOME"
$PY -m nvadmin --database "$DB" > "$WORK/app.log" 2>&1 & APP=$!
sign_in dana@clinic.example admin-shots-2026
xdotool key ctrl+f; xdotool type --delay 20 "agent:firefox"; xdotool key Return; sleep 3
xdotool key ctrl+Home; sleep 2
scrot -o "$OUT/search-agent-firefox.png"
xdotool key ctrl+f; xdotool key ctrl+a; xdotool type --delay 20 "agent:firefx"; xdotool key Return; sleep 1.5
scrot -o "$OUT/search-agent-misspelt.png"
