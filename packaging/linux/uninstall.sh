#!/bin/sh
# Remove what install.sh installed (use the same PREFIX). Your data, settings and logs
# are kept; nvadmin's About dialog shows where they are.
set -eu
PREFIX=${PREFIX:-$HOME/.local}
rm -rf "$PREFIX/lib/nvadmin"
rm -f "$PREFIX/bin/nvadmin" "$PREFIX/share/applications/nvadmin.desktop"
find "$PREFIX/share/icons/hicolor" -name 'nvadmin.png' -o -name 'nvadmin.svg' 2>/dev/null |
    while read -r icon; do rm -f "$icon"; done
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$PREFIX/share/applications" || true
fi
echo "nvadmin removed from $PREFIX"
