# Sourced by packaging/*_screenshots.sh: an X server with a window manager, and the steps a
# person takes at the keyboard that every script repeats, driven by xdotool.
#
#   . "$ROOT/packaging/xdesktop.sh"
#   start_desktop 79 1280x720      # display :79 (or $DISPLAY_NUMBER), screen size
#   sign_in EMAIL PASSWORD         # waits for the sign-in window, types, waits for the app

start_desktop() {
  DISPLAY_NUMBER=${DISPLAY_NUMBER:-$1}
  Xvfb ":$DISPLAY_NUMBER" -screen 0 "${2:-1280x720}x24" -nolisten tcp & XVFB=$!
  sleep 1
  export DISPLAY=":$DISPLAY_NUMBER" QT_QPA_PLATFORM=xcb
  openbox & WM=$!
}

wait_window() {
  for _ in $(seq 60); do
    xdotool search --onlyvisible --name "$1" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

sign_in() {
  wait_window "Sign in"
  xdotool windowactivate --sync "$(xdotool search --onlyvisible --name "Sign in" | head -1)"; sleep 0.5
  xdotool key ctrl+a; xdotool type --delay 15 "$1"; xdotool key Tab; sleep 0.2
  xdotool type --delay 15 "$2"; xdotool key Return
  wait_window "^nvadmin"
  sleep 4
}
