#!/usr/bin/env bash
# make image — builds the appliance image into out/image/ (root):
#   mkosi 14 (mkosi.conf, image/) makes the Debian bookworm tree, then
#   image/assemble.sh makes halb.raw (UEFI GPT disk), halb.qcow2, SHA256SUMS.
# Installs its own build packages when missing. Incremental: mkosi's cached
# package install is reused (-i) unless mkosi.conf or image/prepare.sh
# changed since it was made (or IMAGE_CLEAN=1), then it is rebuilt (-ff).
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/image

if [ "$(id -u)" -ne 0 ]; then
	echo "make image: needs root (mkosi installs Debian into a tree with debootstrap/nspawn)" >&2
	exit 1
fi

# package → a file that proves it is installed
declare -A need=(
	[mkosi]=/usr/bin/mkosi
	[debootstrap]=/usr/sbin/debootstrap
	[systemd-container]=/usr/bin/systemd-nspawn
	[mtools]=/usr/bin/mcopy
	[dosfstools]=/usr/sbin/mkfs.vfat
	[fdisk]=/usr/sbin/sfdisk
	[e2fsprogs]=/usr/sbin/mke2fs
	[qemu-utils]=/usr/bin/qemu-img
	[systemd-boot-efi]=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
)
missing=()
for pkg in "${!need[@]}"; do [ -e "${need[$pkg]}" ] || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
	echo "image: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

for b in halbd halbctl; do
	[ -x bin/$b ] || { echo "image: bin/$b missing: run make build first" >&2; exit 1; }
done

mkdir -p "$out" /var/cache/halb-image/apt
# The incremental cache is keyed on what goes into it.
key=$(cat mkosi.conf image/prepare.sh | sha256sum | cut -d' ' -f1)
force=(-f)
if [ -n "${IMAGE_CLEAN:-}" ] || [ ! -e "$out/root.cache-pre-inst" ] ||
	[ "$(cat "$out/.cache-key" 2>/dev/null)" != "$key" ]; then
	force=(-f -f)
	rm -f "$out/.cache-key"
fi

t0=$(date +%s.%N)
log=$out/mkosi.log
echo "image: mkosi ${force[*]} -i build (log: $log)"
if ! HALB_BIN=$PWD/bin mkosi "${force[@]}" -i build >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	echo "image: mkosi failed (full log: $log)" >&2
	exit 1
fi
echo "$key" >"$out/.cache-key"
# mkosi 14 reuses its cache only when the build-image cache exists too, which
# it never makes without a build script: an empty stand-in.
mkdir -p "$out/root.cache-pre-dev"
t1=$(date +%s.%N)
echo "image: assembling the disk"
image/assemble.sh "$out/root" "$out"
t2=$(date +%s.%N)

# Report: sizes and the package list.
chroot "$out/root" dpkg-query -W -f '${Package} ${Version}\n' >"$out/packages.txt" 2>/dev/null || true
{
	awk -v a="$t0" -v b="$t1" -v c="$t2" -v k="$([ ${#force[@]} -eq 2 ] && echo 'cold: packages installed' || echo 'warm: cached packages')" \
		'BEGIN { printf "mkosi %.1fs, assemble %.1fs, total %.1fs (%s)\n", b - a, c - b, c - a, k }'
	echo "root tree (without /var): $(du -sh --exclude=./var "$out/root" | cut -f1), /var: $(du -sh "$out/root/var" | cut -f1)"
	cat "$out/layout.txt"
	echo "packages: $(wc -l <"$out/packages.txt")"
	ls -ls --block-size=M "$out/halb.raw" "$out/halb.qcow2" | awk '{printf "%s: %s apparent, %s allocated\n", $NF, $6, $1}'
} | tee "$out/build-report.txt"
