#!/bin/bash
# Screenshots of the keyboard and sign-out flows, taken from the real app on an X server with a
# window manager and driven with xdotool, as a person would use it.
#
#   apt-get install -y xvfb openbox xdotool xclip scrot
#   packaging/flow_screenshots.sh [SOURCE_TREE] [PREFIX]
#
# SOURCE_TREE defaults to this checkout (give an exported older tree to take "before" shots);
# pictures go to docs/screenshots/PREFIX*.png. A 400,000-event SQLite database and an admin
# account are made once under $WORK (default /tmp/nvadmin-flow-shots).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${1:-$ROOT}
PREFIX=${2:-}
WORK=${WORK:-/tmp/nvadmin-flow-shots}
OUT=$ROOT/docs/screenshots
PY=$ROOT/.venv/bin/python
DB=sqlite:///$WORK/big.sqlite3
mkdir -p "$WORK"
export PYTHONPATH=$SRC
if [ ! -f "$WORK/big.sqlite3" ]; then
  NVADMIN_HOME=$WORK/home-seed $PY -m nvadmin --database "$DB" seed --workspaces 1 --events 400000 --days 30
  printf 'admin-shots-2026\n' | NVADMIN_HOME=$WORK/home-seed $PY -m nvadmin --database "$DB" \
    staff add dana@clinic.example --role admin --name "Dana Admin" --password-stdin
fi
. "$ROOT/packaging/xdesktop.sh"
start_desktop 77 1600x1000
trap 'kill $WM $XVFB 2>/dev/null' EXIT

start_app() {
  export NVADMIN_HOME=$WORK/home-$1
  rm -rf "$NVADMIN_HOME"; mkdir -p "$NVADMIN_HOME"
  $PY -m nvadmin --database "$DB" > "$WORK/app-$1.log" 2>&1 & APP=$!
}

# Ctrl+E at once after sign-in, Go to time typed, Ctrl+C, quitting over an export.
start_app keys
sign_in dana@clinic.example admin-shots-2026
xdotool key ctrl+e; sleep 1.5; scrot -o "$OUT/${PREFIX}keyboard-ctrl-e-after-sign-in.png"
xdotool key Escape; sleep 0.5
xdotool key ctrl+g; sleep 1
xdotool key ctrl+a; xdotool type --delay 30 "2026-11-25 10:06:00"; sleep 0.5
scrot -o "$OUT/${PREFIX}go-to-time.png"
xdotool key Return; sleep 2; scrot -o "$OUT/${PREFIX}go-to-time-landed.png"
xdotool key ctrl+c; sleep 0.5
echo "copied after Go to time:"; xclip -o -selection clipboard 2>/dev/null | cut -c1-100 || true
xdotool key ctrl+e; sleep 2; xdotool key alt+s; sleep 0.2; xdotool key ctrl+q; sleep 1  # 400,000 rows take about a second
scrot -o "$OUT/${PREFIX}quit-while-exporting.png"
xdotool key Escape
kill $APP 2>/dev/null || true; sleep 1

# Compliance searches a patient and signs out; the admin signs in next.
start_app accounts
sign_in compliance@demo.nvadmin.example compliance-demo-2025
xdotool key ctrl+f; xdotool type --delay 20 "patient:P0000813"; xdotool key Return; sleep 2
xdotool key alt+a; sleep 0.5; xdotool key o; sleep 4
sign_in dana@clinic.example admin-shots-2026
scrot -o "$OUT/${PREFIX}next-user.png"
kill $APP 2>/dev/null || true
rm -f "$HOME"/riverside-family_*.csv "$HOME"/riverside-family_*.csv.manifest.json
