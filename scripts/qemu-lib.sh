# scripts/qemu-lib.sh — sourced by image-test.sh and image-run.sh: what both
# need to boot the appliance image in QEMU.

OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd

# qemu_packages PKG=FILE...: installs (as root) the packages whose file is
# missing; fails with their names when that is not possible.
qemu_packages() {
	local want pkg missing=()
	for want in "$@"; do [ -e "${want#*=}" ] || missing+=("${want%%=*}"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${missing[*]} (apt-get install ${missing[*]}, as root)" >&2
		return 1
	fi
	echo "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Package scripts must not start services (chronyd) on the machine itself.
	local policy=/usr/sbin/policy-rc.d created=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
	fi
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } || true
	[ -n "$created" ] && rm -f "$policy"
	for want in "$@"; do
		pkg=${want%%=*}
		[ -e "${want#*=}" ] || { echo "$pkg is missing and could not be installed" >&2; return 1; }
	done
}

# seed_disk OUT.img DIR: a vfat disk labelled HALB-SEED with DIR's files
# (and one level of subdirectories), made without mounting (mtools).
seed_disk() {
	local out=$1 src=$2 f
	rm -f "$out"
	mkfs.vfat -n HALB-SEED -C "$out" 2048 >/dev/null
	export MTOOLS_SKIP_CHECK=1
	for f in "$src"/*; do
		[ -e "$f" ] || continue
		if [ -d "$f" ]; then
			mmd -i "$out" "::/$(basename "$f")"
			mcopy -i "$out" "$f"/* "::/$(basename "$f")/"
		else
			mcopy -i "$out" "$f" "::/$(basename "$f")"
		fi
	done
}

# qemu_accel DIR: prints kvm when /dev/kvm can be used and OVMF gets as far
# as printing on the serial port within a few seconds without a KVM error
# (some nested setups have a /dev/kvm that fails at the first instruction),
# else tcg. DIR holds the probe's files for that time.
qemu_accel() {
	local dir=$1 probe accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		cp "$OVMF_VARS" "$dir/probe.vars.fd"
		qemu-system-x86_64 -machine q35,accel=kvm -cpu host -m 256 -display none -no-reboot -monitor none -net none \
			-drive if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE \
			-drive if=pflash,format=raw,unit=1,file="$dir/probe.vars.fd" \
			-serial file:"$dir/probe.serial.log" >"$dir/probe.err" 2>&1 </dev/null &
		probe=$!
		for _ in $(seq 1 16); do
			sleep 0.5
			grep -q -i "internal error" "$dir/probe.err" && break
			kill -0 "$probe" 2>/dev/null || break
			if [ -s "$dir/probe.serial.log" ]; then accel=kvm; break; fi
		done
		kill "$probe" 2>/dev/null || true
		wait "$probe" 2>/dev/null || true
		rm -f "$dir/probe.vars.fd" "$dir/probe.serial.log" "$dir/probe.err"
	fi
	echo "$accel"
}
