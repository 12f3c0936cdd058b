#!/bin/sh
# `cmake --install` into a temporary prefix, then a program outside the tree
# (examples/quickstart.c) builds with pkg-config (--define-prefix: the .pc
# file says /usr/local, the test installs elsewhere) and runs; the command and
# its man page are in place.
#   install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -eu
build=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
pcdir=$(dirname "$(find "$work/prefix" -name kgstore.pc)")
export PKG_CONFIG_PATH="$pcdir"
cc -std=c11 -Wall -Werror -o "$work/quickstart" "$src/examples/quickstart.c" $(pkg-config --define-prefix --cflags --libs kgstore)
libdir=$(pkg-config --define-prefix --variable=libdir kgstore)
out=$(LD_LIBRARY_PATH="$libdir" "$work/quickstart")
[ "$out" = "alice -> acme (Company)" ] || { echo "quickstart printed: $out"; exit 1; }
[ -x "$work/prefix/bin/kgstore" ] || { echo "kgstore command not installed"; exit 1; }
"$work/prefix/bin/kgstore" --version
[ -f "$work/prefix/share/man/man1/kgstore.1" ] || { echo "man page not installed"; exit 1; }
[ -f "$work/prefix/include/kgstore/io.h" ] || { echo "io.h not installed"; exit 1; }
echo "install test passed: $(pkg-config --modversion kgstore)"
