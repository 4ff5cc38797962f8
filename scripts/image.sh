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

for b in halbd halbctl halb-console; do
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

# Progress: each step with the time since the start; the full output of
# mkosi goes to its log.
t0us=${EPOCHREALTIME/./}
ts() {
	local d=$(((${EPOCHREALTIME/./} - t0us) / 100000))
	printf '%4d.%ds' $((d / 10)) $((d % 10))
}
say() { echo "image: [$(ts)] $*"; }

# mkosi_steps LOG: copies mkosi's output to LOG and shows the lines that
# start a step (and apt's package count); every 20 s without one, a line
# saying what it is still doing.
mkosi_steps() {
	local line part='' step='starting mkosi' new shown=$SECONDS n=0 rc
	: >"$1"
	while :; do
		rc=0
		IFS= read -r -t 5 line || rc=$?
		if [ $rc -gt 128 ]; then
			part+=$line # read keeps a partial line when it times out
		elif [ $rc -ne 0 ]; then
			line=$part$line
			[ -z "$line" ] || printf '%s\n' "$line" >>"$1"
			break
		else
			line=$part$line
			part=
			printf '%s\n' "$line" >>"$1"
			n=$((n + 1))
			new=
			case "$line" in
			*'Running second (final) stage to generate cached copy'*)
				new='installing packages (cold: debootstrap, then apt; the package set is cached after this)'
				;;
			*'Installing Debian'* | *'Running prepare script'* | *'Installing cache copy'* | \
				*'Running second (final) stage…'* | *'Copying in cached tree'* | *'Copying in extra file trees'* | \
				*'Running postinstall script'* | *'Running finalize script'* | *'Linking image file'* | *'Resulting image size'*)
				new=${line#‣ }
				new=${new#"${new%%[! ]*}"}
				;;
			'I: Retrieving Packages'* | 'I: Unpacking the base system'* | 'I: Configuring the base system'* | 'I: Base system installed'*)
				new="debootstrap: ${line#I: }"
				;;
			*' newly installed, '*) new="apt: $line" ;;
			esac
			if [ -n "$new" ]; then
				step=$new
				say "$step"
				shown=$SECONDS
				continue
			fi
		fi
		if [ $((SECONDS - shown)) -ge 20 ]; then
			say "  ... still: $step ($n lines of output so far)"
			shown=$SECONDS
		fi
	done
}

log=$out/mkosi.log
say "mkosi ${force[*]} -i build ($([ ${#force[@]} -eq 2 ] && echo 'cold: installs the packages, a few minutes' || echo 'warm: cached packages')); log: $log"
if ! HALB_BIN=$PWD/bin mkosi "${force[@]}" -i build 2>&1 | mkosi_steps "$log"; then
	tail -n 40 "$log" >&2
	echo "image: mkosi failed (full log: $log)" >&2
	exit 1
fi
echo "$key" >"$out/.cache-key"
# mkosi 14 reuses its cache only when the build-image cache exists too, which
# it never makes without a build script: an empty stand-in.
mkdir -p "$out/root.cache-pre-dev"
t1us=${EPOCHREALTIME/./}
say "assembling the disk (image/assemble.sh)"
image/assemble.sh "$out/root" "$out" | while IFS= read -r line; do say "$line"; done
t2us=${EPOCHREALTIME/./}
say "done"

# Report: sizes and the package list.
chroot "$out/root" dpkg-query -W -f '${Package} ${Version}\n' >"$out/packages.txt" 2>/dev/null || true
{
	awk -v a="$t0us" -v b="$t1us" -v c="$t2us" -v k="$([ ${#force[@]} -eq 2 ] && echo 'cold: packages installed' || echo 'warm: cached packages')" \
		'BEGIN { printf "mkosi %.1fs, assemble %.1fs, total %.1fs (%s)\n", (b - a) / 1e6, (c - b) / 1e6, (c - a) / 1e6, k }'
	echo "root tree (without /var): $(du -sh --exclude=./var "$out/root" | cut -f1), /var: $(du -sh "$out/root/var" | cut -f1)"
	cat "$out/layout.txt"
	echo "packages: $(wc -l <"$out/packages.txt")"
	# What image/prepare.sh's module allowlist kept and removed.
	cat "$out/root/usr/lib/halb/modules.txt" 2>/dev/null || true
	ls -ls --block-size=M "$out/halb.raw" "$out/halb.qcow2" | awk '{printf "%s: %s apparent, %s allocated\n", $NF, $6, $1}'
} | tee "$out/build-report.txt"
