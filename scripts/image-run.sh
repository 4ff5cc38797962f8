#!/usr/bin/env bash
# make image-run — boots the appliance image that `make image` built
# (out/image/halb.qcow2) in QEMU on this terminal, to try it by hand.
#
#   scripts/image-run.sh [CONFIG]        CONFIG: default examples/single.yaml
#
# Everything it makes lives in a temporary directory that is removed when
# QEMU exits: a throwaway overlay over the image (the image and its
# SHA256SUMS stay as built; what the VM writes is gone afterwards), a copy
# of OVMF's variables, and the seed disk (CONFIG as halb.yaml and root's
# password hash). With examples/single.yaml it also starts the example's two
# web servers on this machine (bin/netlab backend on 127.0.0.1:18001 and
# :18002, the guest's 10.0.2.2) and stops them on exit.
#
#   HALB_ROOT_PASSWORD   root's password on the console; asked for when
#                        unset on a terminal; empty: root stays locked
#   IMAGE_RUN_PORT       the port on 127.0.0.1 forwarded to the guest's
#                        port 80 (default 8080)
#   IMAGE_RUN_TCG=1      do not try KVM
#
# The serial console is this terminal: Ctrl-A then X quits QEMU.
# Needs no root once QEMU, OVMF, mtools, dosfstools and openssl are installed
# (as root it installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
img=$repo/out/image/halb.qcow2
config=${1:-examples/single.yaml}
port=${IMAGE_RUN_PORT:-8080}

fail() { echo "image-run: $*" >&2; exit 1; }

# shellcheck source=scripts/qemu-lib.sh
. scripts/qemu-lib.sh
qemu_packages qemu-system-x86=/usr/bin/qemu-system-x86_64 qemu-utils=/usr/bin/qemu-img \
	ovmf=$OVMF_CODE mtools=/usr/bin/mcopy dosfstools=/usr/sbin/mkfs.vfat openssl=/usr/bin/openssl ||
	fail "cannot run QEMU here"
[ -f "$img" ] || fail "$img missing: run make image first (as root)"
[ -x bin/halbctl ] && [ -x bin/netlab ] || fail "bin/halbctl or bin/netlab missing: run make build first"
[ -f "$config" ] || fail "config $config not found"
bin/halbctl config validate "$config" >/dev/null || {
	bin/halbctl config validate "$config" >&2 || true
	fail "$config does not validate"
}

dir=$(mktemp -d /tmp/halb-image-run.XXXXXX)
pids=()
# restore_tty: the guest's console draws on this terminal in its alternate
# screen, with the cursor hidden and mouse reports on; QEMU ends without
# undoing that.
restore_tty() {
	if [ -n "${qemu_ran:-}" ] && [ -t 1 ]; then
		printf '\e[?1049l\e[?25h\e[?1000l\e[?1002l\e[?1003l\e[?1006l\e[?2004l\e[0m'
	fi
	qemu_ran=
}
cleanup() {
	local p
	restore_tty
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The seed: the config and, when given, root's password hash.
mkdir "$dir/seed"
cp "$config" "$dir/seed/halb.yaml"
if [ -z "${HALB_ROOT_PASSWORD+set}" ] && [ -t 0 ]; then
	read -r -s -p "root password for the VM's console (empty: root stays locked): " HALB_ROOT_PASSWORD
	echo
	if [ -n "$HALB_ROOT_PASSWORD" ]; then
		read -r -s -p "again: " again
		echo
		[ "$again" = "$HALB_ROOT_PASSWORD" ] || fail "the passwords differ"
	fi
fi
if [ -n "${HALB_ROOT_PASSWORD:-}" ]; then
	openssl passwd -6 -stdin <<<"$HALB_ROOT_PASSWORD" >"$dir/seed/root_password_hash"
	root="set from HALB_ROOT_PASSWORD or the prompt: '!' on the console for a root shell"
else
	root="locked (no password given): the console has no shell"
fi
seed_disk "$dir/seed.img" "$dir/seed"

# The example's web servers, on this machine's loopback.
backends=
if [ "$(realpath "$config")" = "$repo/examples/single.yaml" ]; then
	for n in 1 2; do
		bin/netlab backend -name "web$n" "127.0.0.1:1800$n" >"$dir/web$n.log" 2>&1 &
		pids+=($!)
	done
	for n in 1 2; do
		for _ in $(seq 50); do grep -qs 'listening on' "$dir/web$n.log" && break; sleep 0.1; done
		grep -qs 'listening on' "$dir/web$n.log" || fail "web$n on 127.0.0.1:1800$n did not start: $(cat "$dir/web$n.log")"
	done
	backends="web1 127.0.0.1:18001 and web2 127.0.0.1:18002 on this machine (10.0.2.2 in the guest)"
fi

qemu-img create -q -f qcow2 -b "$img" -F qcow2 "$dir/halb.qcow2"
cp "$OVMF_VARS" "$dir/vars.fd"
accel=tcg
[ -n "${IMAGE_RUN_TCG:-}" ] || accel=$(qemu_accel "$dir")
cpu=max
[ "$accel" = kvm ] && cpu=host

cat <<EOF
image-run: booting $img in QEMU ($accel), in $dir (removed on exit)
  config:   $config (node $(sed -n 's/^  name: //p' "$config" | head -n1))
  root:     $root
${backends:+  backends: $backends
}  try:      curl -i http://127.0.0.1:$port/   (the guest's port 80, once halbd is up: about a minute under TCG)
  console:  this terminal (the guest's ttyS0): halb-console, the dashboard of the seeded node
            (80x24, ASCII; ? lists its keys, ! a root shell when root has a password)
  quit:     Ctrl-A then X

EOF
# -serial mon:stdio: the console on this terminal, Ctrl-A X quits.
# -nodefaults: none of q35's default DVD-ROM, parallel port and VGA (the
# boot is faster without OVMF, the kernel and udev probing them).
qemu_ran=1
qemu-system-x86_64 -machine q35,accel=$accel -cpu $cpu -m 512 -smp 2 -nodefaults -display none \
	-drive if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE \
	-drive if=pflash,format=raw,unit=1,file="$dir/vars.fd" \
	-drive if=virtio,format=qcow2,file="$dir/halb.qcow2" \
	-drive if=virtio,format=raw,file="$dir/seed.img" \
	-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$port-:80" \
	-serial mon:stdio
restore_tty
echo "image-run: QEMU exited; removing $dir"
