#!/bin/bash
# mkosi FinalizeScript: runs on the build host on every build, as the last
# step. Installs the halb binaries (static, from `make build`) into the tree:
# halbd, halbctl and halb-console (the console on tty1 and ttyS0).
set -euo pipefail
[ "${1:-final}" = final ] || exit 0
: "${BUILDROOT:?}"
src=${HALB_BIN:-$PWD/bin}
for b in halbd halbctl halb-console; do
	[ -x "$src/$b" ] || { echo "finalize: $src/$b missing (run make build)" >&2; exit 1; }
	install -m 0755 "$src/$b" "$BUILDROOT/usr/bin/$b"
done
# Shipped without a machine id: the first boot makes one and commits it.
: >"$BUILDROOT/etc/machine-id"
rm -f "$BUILDROOT/var/lib/dbus/machine-id"
# The seed import (image/).
here=$(dirname "$(readlink -f "$0")")
install -D -m 0755 "$here/halb-seed" "$BUILDROOT/usr/lib/halb/halb-seed"
