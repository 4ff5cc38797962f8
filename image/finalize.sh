#!/bin/bash
# mkosi FinalizeScript: runs on the build host on every build, as the last
# step. Installs the halb binaries (static, from `make build`) into the tree.
set -euo pipefail
[ "${1:-final}" = final ] || exit 0
: "${BUILDROOT:?}"
src=${HALB_BIN:-$PWD/bin}
for b in halbd halbctl; do
	[ -x "$src/$b" ] || { echo "finalize: $src/$b missing (run make build)" >&2; exit 1; }
	install -m 0755 "$src/$b" "$BUILDROOT/usr/bin/$b"
done
# Shipped without a machine id: the first boot makes one and commits it.
: >"$BUILDROOT/etc/machine-id"
rm -f "$BUILDROOT/var/lib/dbus/machine-id"
# The interim console and the seed import (image/).
here=$(dirname "$(readlink -f "$0")")
install -m 0755 "$here/halb-console" "$BUILDROOT/usr/bin/halb-console"
install -D -m 0755 "$here/halb-seed" "$BUILDROOT/usr/lib/halb/halb-seed"
