#!/bin/sh
# Install nvadmin from this folder.
#   ./install.sh                       for the current user (~/.local)
#   sudo PREFIX=/usr/local ./install.sh   for everyone
# Puts the application in $PREFIX/lib/nvadmin, a `nvadmin` command in $PREFIX/bin, and the
# menu entry and icons under $PREFIX/share. Run uninstall.sh (same PREFIX) to remove it.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-$HOME/.local}
APPDIR="$PREFIX/lib/nvadmin"

mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$PREFIX/share/applications" "$PREFIX/share/icons"
rm -rf "$APPDIR.new"
cp -R "$HERE/nvadmin" "$APPDIR.new"
rm -rf "$APPDIR"
mv "$APPDIR.new" "$APPDIR"
ln -sf "$APPDIR/nvadmin" "$PREFIX/bin/nvadmin"
cp -R "$HERE/share/icons/hicolor" "$PREFIX/share/icons/"
sed "s|^Exec=nvadmin|Exec=\"$APPDIR/nvadmin\"|" "$HERE/share/applications/nvadmin.desktop" \
    > "$PREFIX/share/applications/nvadmin.desktop"
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$PREFIX/share/applications" || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$PREFIX/share/icons/hicolor" || true
fi
echo "nvadmin installed in $APPDIR"
echo "Start it from the applications menu, or run: $PREFIX/bin/nvadmin"
echo "Check the installation with: $PREFIX/bin/nvadmin --smoke"
