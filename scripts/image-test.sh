#!/usr/bin/env bash
# make image-test — boots the appliance image built by `make image` in QEMU
# (root). Five parts:
#   1. one VM (user networking): the kernel boots, the seed disk is imported,
#      halbd is READY, the console (halb-console) shows the seeded node on
#      ttyS0, a request to the proxied port (hostfwd on 127.0.0.1) is
#      answered by a backend on the host (qemu guestfwd runs image-test's
#      backend per connection), ctrl+c does not end the console, the
#      console's key ('!') gives a root shell after the seeded password, and
#      a killed console comes back (systemd). The VM boots twice more (fresh
#      overlays): timings.txt gets each boot's seconds to READY, systemd's
#      "Startup finished" and halbd's critical chain, the median and spread
#      (reported, not asserted).
#   2. two VMs on one LAN (a bridge in a network namespace made here, which
#      is also the client and holds the backend): lb1 (UEFI, seed disk)
#      and lb2 (direct kernel, config from halb.seed= on the command line,
#      no root password: its console key must refuse a shell);
#      lb1 (priority 150) holds the VIP; its QEMU is killed; lb2 must answer
#      on the VIP.
#   3. lb2 boots again with a seed that carries a root password (its
#      console, from here on, read and typed on through tmux) and an
#      operator's keepalived.conf and haproxy.cfg: halb-seed keeps them, and
#      halbctl import in the root shell makes a config that validates; it
#      stays up for part 5.
#   4. (booting beside part 3) a VM with NO seed at all on the same LAN
#      (an address from a DHCP server the test runs there): the test
#      completes the console's setup wizard over the serial port alone
#      (keys sent and the screen read through tmux), and a client on the
#      LAN gets an answer from the backend through the VIP and service the
#      wizard configured.
#   5. lb2 and part 4's VM (lb-wiz) paired over their serial consoles:
#      lb2's console sets a console password and shows a pairing code
#      (beside part 4's wizard), the code is read off its screen, lb-wiz's
#      console joins with it (J); both screens must say so (the same
#      fingerprint), lb-wiz takes lb2's VRRP instance and service; a server
#      added in lb2's edit menu must show on lb-wiz's dashboard, and lb2's
#      must say lb-wiz applied it.
# IMAGE_TEST_ONLY=wizard runs part 4 alone, IMAGE_TEST_ONLY=pair parts 4
# and 5 (lb2 seeded at once), IMAGE_TEST_ONLY=boot part 1, while working
# on them. Before any boot: the root file system is at most 200 MB and has
# the modules a VM or server needs.
# KVM is used when a short probe boot works, else TCG. Logs and timings go
# to out/image/test/. Skips (exit 0) with the reason when not root or when
# QEMU/OVMF cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
img=$repo/out/image/halb.qcow2
dir=$repo/out/image/test
t_start=$(date +%s.%N)

skip() { echo "image-test: SKIP: $*"; exit 0; }
fail() { echo "image-test: FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" -eq 0 ] || skip "needs root (QEMU with tap devices, network namespaces)"

# shellcheck source=scripts/qemu-lib.sh
. scripts/qemu-lib.sh
qemu_packages qemu-system-x86=/usr/bin/qemu-system-x86_64 qemu-utils=/usr/bin/qemu-img \
	ovmf=$OVMF_CODE mtools=/usr/bin/mcopy dosfstools=/usr/sbin/mkfs.vfat curl=/usr/bin/curl \
	iproute2=/usr/sbin/ip python3=/usr/bin/python3 openssl=/usr/bin/openssl \
	tmux=/usr/bin/tmux socat=/usr/bin/socat dnsmasq-base=/usr/sbin/dnsmasq chrony=/usr/sbin/chronyd ||
	skip "the packages above are missing"
[ -f "$img" ] || fail "$img missing: run make image first"
[ -x bin/halbctl ] || fail "bin/halbctl missing: run make build first"

BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}
ADVERT_MS=${ADVERT_MS:-200}

rm -rf "$dir"
mkdir -p "$dir"
ns=halbimg$$
session=halbimg$$-wiz
session_lb2=halbimg$$-lb2
# Unix sockets have a short path limit: theirs is a directory in /tmp.
sockdir=$(mktemp -d /tmp/halbimg.XXXXXX)
pids=()
declare -A vm # the VMs' QEMU PIDs
cleanup() {
	local p
	tmux kill-session -t "$session" 2>/dev/null || true
	tmux kill-session -t "$session_lb2" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$sockdir"
	rm -f "$dir"/*.qcow2 "$dir"/*.vars.fd
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
# overlay NAME: a throwaway qcow2 over the image, and a copy of OVMF's vars.
overlay() {
	qemu-img create -q -f qcow2 -b "$img" -F qcow2 "$dir/$1.qcow2"
	cp "$OVMF_VARS" "$dir/$1.vars.fd"
}

# qemu_args NAME [pipe|socket]: the common part of a VM's command line
# (-nodefaults: none of q35's default DVD-ROM, parallel port and VGA, which
# OVMF, the kernel and udev would probe on every boot); the serial port
# goes to NAME.serial.log, or with pipe to the FIFOs NAME.in
# (keys) and NAME.out (read into NAME.serial.log by the caller), or with
# socket to the unix socket $sockdir/NAME.sock (a terminal attaches there)
# and NAME.serial.log.
accel=tcg
qemu_args() {
	local cpu=max serial=file:$dir/$1.serial.log
	[ "$accel" = kvm ] && cpu=host
	case "${2:-}" in
	pipe) serial=pipe:$dir/$1 ;;
	socket) serial="chardev:ser -chardev socket,id=ser,path=$sockdir/$1.sock,server=on,wait=off,logfile=$dir/$1.serial.log" ;;
	esac
	echo -machine q35,accel=$accel -cpu $cpu -m 512 -smp 1 -nodefaults -display none -no-reboot -monitor none -net none \
		-drive if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE \
		-drive if=pflash,format=raw,unit=1,file=$dir/$1.vars.fd \
		-drive if=virtio,format=qcow2,file=$dir/$1.qcow2 \
		-serial $serial
}

# wait_log FILE REGEX TIMEOUT: until the (serial) log has a line matching.
wait_log() {
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -lt "$end" ]; do
		grep -a -q -E "$2" "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

# send TO TEXT: TEXT typed on a console: TO is a file descriptor (the
# serial port's FIFO) or a tmux session (the terminal on its socket).
send() {
	if [[ $1 =~ ^[0-9]+$ ]]; then
		printf '%s' "$2" >&"$1"
	else
		tmux send-keys -t "$1" -l "$2"
	fi
}

# root_shell TO LOG PASSWORD COMMAND WANT WHAT: on a console (keys to TO,
# see send; its output in LOG): '!', PASSWORD for sulogin, COMMAND in the
# root shell; its output must show WANT. WHAT names the step in failures.
#
# sulogin prints its prompt, then sets the terminal with TCSAFLUSH, which
# discards what was typed in between: keys sent the moment the prompt shows
# can be lost (a CI run read "Login incorrect" so). A person types after a
# moment and types again after "Login incorrect"; so does this, three
# times at most (a wrong password fails all three).
root_shell() {
	local to=$1 log=$2 pw=$3 cmd=$4 want=$5 what=$6 try asked wrong shells
	asked=$(count "$log" 'Give root password for maintenance')
	shells=$(count "$log" 'root@[a-z0-9-]+:')
	wrong=$(count "$log" 'Login incorrect')
	send "$to" '!'
	wait_more "$log" 'Give root password for maintenance' "$asked" 30 ||
		fail "$what: '!' on the console did not ask for the root password (see $log)"
	for try in 1 2 3; do
		sleep 1
		send "$to" "$pw"$'\r'
		local end=$(($(date +%s) + 30))
		while [ "$(date +%s)" -lt "$end" ]; do
			[ "$(count "$log" 'root@[a-z0-9-]+:')" -gt "$shells" ] && break 2
			[ "$(count "$log" 'Login incorrect')" -gt "$wrong" ] && break
			sleep 0.2
		done
		[ "$(count "$log" 'Login incorrect')" -gt "$wrong" ] ||
			fail "$what: no root shell prompt after the password (see $log)"
		wrong=$(count "$log" 'Login incorrect')
		[ "$try" -lt 3 ] || fail "$what: sulogin said \"Login incorrect\" to the password three times (see $log)"
		echo "image-test:   $what: sulogin said \"Login incorrect\" (attempt $try); typing the password again"
		wait_more "$log" 'Give root password for maintenance' "$((asked + try))" 30 ||
			fail "$what: sulogin did not ask again after \"Login incorrect\" (see $log)"
	done
	shell_cmd "$to" "$log" "$cmd" "$want" "$what"
}

# shell_cmd TO LOG COMMAND WANT WHAT: COMMAND in the root shell on the
# console; its output must show WANT within 30 s.
shell_cmd() {
	send "$1" "$3"$'\r'
	wait_log "$2" "$4" 30 || fail "$5: no $4 from '$3' in the root shell (see $2)"
}

# count LOG REGEX: the lines of LOG matching REGEX.
count() { grep -a -c -E "$2" "$1" 2>/dev/null || true; }

# wait_more LOG REGEX N TIMEOUT: until LOG has more than N lines matching.
wait_more() {
	local end=$(($(date +%s) + $4))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(count "$1" "$2")" -gt "$3" ] && return 0
		sleep 0.5
	done
	return 1
}

# lan_up: the LAN of parts 2 and 4: a bridge in the network namespace $ns
# (192.168.77.254, also the client) with a tap per VM (tap1, tap2: lb1,
# lb2; tap3: part 4's VM), the backend on 192.168.77.254:9000, Debian's
# dnsmasq as the DHCP server (lb2 → .2, part 4's VM → .3; option 42 names
# the NTP server) and Debian's chronyd as the NTP server on .254 (-x: it
# never touches the host's clock; it serves the host's clock).
lan_up() {
	local t
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add br0 type bridge
	ip -n "$ns" link set br0 type bridge forward_delay 0 stp_state 0
	ip -n "$ns" addr add 192.168.77.254/24 dev br0
	ip -n "$ns" link set br0 up
	for t in tap1 tap2 tap3; do
		ip -n "$ns" tuntap add dev $t mode tap
		ip -n "$ns" link set $t master br0 up
	done
	mkdir -p "$dir/www"
	echo 'halb-image-test backend ok' >"$dir/www/index.html"
	ip netns exec "$ns" /usr/bin/python3 -m http.server --bind 192.168.77.254 --directory "$dir/www" 9000 \
		>"$dir/backend2.log" 2>&1 &
	pids+=("$!")
	ip netns exec "$ns" dnsmasq --keep-in-foreground --port=0 --interface=br0 --bind-interfaces \
		--dhcp-range=192.168.77.2,static,255.255.255.0,10m --dhcp-host=52:54:00:77:00:02,192.168.77.2 \
		--dhcp-host=52:54:00:77:00:03,192.168.77.3 --dhcp-option=option:ntp-server,192.168.77.254 \
		--dhcp-option=option:router,192.168.77.254 \
		--dhcp-leasefile="$dir/dnsmasq.leases" --pid-file= --log-dhcp --log-facility=- >"$dir/dnsmasq.log" 2>&1 &
	pids+=("$!")
	printf '%s\n' 'local stratum 8' 'allow 192.168.77.0/24' 'bindaddress 192.168.77.254' 'port 123' 'cmdport 0' \
		"pidfile $dir/chronyd.pid" "driftfile $dir/chrony.drift" >"$dir/chrony.conf"
	ip netns exec "$ns" /usr/sbin/chronyd -f "$dir/chrony.conf" -d -x -u root >"$dir/chronyd.log" 2>&1 &
	pids+=("$!")
}

# lb_config N: lb N's config (parts 2, 3 and 5) as $dir/seed-lbN/halb.yaml.
lb_config() {
	local n=$1 prio mgmt peer clock
	prio=$([ "$n" = 1 ] && echo 150 || echo 100)
	mkdir -p "$dir/seed-lb$n"
	if [ "$n" = 1 ]; then
		mgmt="{interface: eth0, address: 192.168.77.1/24}" peer="{name: lb2, address: 192.168.77.2}"
		clock="{servers: [192.168.77.254], set_clock: true}"
	else
		mgmt="{interface: eth0, dhcp: true}" peer="{name: lb1, address: 192.168.77.1}"
		clock="{set_clock: true}"
	fi
	cat >"$dir/seed-lb$n/halb.yaml" <<-EOF
	# image-test, part 2: lb$n of a MASTER/BACKUP pair on the test's LAN; lb1's
	# address is static, lb2's from DHCP; the clock from chronyd on the LAN,
	# configured (lb1) or named by DHCP (lb2).
	node:
	  name: lb$n
	  manage_system: true
	  management: $mgmt
	peers: [$peer]
	time: $clock
	vrrp:
	  - name: web-a
	    interface: eth0
	    vrid: 77
	    priority: $prio
	    advert_interval: ${ADVERT_MS}ms
	    vips: [192.168.77.100/24]
	services:
	  - name: web
	    listen: ["192.168.77.100:80"]
	    mode: http
	    default_backend: www
	    response_headers: {X-LB-Node: lb$n}
	backends:
	  - name: www
	    health: {check: tcp, interval: 2s}
	    servers:
	      - {name: w1, address: "192.168.77.254:9000"}
	EOF
}

# alive PID: the VM is still running.
alive() { kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------- the tree
# The root file system (the tree without /var and the kernel+initrd, which
# go to their own partition and the ESP: assemble.sh's root_used_kb) is at
# most 200 MB, and the module allowlist (image/prepare.sh) kept the drivers
# a VM or a server needs, each with its dependencies (modules.dep).
ROOT_MAX_MB=200
layout=$repo/out/image/layout.txt
root_kb=$(sed -n 's/.*root_used_kb=\([0-9]*\).*/\1/p' "$layout")
[ -n "$root_kb" ] || fail "no root_used_kb in $layout (run make image)"
root_mb=$(awk -v k="$root_kb" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }')
awk -v m="$root_mb" -v x="$ROOT_MAX_MB" 'BEGIN { exit !(m <= x) }' ||
	fail "the root file system is ${root_mb} MB, more than ${ROOT_MAX_MB} MB (root_used_kb=$root_kb in $layout)"
kver=$(sed -n 's/^kernel=//p' "$layout")
moddir=$repo/out/image/root/usr/lib/modules/$kver
need_mods="virtio_net virtio_blk virtio_scsi virtio_pci vmxnet3 hv_netvsc e1000 e1000e igb igc ixgbe i40e ice mlx4_en mlx5_core bnxt_en tg3 r8169 ahci nvme sd_mod megaraid_sas mpt3sas smartpqi usb_storage xhci_pci ext4 vfat nls_cp437 efivarfs 8021q bonding macvlan nf_tables"
missing_mods=$(awk -v want="$need_mods" -v dir="$moddir" '
	function base(p,  b) { b = p; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); gsub(/-/, "_", b); return b }
	FILENAME ~ /modules\.dep$/ { p = $1; sub(/:$/, "", p); path[base(p)] = p; deps[base(p)] = $0; next }
	{ builtin[base($1)] = 1 }
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) {
			if (w[i] in builtin) continue
			if (!(w[i] in path)) { printf "%s ", w[i]; continue }
			m = split(deps[w[i]], d, " ")
			for (j = 1; j <= m; j++) { f = d[j]; sub(/:$/, "", f); if (system("test -f \"" dir "/" f "\"") != 0) printf "%s(%s) ", w[i], f }
		}
	}' "$moddir/modules.dep" "$moddir/modules.builtin")
[ -z "$missing_mods" ] || fail "modules a VM or server needs are missing from the image (or a file they depend on): $missing_mods"
echo "image-test: root file system ${root_mb} MB (at most ${ROOT_MAX_MB}); $(find "$moddir/kernel" -name '*.ko*' | wc -l) kernel modules, the $(wc -w <<<"$need_mods") a VM or server needs among them with their dependencies"

# ---------------------------------------------------------------- accel
if [ -z "${IMAGE_TEST_TCG:-}" ]; then accel=$(qemu_accel "$dir"); fi
echo "image-test: accelerator $accel"

# ---------------------------------------------------------------- consoles
# A console read and typed on through tmux: QEMU's serial port is a unix
# socket, socat in an 80x24 tmux pane is the terminal on it (the size the
# console on ttyS0 is set to). Part 4's VM is $session, lb2 in parts 3
# and 5 $session_lb2.
nkeys=0 # keystrokes sent by keys_to and text_to

# serial_term NAME PID SESSION WHAT: waits for the serial socket of VM
# NAME (QEMU PID), then opens the terminal on it in tmux session SESSION.
serial_term() {
	local end=$(($(date +%s) + 30))
	until [ -S "$sockdir/$1.sock" ]; do
		[ "$(date +%s)" -lt "$end" ] && alive "$2" || fail "$4: QEMU made no serial socket for $1"
		sleep 0.1
	done
	tmux new-session -d -s "$3" -x 80 -y 24 "socat -,raw,echo=0 UNIX-CONNECT:$sockdir/$1.sock"
}

# screen_of SESSION: the 24 lines of a console as the terminal shows them.
screen_of() { tmux capture-pane -p -t "$1" 2>/dev/null; }

# save_screen_of SESSION NAME: the screen as $dir/console-NAME.txt
# (trailing blanks cut).
save_screen_of() { screen_of "$1" | sed 's/ *$//' >"$dir/console-$2.txt"; }

# wait_screen_of SESSION REGEX TIMEOUT WHAT: until the screen shows REGEX
# (looked at every 0.1 s).
wait_screen_of() {
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -lt "$end" ]; do
		screen_of "$1" | grep -q -E "$2" && return 0
		sleep 0.1
	done
	save_screen_of "$1" failed
	fail "$4: the console never showed /$2/; the screen is in $dir/console-failed.txt"
}

# wait_gone SESSION REGEX TIMEOUT WHAT: until the screen no longer shows
# REGEX.
wait_gone() {
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -lt "$end" ]; do
		screen_of "$1" | grep -q -E "$2" || return 0
		sleep 0.1
	done
	save_screen_of "$1" failed
	fail "$4: the console still shows /$2/; the screen is in $dir/console-failed.txt"
}

# keys_to SESSION KEY...: tmux key names (Enter, C-u), one keystroke each;
# text_to SESSION TEXT: typed as is, a keystroke per character.
keys_to() {
	tmux send-keys -t "$1" "${@:2}"
	nkeys=$((nkeys + $# - 1))
}
text_to() {
	tmux send-keys -t "$1" -l "$2"
	nkeys=$((nkeys + ${#2}))
}

# lb2_boot SEED WHAT QEMU-ARG...: boots lb2 (tap2, its MAC; parts 3 and 5)
# with the seed disk SEED; its serial port is a socket with a terminal in
# tmux ($session_lb2), its log $dir/lb2.serial.log.
lb2_boot() {
	local seed=$1 what=$2
	shift 2
	# shellcheck disable=SC2046
	ip netns exec "$ns" qemu-system-x86_64 $(qemu_args lb2 socket) "$@" \
		-drive if=virtio,format=raw,file="$seed" \
		-netdev tap,id=lan,ifname=tap2,script=no,downscript=no \
		-device virtio-net-pci,netdev=lan,mac=52:54:00:77:00:02 >"$dir/lb2.qemu.log" 2>&1 &
	vm[2]=$!
	pids+=("${vm[2]}")
	serial_term lb2 "${vm[2]}" "$session_lb2" "$what (see $dir/lb2.qemu.log)"
}

# ---------------------------------------------------------------- part 4
# The VM with no seed at all, its console on ttyS0 read and typed on
# through tmux ($session).
WIZ_VIP=192.168.77.110

# wizard_boot: starts part 4's VM on the LAN (tap3), where the DHCP server
# gives it its address (the image's default: halbd's DHCP on every NIC).
wizard_boot() {
	[ -e "/run/netns/$ns" ] || lan_up
	overlay wiz
	t_wiz=$(now)
	# shellcheck disable=SC2046
	ip netns exec "$ns" qemu-system-x86_64 $(qemu_args wiz socket) \
		-netdev tap,id=lan,ifname=tap3,script=no,downscript=no \
		-device virtio-net-pci,netdev=lan,mac=52:54:00:77:00:03 \
		>"$dir/wiz.qemu.log" 2>&1 &
	vm[wiz]=$!
	pids+=("${vm[wiz]}")
	serial_term wiz "${vm[wiz]}" "$session" "part 4 (see $dir/wiz.qemu.log)"
}

# Part 4's console: screen, save_screen NAME, wait_screen REGEX TIMEOUT
# WHAT, keys KEY..., text TEXT.
screen() { screen_of "$session"; }
save_screen() { save_screen_of "$session" "$1"; }
wait_screen() { wait_screen_of "$session" "$1" "$2" "part 4 ($3; the serial log is $dir/wiz.serial.log)"; }
keys() { keys_to "$session" "$@"; }
text() { text_to "$session" "$1"; }

# ascii_screen WHAT: the serial console (TERM=vt220) draws in ASCII only,
# laid out for 80x24 (the help line on the last row).
ascii_screen() {
	! screen | LC_ALL=C grep -q '[^ -~]' || { save_screen failed; fail "part 4: non-ASCII characters on the serial console ($1; $dir/console-failed.txt)"; }
	[ "$(screen | wc -l)" -eq 24 ] && screen | sed -n 24p | grep -q -E "$2" ||
		{ save_screen failed; fail "part 4: the $1 screen is not laid out for 80x24: no help line on row 24 ($dir/console-failed.txt)"; }
}

# wizard_run: the wizard over the serial port, then a client through the VIP.
wizard_run() {
	echo "image-test: part 4: no seed; the setup wizard over the serial console, then a client through the VIP"
	wait_log "$dir/wiz.serial.log" 'Started.*halbd\.service' "$BOOT_TIMEOUT" ||
		fail "part 4: halbd did not become READY (see $dir/wiz.serial.log)"
	grep -a -q 'halb-seed: imported' "$dir/wiz.serial.log" && fail "part 4: a seed was imported on a VM with none (see $dir/wiz.serial.log)"
	wait_screen 'halb setup +1/8 +Node' 120 "the wizard on first boot"
	wait_screen '> Node name' 10 "the node name field"
	ascii_screen "wizard's first" 'enter next step'
	save_screen first-boot
	echo "image-test:   no seed: the console on ttyS0 shows the setup wizard $(since "$t_wiz")s after QEMU started"
	local t0 k0=$nkeys
	t0=$(now)
	text lb-wiz
	keys Enter
	# The management network: eth0 with the address halbd's DHCP client got
	# at first boot, DHCP preselected, and the lease shown.
	wait_screen '2/8 +Network' 10 "the network step"
	wait_screen '\(x\) eth0 +link up +52:54:00:77:00:03 +192\.168\.77\.3/24' 60 "eth0 with its DHCP address in the interface list"
	wait_screen 'dhcp BOUND 192\.168\.77\.3/24 from 192\.168\.77\.254' 30 "the lease on the network step"
	save_screen wizard-network
	keys Enter Enter # eth0, DHCP
	# Time: the NTP server DHCP named, offered as the first entry; ctrl+t
	# queries it (chronyd: local stratum 8).
	wait_screen '> Time servers +1\. 192\.168\.77\.254' 10 "the time step with DHCP's NTP server"
	keys C-t
	wait_screen '192\.168\.77\.254: offset [-+][0-9.]+[mun]?s, delay [0-9.]+[mun]?s, stratum 8' 30 "the time server test"
	save_screen wizard-time
	keys Enter Enter # the entry, then leave the list
	wait_screen '> Peer +\(x\) Single node' 10 "the peer step"
	keys Enter # a single node
	wait_screen 'VRID' 10 "the VRRP step"
	wait_screen '\(x\) eth0 +link up +52:54:00:77:00:03 +192\.168\.77\.3/24' 60 "eth0 in the VRRP step's interface list"
	save_screen wizard-vrrp
	keys Enter
	text "$WIZ_VIP/24"
	keys Enter Enter C-u # the VIP, its list left; the suggested VRID cleared
	text 42
	keys Enter Enter Enter Enter # VRID, role (primary), advert (default), no dual-master VIPs
	wait_screen '> Service name +web' 10 "the service step"
	keys Enter Enter Enter # web, port 80, http
	text 192.168.77.254:9000
	keys Enter Enter Enter Enter Enter # the server, the list left, tcp check, roundrobin, no persistence
	wait_screen '> Console password' 10 "the password step"
	text halb-console-pw
	keys Enter
	text halb-console-pw
	keys Enter
	wait_screen 'A first config for lb-wiz' 10 "the review step"
	save_screen wizard-review
	screen | grep -q -F '+ vrrp "vip-a" added' && screen | grep -q -F '~ node changed: management, manage_system' ||
		fail "part 4: the review does not list the VRRP instance and the management network (see $dir/console-wizard-review.txt)"
	# The apply sets the console password first: a PBKDF2 hash, 5 to 20 s
	# of an emulated CPU and more on a busy host (70 s, as in part 5).
	keys Enter
	wait_screen "vip-a MASTER prio 150 VRID 42 on eth0 +VIPs $WIZ_VIP/24" 70 "the dashboard with vip-a MASTER"
	wizard_s=$(since "$t0") wkeys=$((nkeys - k0))
	echo "image-test:   wizard completed over the serial port: $wkeys keystrokes, ${wizard_s}s from the first key to vip-a MASTER on the dashboard"
	local ok='' end=$(($(date +%s) + 60))
	while [ "$(date +%s)" -lt "$end" ]; do
		if ip netns exec "$ns" curl -s -m 2 -o "$dir/wiz.body" "http://$WIZ_VIP/" && grep -q 'backend ok' "$dir/wiz.body"; then
			ok=1
			break
		fi
		sleep 0.5
	done
	[ -n "$ok" ] || fail "part 4: no answer from the backend through http://$WIZ_VIP/ (see $dir/wiz.serial.log, $dir/backend2.log)"
	echo "image-test:   GET http://$WIZ_VIP/ from the LAN → the backend answers through the service the wizard made: $(cat "$dir/wiz.body")"
	# The wizard's config serves /metrics and /stats on the management
	# address (observe.listen ":8404"), never on the VIP.
	ip netns exec "$ns" curl -s -m 10 -o "$dir/wiz.metrics" http://192.168.77.3:8404/metrics ||
		fail "part 4: no /metrics on 192.168.77.3:8404"
	grep -q -E '^halb_frontend_http_requests_total\{proxy="web"\} [1-9]' "$dir/wiz.metrics" &&
		grep -q -E '^halb_vrrp_state\{instance="vip-a"[^}]*\} 2$' "$dir/wiz.metrics" ||
		fail "part 4: /metrics lacks web's requests or vip-a MASTER (see $dir/wiz.metrics)"
	ip netns exec "$ns" curl -s -m 10 -o "$dir/wiz.stats.html" http://192.168.77.3:8404/stats &&
		grep -q 'vip-a' "$dir/wiz.stats.html" && grep -q 'web1' "$dir/wiz.stats.html" ||
		fail "part 4: /stats does not show vip-a and web1 (see $dir/wiz.stats.html)"
	if ip netns exec "$ns" curl -s -m 3 -o /dev/null "http://$WIZ_VIP:8404/metrics"; then
		fail "part 4: /metrics answered on the VIP $WIZ_VIP"
	fi
	wait_screen 'stats http://192\.168\.77\.3:8404/stats' 10 "the stats page's address on the dashboard"
	echo "image-test:   /metrics and /stats on 192.168.77.3:8404 ($(grep -c '^halb_' "$dir/wiz.metrics") halb series; web's requests and vip-a MASTER in them); refused on the VIP"
	wait_screen 'web1 192\.168\.77\.254:9000 +UP .* [1-9][0-9]* req' 30 "the request on the dashboard"
	ascii_screen dashboard 'h handover'
	save_screen dashboard
	part4_s=$(since "$t_wiz")
}

# ---------------------------------------------------------------- part 5
# Two nodes paired over their consoles: lb2 (seeded in part 2, booted
# again in part 3) shows a pairing code, on its console while part 4's
# wizard runs on the other VM; then lb-wiz (set up by that wizard) joins it
# with J and the code read off lb2's screen; a server added to a backend
# in lb2's edit menu must then show on lb-wiz's dashboard, and lb2's must
# say that lb-wiz applied it.
# Each console password halbd sets or checks costs a PBKDF2 hash (600 000
# rounds): about 0.2 s of a real core, 5 to 20 s of an emulated one (TCG),
# hence the waits of 70 s (the console gives it a minute) and lb2's part
# beside part 4.
LB2_PW=halb-console-pw-lb2 # lb2's console password, set in part 5
WIZ_PW=halb-console-pw     # lb-wiz's, set by part 4's wizard

# fingerprint_on SCREEN LABEL: the 64 hex digits of the certificate
# fingerprint a screen shows after LABEL (two lines of eight groups).
fingerprint_on() {
	grep -A1 -E "$2 +sha256 " <<<"$1" | grep -o -w -E '[0-9a-f]{4}' | tr -d '\n'
}

# peer_version SESSION PEER: the config version the console's peer line
# for PEER shows ("peer PEER reachable  config VERSION in sync").
peer_version() {
	screen_of "$1" | sed -n -E "s/^peer $2 reachable +config (.+) in sync( .*)?$/\1/p" | head -n1
}

# password_to SESSION PASSWORD WHAT: the console password in the dialog
# that asks for it; sets checked_s to the time halbd took to check it.
password_to() {
	local t0
	wait_screen_of "$1" 'Console password:' 10 "$3 (the console password asked)"
	text_to "$1" "$2"
	t0=$(now)
	keys_to "$1" Enter
	wait_gone "$1" 'Console password:' 70 "$3 (the console password checked)"
	checked_s=$(since "$t0")
}

# pair_show: on lb2's console, a pairing code (P); the code is read off
# the screen. lb2's seed set no console password: P refuses until one is
# set (p), then asks, and for the password.
pair_show() {
	local a=$session_lb2 sc t0 k0=$nkeys end
	wait_screen_of "$a" '^h handover .* \? keys' 60 "part 5 (lb2's dashboard)"
	# A console that has just started reads whether a password is set a
	# moment later ("one moment: reading this node's console settings"
	# until then): P again.
	end=$(($(date +%s) + 60))
	until screen_of "$a" | grep -q 'set a console password first: p'; do
		[ "$(date +%s)" -lt "$end" ] || {
			save_screen_of "$a" failed
			fail "part 5: P on lb2 (no console password) did not say to set one first (see $dir/console-failed.txt)"
		}
		keys_to "$a" P
		sleep 1
	done
	keys_to "$a" p
	wait_screen_of "$a" '> New password' 10 "part 5 (p on lb2's dashboard)"
	text_to "$a" "$LB2_PW"
	keys_to "$a" Enter
	text_to "$a" "$LB2_PW"
	t0=$(now)
	keys_to "$a" Enter
	wait_screen_of "$a" '^console password set' 70 "part 5 (lb2's console password)"
	set_a_s=$(since "$t0")
	keys_to "$a" P
	wait_screen_of "$a" 'Make a pairing code for another node to join this one' 10 "part 5 (P on lb2's dashboard)"
	keys_to "$a" y
	password_to "$a" "$LB2_PW" "part 5 (P on lb2)"
	check_a_s=$checked_s
	wait_screen_of "$a" '^ +code [0-9A-Z]+(-[0-9A-Z]+)+ +expires in [0-9hms]+ +5 tries left' 30 "part 5 (lb2's pairing screen)"
	wait_screen_of "$a" '^waiting for the other node' 10 "part 5 (lb2's pairing screen)"
	save_screen_of "$a" pair-code
	sc=$(screen_of "$a")
	pair_code=$(sed -n -E 's/^ +code ([0-9A-Z-]+) +expires in .*/\1/p' <<<"$sc")
	pair_fp=$(fingerprint_on "$sc" fingerprint)
	[ ${#pair_fp} -eq 64 ] || fail "part 5: no fingerprint on lb2's pairing screen (see $dir/console-pair-code.txt)"
	grep -q -E '^ +this node +192\.168\.77\.2 .*port 7900$' <<<"$sc" ||
		fail "part 5: lb2's pairing screen does not give its address 192.168.77.2 and port 7900 (see $dir/console-pair-code.txt)"
	show_keys=$((nkeys - k0))
	echo "image-test:   lb2's console: P → \"set a console password first\"; p, the password (set in ${set_a_s}s); P, y, the password (checked in ${check_a_s}s) → the pairing screen: code $pair_code read off the screen (address 192.168.77.2, port 7900, fingerprint sha256 ${pair_fp:0:16}...)"
}

# pair_show_start: pair_show in the background (beside part 4's wizard on
# the other VM); pair_show_end waits for it and takes what it read.
pair_show_start() {
	echo "image-test: part 5 (first steps, beside part 4): lb2's console shows a pairing code"
	(
		pair_show
		for v in pair_code pair_fp set_a_s check_a_s show_keys; do printf '%s=%q\n' "$v" "${!v}"; done >"$dir/pair-show.vars"
	) >"$dir/pair-show.log" 2>&1 &
	show_pid=$!
	pids+=("$show_pid")
}
pair_show_end() {
	local rc=0
	wait "$show_pid" || rc=$?
	cat "$dir/pair-show.log"
	[ "$rc" -eq 0 ] || fail "part 5: lb2's pairing screen (above)"
	# shellcheck source=/dev/null
	. "$dir/pair-show.vars"
}

# pair_join: on lb-wiz's console, J with lb2's address and the code read
# off lb2's screen; lb-wiz's screen must say it is paired, with lb2's
# fingerprint as lb2 showed it, and lb2's pairing screen must close
# saying so.
pair_join() {
	local a=$session_lb2 b=$session t0 sc fp
	wait_screen_of "$b" '^h handover .* \? keys' 10 "part 5 (lb-wiz's dashboard)"
	keys_to "$b" J
	wait_screen_of "$b" '^> Its address' 10 "part 5 (J on lb-wiz's dashboard)"
	text_to "$b" 192.168.77.2
	keys_to "$b" Enter
	text_to "$b" "$pair_code"
	keys_to "$b" Enter Enter # the code; the default peer port
	wait_screen_of "$b" 'Join 192\.168\.77\.2\? This node takes its services' 10 "part 5 (the join asks)"
	keys_to "$b" y
	password_to "$b" "$WIZ_PW" "part 5 (J on lb-wiz)"
	check_b_s=$checked_s
	t0=$(now)
	wait_screen_of "$b" '^Paired with lb2\.$' 60 "part 5 (lb-wiz joins lb2)"
	join_s=$(since "$t0")
	wait_screen_of "$b" '^ +config taken +' 10 "part 5 (the join's result)"
	save_screen_of "$b" pair-joined
	sc=$(screen_of "$b")
	fp=$(fingerprint_on "$sc" "lb2's fingerprint")
	[ "$fp" = "$pair_fp" ] ||
		fail "part 5: lb-wiz shows lb2's fingerprint as '$fp', lb2's pairing screen showed '$pair_fp' (see $dir/console-pair-joined.txt, $dir/console-pair-code.txt)"
	echo "image-test:   lb-wiz's console: J, 192.168.77.2, the code, y, the password (checked in ${check_b_s}s) → \"Paired with lb2.\" ${join_s}s later, lb2's fingerprint as lb2's screen shows it; $(sed -n -E 's/^ +config taken +(.*)/took lb2'"'"'s config \1/p' <<<"$sc")"
	wait_screen_of "$a" '^paired with lb-wiz$' 30 "part 5 (lb2's pairing screen closes when lb-wiz is paired)"
	closed_s=$(since "$t0")
	save_screen_of "$a" pair-closed
	echo "image-test:   lb2's pairing screen closed: \"paired with lb-wiz\" on its dashboard ${closed_s}s after the join began"
	keys_to "$b" Enter
	wait_screen_of "$b" '^peer lb2 reachable +config .+ in sync' 30 "part 5 (lb-wiz's peer line)"
	wait_screen_of "$a" '^peer lb-wiz reachable +config .+ in sync' 30 "part 5 (lb2's peer line)"
	# lb2's VRRP instance and service came with the pairing; the priority
	# is lb-wiz's own: lb2's less 50 (docs/config.md, the node parts).
	wait_screen_of "$b" '^web-a BACKUP prio 50 VRID 77 on eth0 +VIPs 192\.168\.77\.100/24' 30 "part 5 (lb2's VRRP instance on lb-wiz)"
	wait_screen_of "$b" '^>?web http 192\.168\.77\.100:80 ' 10 "part 5 (lb2's service on lb-wiz)"
	save_screen_of "$b" peer-paired
	echo "image-test:   both dashboards: the peer reachable, config $(peer_version "$b" lb2) in sync; lb-wiz runs lb2's web-a (BACKUP, prio 50: its own) and service web"
}

# pair_change: a second server for backend www, added in lb2's edit menu
# (a cluster part), must show on lb-wiz's dashboard; lb2's must then say
# lb-wiz applied it.
pair_change() {
	local a=$session_lb2 b=$session t0 v0 v end
	v0=$(peer_version "$b" lb2)
	keys_to "$a" e
	wait_screen_of "$a" '^  backend www: 1 server\(s\)' 10 "part 5 (e on lb2's dashboard)"
	keys_to "$a" Down Down Enter # VIPs of web-a, service web, backend www
	wait_screen_of "$a" '^> Servers +1\. 192\.168\.77\.254:9000' 10 "part 5 (the backend's form)"
	keys_to "$a" Enter # a second entry
	text_to "$a" 192.168.77.254:9001
	keys_to "$a" Enter Enter Enter Enter # the entry, leave the list, balance, persistence
	wait_screen_of "$a" '~ backends "www" changed: servers' 10 "part 5 (the edit's review)"
	save_screen_of "$a" peer-edit-review
	keys_to "$a" Enter
	wait_screen_of "$a" 'Apply these changes to the running config\?' 10 "part 5 (the edit asks)"
	keys_to "$a" y
	password_to "$a" "$LB2_PW" "part 5 (the edit on lb2)"
	check_edit_s=$checked_s
	t0=$(now) # the password checked: the console applies the config
	wait_screen_of "$b" '^ +www[0-9]+ 192\.168\.77\.254:9001 ' 30 "part 5 (lb2's change on lb-wiz's dashboard)"
	change_s=$(since "$t0")
	save_screen_of "$b" peer-change-arrived
	end=$(($(date +%s) + 30))
	while :; do
		v=$(screen_of "$a" | sed -n -E 's/^  (.+) applied on lb-wiz$/\1/p' | head -n1)
		[ -n "$v" ] && [ "$v" != "$v0" ] && break
		[ "$(date +%s)" -lt "$end" ] || {
			save_screen_of "$a" failed
			fail "part 5: lb2's dashboard does not say lb-wiz applied the change (last: '${v:-none}', before the change: $v0; see $dir/console-failed.txt)"
		}
		sleep 0.1
	done
	applied_s=$(since "$t0")
	save_screen_of "$a" peer-applied
	wait_screen_of "$b" "^peer lb2 reachable +config $v in sync" 10 "part 5 (lb-wiz runs config $v)"
	echo "image-test:   lb2's edit menu: server 192.168.77.254:9001 added to backend www, y, the password (checked in ${check_edit_s}s) → on lb-wiz's dashboard ${change_s}s later; lb2's dashboard: \"$v applied on lb-wiz\" after ${applied_s}s (config $v0 → $v on both)"
}

# pair_run: part 5 after lb2's pairing screen (pair_show): the join and
# the change.
pair_run() {
	echo "image-test: part 5: lb-wiz joins lb2 over its serial console; a change on lb2 reaches lb-wiz"
	local k0=$nkeys t0
	t0=$(now)
	pair_join
	pair_change
	pkeys=$((nkeys - k0 + show_keys)) part5_s=$(since "$t0")
}

# report: the figures of the parts that ran, to $dir/timings.txt.
report() {
	total=$(since "$t_start")
	{
		echo "accelerator: $accel"
		if [ -n "${ready_median:-}" ]; then
			echo "boot to READY (one VM, seeded first boot, from QEMU start; 1 vCPU): ${#ready[@]} boots ${ready[*]} s; median ${ready_median}s (spread ${ready_spread}s)"
			echo "systemd kernel+userspace (to the end of the boot): median ${sd_median}s (spread ${sd_spread}s)"
			for n in $(printf '%s\n' "${!ready[@]}" | sort -n); do
				echo "  boot $n: READY ${ready[$n]}s from QEMU start; systemd: ${sd_line[$n]#Startup finished in }"
				echo "    critical chain: ${sd_chain[$n]}"
			done
		fi
		[ -z "${failover:-}" ] || echo "failover (kill -9 of lb1's QEMU to lb2 answering on the VIP): ${failover}s (VRRP bound ${bound}s; the test allows ${slack}s more)"
		[ -z "${clock_off:-}" ] || echo "clock (lb2 booted 1 h behind, stepped by halbd from chronyd on the LAN): ${clock_off} ms from the host's, ±${clock_err} ms (serial console reading); halbd: ${clock_halbd:-none}"
		[ -z "${wizard_s:-}" ] || echo "part 4 (no seed, the wizard over ttyS0): ${part4_s}s from QEMU start to the client's answer through the VIP${after3:+ (booting beside part 3; ${after3}s after part 3 ended)}; the wizard ${wizard_s}s, $wkeys keystrokes"
		[ -z "${change_s:-}" ] || echo "part 5 (pairing over the consoles; ${pkeys} keystrokes on both): ${part5_s}s after part 4 (lb2's pairing screen made beside it); console password hashes (PBKDF2, TCG): set ${set_a_s}s, checked ${check_a_s}s, ${check_b_s}s, ${check_edit_s}s; the join ${join_s}s from the password checked to \"Paired with lb2.\" (lb2's pairing screen closed after ${closed_s}s); a server added on lb2 showed on lb-wiz's dashboard ${change_s}s after lb2 applied it, \"applied on lb-wiz\" on lb2's after ${applied_s}s (the consoles read halbd's status every second, the test reads the screens every 0.1s)"
		echo "image-test total: ${total}s"
	} | tee "$dir/timings.txt"
	echo "image-test: PASS"
}

# ---------------------------------------------------------------- part 1
ready=() sd_line=() sd_chain=() # per boot of part 1 (1, 2, 3)

# solo_boot N: boots part 1's VM (boot N, a fresh overlay; the seed disk
# seed-solo.img, the user network with hostfwd/guestfwd); its serial port
# through FIFOs (keys on fd 7, the output in $log); waits for halbd READY
# and sets ready[N] to the seconds since QEMU started.
solo_boot() {
	local n=$1 name=solo
	[ "$1" = 1 ] || name=solo$1
	overlay "$name"
	rm -f "$dir/$name.in" "$dir/$name.out"
	mkfifo "$dir/$name.in" "$dir/$name.out"
	cat "$dir/$name.out" >"$dir/$name.serial.log" &
	pids+=("$!")
	exec 7<>"$dir/$name.in"
	log=$dir/$name.serial.log
	t_boot=$(now)
	# shellcheck disable=SC2046
	qemu-system-x86_64 $(qemu_args "$name" pipe) \
		-drive if=virtio,format=raw,file="$dir/seed-solo.img" \
		-nic "user,model=virtio-net-pci,restrict=off,hostfwd=tcp:127.0.0.1:$hostport-:8080,guestfwd=tcp:10.0.2.100:8080-cmd:$dir/backend.sh" \
		>"$dir/$name.qemu.log" 2>&1 &
	solo=$!
	pids+=("$solo")
	wait_log "$log" 'Started.*halbd\.service' "$BOOT_TIMEOUT" ||
		fail "part 1, boot $n: halbd did not become READY within ${BOOT_TIMEOUT}s (see $log)"
	ready[$n]=$(since "$t_boot")
}

# boot_figures N: in the root shell on fd 7 ($log): systemd-analyze (once
# the boot has finished), the critical chain of halbd.service and the
# slowest units, into $dir/solo-bootN.analyze.txt; sets sd_line[N] (the
# "Startup finished" line) and sd_chain[N] (the chain on one line).
boot_figures() {
	local n=$1 out=$dir/solo-boot$1.analyze.txt
	# The markers are split in the command so that its echo does not match.
	send 7 'export SYSTEMD_PAGER= SYSTEMD_COLORS=0; for i in $(seq 120); do systemd-analyze >/dev/null 2>&1 && break; sleep 1; done; echo ==fig""ures-begin==; systemd-analyze; systemd-analyze critical-chain --no-pager halbd.service; systemd-analyze blame --no-pager | head -n 12; journalctl -b -o short-monotonic --no-pager -u halb-seed -u halbd -u halb-seed-root | head -n 30; echo ==fig""ures-end=='$'\r'
	wait_log "$log" '^==figures-end==' 180 || fail "part 1, boot $n: no systemd-analyze figures from the root shell (see $log)"
	tr -d '\r' <"$log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | awk '/^==figures-begin==$/ { f = 1; next } /^==figures-end==$/ { f = 0 } f' >"$out"
	sd_line[$n]=$(grep -m1 '^Startup finished in ' "$out" || true)
	[ -n "${sd_line[$n]}" ] || fail "part 1, boot $n: systemd-analyze gave no \"Startup finished\" line (see $out)"
	sd_chain[$n]=$(awk '/^halbd\.service/ { f = 1; print; next } f && /─/ { print; next } f { exit }' "$out" |
		sed 's/^[^a-zA-Z-]*//' | paste -sd'<' | sed 's/</ <- /g')
	grep -q '^halbd\.service' <<<"${sd_chain[$n]}" || fail "part 1, boot $n: no critical chain for halbd.service (see $out)"
	# halbd follows links by the kernel's notifications, as in the lab,
	# not by polling (its subscription once needed a capability the
	# unit does not grant).
	if grep -a 'link notifications' "$out"; then
		fail "part 1, boot $n: halbd polls the links instead of following the kernel's notifications (see $out)"
	fi
}

# secs TERM: seconds of a systemd time span ("1min 2.5s", "850ms", "3.2s").
secs() {
	awk -v t="$1" 'BEGIN { s = 0; n = split(t, p, " "); for (i = 1; i <= n; i++) {
		v = p[i] + 0
		if (p[i] ~ /ms$/) s += v / 1000; else if (p[i] ~ /us$/) s += v / 1e6
		else if (p[i] ~ /min$/) s += v * 60; else if (p[i] ~ /h$/) s += v * 3600; else s += v }
		printf "%.1f", s }'
}

# sd_term N WHAT: the WHAT (kernel, userspace, firmware, loader) term of
# boot N's "Startup finished" line, in seconds.
sd_term() { secs "$(sed -n -E "s/.*(^| in |\+ )([0-9][0-9a-z. ]*) \($2\).*/\2/p" <<<"${sd_line[$1]}")"; }

# med_spread V...: "median min-max" of the values.
med_spread() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%s %s-%s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'; }

# boot_summary: the median and spread of part 1's boots.
boot_summary() {
	local n ks=() m
	for n in "${!ready[@]}"; do
		ks+=("$(awk -v k="$(sd_term "$n" kernel)" -v u="$(sd_term "$n" userspace)" 'BEGIN { printf "%.1f", k + u }')")
	done
	read -r ready_median ready_spread < <(med_spread "${ready[@]}")
	read -r sd_median sd_spread < <(med_spread "${ks[@]}")
}

# IMAGE_TEST_ONLY (while working on a part): wizard runs part 4 alone;
# pair runs parts 4 and 5, lb2 seeded with its config at once (no parts
# 1-3); boot runs part 1 alone (its three boots).
case ${IMAGE_TEST_ONLY:-} in
"" | boot) ;;
wizard)
	wizard_boot
	wizard_run
	report
	exit 0
	;;
pair)
	lan_up
	lb_config 2
	openssl passwd -6 -salt halbtest2 halb-test-password-2 >"$dir/seed-lb2/root_password_hash"
	seed_disk "$dir/seed-lb2.img" "$dir/seed-lb2"
	overlay lb2
	lb2_boot "$dir/seed-lb2.img" "part 5"
	wizard_boot
	wait_log "$dir/lb2.serial.log" 'Started.*halbd\.service' "$BOOT_TIMEOUT" || fail "part 5: halbd on lb2 did not become READY (see $dir/lb2.serial.log)"
	pair_show_start
	wizard_run
	pair_show_end
	pair_run
	report
	exit 0
	;;
*) fail "IMAGE_TEST_ONLY=$IMAGE_TEST_ONLY: wizard, pair or boot" ;;
esac

# ================================================================ part 1
echo "image-test: part 1: one VM, seed disk, proxied request through hostfwd"
cat >"$dir/backend.sh" <<'EOF'
#!/bin/sh
# Run by qemu's guestfwd for each connection to 10.0.2.100:8080 in the guest.
while IFS= read -r line; do
	line=$(printf '%s' "$line" | tr -d '\r')
	[ -z "$line" ] && break
done
body='halb-image-test backend ok'
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s\n' $((${#body} + 1)) "$body"
EOF
chmod +x "$dir/backend.sh"

mkdir -p "$dir/seed-solo"
cat >"$dir/seed-solo/halb.yaml" <<'EOF'
# image-test, part 1: one HTTP service on all addresses, its backend is the
# test's backend on the host (qemu guestfwd 10.0.2.100:8080). halbd owns
# the machine: DHCP on eth0 (QEMU's user network), the host name.
node:
  name: lb-solo
  manage_system: true
  management: {interface: eth0, dhcp: true}
services:
  - name: web
    listen: [":8080"]
    mode: http
    default_backend: host
    response_headers: {X-LB-Node: lb-solo}
backends:
  - name: host
    health: {check: tcp, interval: 5s}
    servers:
      - {name: h1, address: "10.0.2.100:8080"}
EOF
openssl passwd -6 -salt halbtest halb-test-password >"$dir/seed-solo/root_password_hash"
bin/halbctl config validate "$dir/seed-solo/halb.yaml" >/dev/null || fail "seed config of part 1 does not validate"
seed_disk "$dir/seed-solo.img" "$dir/seed-solo"

hostport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
solo_boot 1
wait_log "$log" 'Welcome to ' 1 || fail "part 1: no systemd status on the serial port (see $log)"
echo "image-test:   halbd READY (systemd: Started halbd.service) ${ready[1]}s after QEMU started"
grep -a -q 'halb-seed: imported halb.yaml from the seed disk' "$log" || fail "part 1: the seed disk was not imported (see $log)"
# (halb-seed-root.service sets it once halbd is READY)
wait_log "$log" 'halb-seed: root password set from the seed' 60 || fail "part 1: the root password was not set from the seed (see $log)"
echo "image-test:   seed imported (halb.yaml, root password)"
# The dashboard's header names the node (the wizard is for unconfigured ones).
wait_log "$log" ' halb lb-solo ' 60 || fail "part 1: the console on ttyS0 does not show the seeded node lb-solo (see $log)"
# The serial console leaves the terminal's scrollback alone (no ESC [3J).
! grep -a -q $'\e\[3J' "$log" || fail "part 1: the serial console cleared the terminal's scrollback (ESC [3J; see $log)"
echo "image-test:   console (halb-console) on ttyS0 shows the dashboard of the seeded node lb-solo, scrollback kept"

ok=
end=$(($(date +%s) + 60))
while [ "$(date +%s)" -lt "$end" ]; do
	if curl -s -m 5 -D "$dir/solo.headers" -o "$dir/solo.body" "http://127.0.0.1:$hostport/" &&
		grep -q 'backend ok' "$dir/solo.body" && grep -qi '^X-LB-Node: lb-solo' "$dir/solo.headers"; then
		ok=1
		break
	fi
	sleep 1
done
[ -n "$ok" ] || fail "part 1: no answer from the backend through 127.0.0.1:$hostport (see $dir/solo.headers, $log)"
echo "image-test:   GET http://127.0.0.1:$hostport/ → $(head -n1 "$dir/solo.headers" | tr -d '\r'), X-LB-Node: lb-solo, body: $(cat "$dir/solo.body")"

# ctrl+c and ctrl+\ on the console end nothing (checked below from the
# shell: the console on ttyS0 was never restarted).
printf '\003\034' >&7
# The console's key: '!' asks for root's password (sulogin) and gives a
# root shell; exit returns to the console.
root_shell 7 "$log" halb-test-password \
	'echo halb-shell-$((6*7)) $(id -u) restarts=$(systemctl show -p NRestarts --value halb-console@ttyS0) $(systemctl show -p ExecStart --value halb-console@ttyS0 | grep -o "argv.*-appliance ;")' \
	'halb-shell-42 0 restarts=0 argv\[\]=/usr/bin/halb-console -appliance ;' "part 1"
echo "image-test:   ctrl+c, ctrl+\\ on the console: still the first run of halb-console -appliance (NRestarts=0)"
# The initrd mounted /var (its message is in the kernel log: the kernel
# command line is quiet).
shell_cmd 7 "$log" 'echo var-$(dmesg | grep -c "halb: /var mounted from /dev/")-$(findmnt -n -o OPTIONS /var | grep -o noatime)' \
	'var-1-noatime' "part 1 (/var mounted by the initrd)"
echo "image-test:   /var mounted by the initrd (\"halb: /var mounted from\" in the kernel log)"
# halbd's DHCP client holds eth0's address (no systemd-networkd), the host
# name is node.name and /etc/hosts names it at that address.
shell_cmd 7 "$log" 'echo net-$(systemctl is-active systemd-networkd)-$(hostname)-$(getent hosts lb-solo | cut -d" " -f1)-$(ip -4 -o addr show dev eth0 | grep -o "inet [0-9./]*" | cut -d" " -f2)-$(halbctl status | grep -o "dhcp BOUND [0-9./]* from [0-9.]*" | tr " " _)-dns$(grep -c "^nameserver 10.0.2.3$" /etc/resolv.conf)' \
	'net-inactive-lb-solo-10\.0\.2\.15-10\.0\.2\.15/24-dhcp_BOUND_10\.0\.2\.15/24_from_10\.0\.2\.2-dns1' "part 1 (the management network and the host name)"
echo "image-test:   eth0 10.0.2.15/24 from halbd's DHCP client (BOUND, QEMU's server 10.0.2.2; systemd-networkd inactive); host name lb-solo, /etc/hosts: lb-solo → 10.0.2.15; /etc/resolv.conf names the lease's DNS server 10.0.2.3"
# A console that dies comes back (Restart=always): tty1's, killed here.
shell_cmd 7 "$log" 'p=$(systemctl show -p MainPID --value halb-console@tty1); kill -9 $p; while q=$(systemctl show -p MainPID --value halb-console@tty1); [ "$q" = "$p" ] || [ "$q" = 0 ]; do sleep 0.2; done; echo tty1-$(systemctl is-active halb-console@tty1)-$(ps -o args= -p $q)' \
	'tty1-active-/usr/bin/halb-console -appliance' "part 1 (the console on tty1 killed)"
echo "image-test:   console on tty1 killed (kill -9) → restarted by systemd"
# What tty1's screen shows (the kernel's copy of it, /dev/vcs1, one row per
# COLUMNS characters): the restarted console's dashboard, its header and
# help line. The bytes that are not printable ASCII are listed (hex) for
# the log.
shell_cmd 7 "$log" 'c=$(stty -F /dev/tty1 size | cut -d" " -f2); for i in $(seq 100); do fold -w $c /dev/vcs1 | grep -q " halb lb-solo " && fold -w $c /dev/vcs1 | grep -q "? keys" && break; sleep 0.2; done; echo tty1-screen-cols$c-$(fold -w $c /dev/vcs1 | grep -c " halb lb-solo ")-$(fold -w $c /dev/vcs1 | grep -c "h handover .* ? keys")-other[$(LC_ALL=C tr -d "[:print:][:space:]" </dev/vcs1 | od -An -tx1 | tr -d " \n")]' \
	'tty1-screen-cols[0-9]+-1-1-other' "part 1 (the dashboard on tty1)"
echo "image-test:   tty1 ($(grep -a -o -E 'tty1-screen-cols[0-9]+' "$log" | tail -n1 | sed 's/.*cols//') columns) shows the dashboard of lb-solo and its help line; bytes other than printable ASCII: [$(grep -a -o -E 'tty1-screen-cols[0-9]+-1-1-other\[[0-9a-f]*\]' "$log" | tail -n1 | sed 's/.*other\[//; s/\]$//')]"
boot_figures 1
heads=$(count "$log" ' halb lb-solo ')
printf 'exit\r' >&7
wait_more "$log" ' halb lb-solo ' "$heads" 30 || fail "part 1: the console did not come back after the shell (see $log)"
echo "image-test:   console key '!' → sulogin with the seeded password → root shell → back to the console"
kill "$solo"
wait "$solo" 2>/dev/null || true
exec 7>&-
# The boot time: the same VM booted twice more, each on a fresh overlay
# (a first boot again: seed imported, machine id committed), read as in
# boot 1. Reported (median and spread), not asserted.
for n in 2 3; do
	solo_boot $n
	grep -a -q 'halb-seed: imported halb.yaml from the seed disk' "$log" || fail "part 1, boot $n: the seed disk was not imported (see $log)"
	wait_log "$log" ' halb lb-solo ' 60 || fail "part 1, boot $n: the console does not show lb-solo (see $log)"
	root_shell 7 "$log" halb-test-password 'echo boot-$((6*7))' 'boot-42' "part 1, boot $n"
	boot_figures $n
	kill "$solo"
	wait "$solo" 2>/dev/null || true
	exec 7>&-
done
boot_summary
echo "image-test:   boot to READY from QEMU start, 3 boots: ${ready[*]} s; median ${ready_median}s (spread ${ready_spread}s); systemd kernel+userspace median ${sd_median}s (spread ${sd_spread}s)"
[ "${IMAGE_TEST_ONLY:-}" = boot ] && { report; exit 0; }

# ================================================================ part 2
echo "image-test: part 2: two VMs, VRRP failover on a bridge in netns $ns"
lan_up

for n in 1 2; do
	lb_config $n
	bin/halbctl config validate "$dir/seed-lb$n/halb.yaml" >/dev/null || fail "seed config of lb$n does not validate"
	if [ $n = 2 ]; then
		# lb2 takes its config from the kernel command line (halb.seed=),
		# booted with a direct kernel; its seed disk is empty.
		grep -v '^#' "$dir/seed-lb2/halb.yaml" | base64 -w0 >"$dir/lb2.seed.b64"
		mv "$dir/seed-lb2/halb.yaml" "$dir/lb2.halb.yaml"
	fi
	seed_disk "$dir/seed-lb$n.img" "$dir/seed-lb$n"
	overlay lb$n
done
kver=$(sed -n 's/^kernel=//p' "$repo/out/image/layout.txt")
rootuuid=$(sed -n 's/^root_partuuid=//p' "$repo/out/image/layout.txt")
kernel=$repo/out/image/root/boot/vmlinuz-$kver
initrd=$repo/out/image/root/boot/initrd.img-$kver
[ -f "$kernel" ] && [ -f "$initrd" ] && [ -n "$rootuuid" ] || fail "no kernel, initrd or root PARTUUID of the image in out/image (run make image)"
direct=(-kernel "$kernel" -initrd "$initrd"
	-append "root=PARTUUID=$rootuuid ro rootfstype=ext4 quiet loglevel=3 console=ttyS0,115200 net.ifnames=0 systemd.show_status=true halb.seed=$(cat "$dir/lb2.seed.b64")")

t_boot2=$(now)
for n in 1 2; do
	# shellcheck disable=SC2046
	extra=() serial=
	if [ $n = 2 ]; then
		extra=("${direct[@]}")
		# lb2's serial port through FIFOs: the test types on its console.
		serial=pipe
		mkfifo "$dir/lb2.in" "$dir/lb2.out"
		cat "$dir/lb2.out" >"$dir/lb2.serial.log" &
		pids+=("$!")
		exec 8<>"$dir/lb2.in"
	fi
	ip netns exec "$ns" qemu-system-x86_64 $(qemu_args lb$n $serial) "${extra[@]}" \
		-drive if=virtio,format=raw,file="$dir/seed-lb$n.img" \
		-netdev tap,id=lan,ifname=tap$n,script=no,downscript=no \
		-device virtio-net-pci,netdev=lan,mac=52:54:00:77:00:0$n \
		>"$dir/lb$n.qemu.log" 2>&1 &
	vm[$n]=$!
	pids+=("${vm[$n]}")
done
for n in 1 2; do
	wait_log "$dir/lb$n.serial.log" 'Started.*halbd\.service' "$BOOT_TIMEOUT" ||
		fail "part 2: halbd on lb$n did not become READY (see $dir/lb$n.serial.log)"
done
grep -a -q 'halb-seed: imported halb.yaml from the seed disk' "$dir/lb1.serial.log" ||
	fail "part 2: lb1 did not import its seed disk"
grep -a -q 'halb-seed: imported halb.yaml from the kernel command line' "$dir/lb2.serial.log" ||
	fail "part 2: lb2 did not import halb.seed= from the kernel command line"
echo "image-test:   both VMs READY after $(since "$t_boot2")s (booting side by side; lb2 seeded by halb.seed= on a direct-kernel boot)"

# get: one request to the VIP from the namespace; prints the answering node.
# What the request saw (curl's exit code, status, time, the VIP's neighbour
# entry) is kept in $dir/get.last for a failure's message.
get() {
	local out rc
	out=$(ip netns exec "$ns" curl -s -m "${1:-1}" --connect-timeout "${1:-1}" -D - -o /dev/null \
		-w 'curl: HTTP %{http_code}, connect %{time_connect}s, total %{time_total}s' http://192.168.77.100/ 2>/dev/null)
	rc=$?
	printf '%s\n' "$out" | tr -d '\r' | sed -n 's/^[Xx]-[Ll][Bb]-[Nn]ode: //p'
	printf 'curl exit %s; %s; status line: %s; neighbour: %s\n' "$rc" "$(printf '%s\n' "$out" | grep -a '^curl: ')" \
		"$(printf '%s\n' "$out" | head -n1 | tr -d '\r')" "$(ip -n "$ns" neigh show 192.168.77.100 | tr '\n' ' ')" >"$dir/get.last"
}
# lb1 must be MASTER, answering on the VIP (preemption after lb2 came up first).
end=$(($(date +%s) + 60))
who=
while [ "$(date +%s)" -lt "$end" ]; do
	who=$(get 2)
	[ "$who" = lb1 ] && break
	sleep 0.5
done
[ "$who" = lb1 ] || fail "part 2: the VIP is not answered by lb1 (last answer: '${who:-none}'; $(cat "$dir/get.last"))"
# Stable for a moment (no flapping between the two).
for _ in 1 2 3 4 5; do
	who=$(get 2)
	[ "$who" = lb1 ] || fail "part 2: the VIP moved away from lb1 without a fault (answer: '${who:-none}'; $(cat "$dir/get.last"))"
	sleep 0.2
done
echo "image-test:   VIP 192.168.77.100:80 answered by lb1 (MASTER)"

# lb2's seed has no root password: root stays locked and the console key
# gives no shell. (Keys typed before the console runs are flushed when
# systemd hands it the terminal: first its screen.)
wait_log "$dir/lb2.serial.log" ' halb lb2 ' 60 || fail "part 2: lb2's console does not show its node (see $dir/lb2.serial.log)"
printf '!' >&8
wait_log "$dir/lb2.serial.log" 'the root account is locked' 30 ||
	fail "part 2: '!' on lb2's console (no root password seeded) did not say root is locked (see $dir/lb2.serial.log)"
# sulogin waits for Enter, then the console is back.
heads=$(count "$dir/lb2.serial.log" ' halb lb2 ')
printf '\r' >&8
wait_more "$dir/lb2.serial.log" ' halb lb2 ' "$heads" 30 ||
	fail "part 2: lb2's console did not come back after sulogin refused (see $dir/lb2.serial.log)"
echo "image-test:   lb2 (no root password in its seed): '!' → \"the root account is locked\", no shell, back to the console"

# Kill lb1's QEMU: lb2 must take the VIP over.
t_kill=$(now)
kill -9 "${vm[1]}"
wait "${vm[1]}" 2>/dev/null || true
who=
end=$(($(date +%s) + 30))
while [ "$(date +%s)" -lt "$end" ]; do
	who=$(get 0.2)
	[ "$who" = lb2 ] && break
	sleep 0.05
done
failover=$(since "$t_kill")
[ "$who" = lb2 ] || fail "part 2: lb2 did not answer on the VIP within 30s after lb1 was killed"
# RFC 5798: Master_Down_Interval = 3 * Advert + (256 - priority) * Advert / 256.
bound=$(awk -v a="$ADVERT_MS" 'BEGIN { printf "%.2f", (3 * a + (256 - 100) * a / 256) / 1000 }')
echo "image-test:   lb1 killed → VIP answered by lb2 after ${failover}s (VRRP bound ${bound}s, advert ${ADVERT_MS}ms; measured with 0.2s request timeouts)"
slack=${FAILOVER_SLACK:-2}
awk -v f="$failover" -v b="$bound" -v s="$slack" 'BEGIN { exit !(f <= b + s) }' ||
	fail "part 2: failover took ${failover}s, more than the bound ${bound}s + ${slack}s"

# ================================================================ part 3
# lb2 booted once with no root password: root is locked and the first
# boot is done. It boots again with a seed that carries a password (and a
# halb.yaml, which must be ignored: lb2 has its config): the password is
# set on this boot too, and the console's key gives a root shell with it.
# Its clock starts one hour behind (QEMU -rtc base=): halbd's DHCP client
# renews the lease, the NTP server DHCP names sets the clock right.
echo "image-test: part 3: lb2 boots again with a seed that carries a root password and its clock an hour behind (part 4's VM boots beside it)"
wizard_boot
kill -9 "${vm[2]}"
wait "${vm[2]}" 2>/dev/null || true
exec 8>&-
mkdir -p "$dir/seed-lb2b"
openssl passwd -6 -salt halbtest2 halb-test-password-2 >"$dir/seed-lb2b/root_password_hash"
cp "$dir/seed-solo/halb.yaml" "$dir/seed-lb2b/halb.yaml"
# An operator's keepalived.conf and haproxy.cfg (netlab's import pair) ride
# along: halb-seed keeps them for the console's import, and the image's
# halbctl imports them.
cp "$repo/netlab/testdata/import/lb2/keepalived.conf" "$dir/seed-lb2b/keepalived.conf"
sed 's|{{.Dir}}|/run/haproxy|' "$repo/netlab/testdata/import/lb2/haproxy.cfg" >"$dir/seed-lb2b/haproxy.cfg"
seed_disk "$dir/seed-lb2b.img" "$dir/seed-lb2b"
mv "$dir/lb2.serial.log" "$dir/lb2.boot1.serial.log"
mv "$dir/lb2.qemu.log" "$dir/lb2.boot1.qemu.log"
t_boot3=$(now)
lb2_boot "$dir/seed-lb2b.img" "part 3" -kernel "$kernel" -initrd "$initrd" \
	-append "root=PARTUUID=$rootuuid ro rootfstype=ext4 quiet loglevel=3 console=ttyS0,115200 net.ifnames=0 systemd.show_status=true" \
	-rtc "base=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%S),clock=host"
log=$dir/lb2.serial.log
wait_log "$log" 'Started.*halbd\.service' "$BOOT_TIMEOUT" || fail "part 3: halbd on lb2 did not become READY on its second boot (see $log)"
wait_log "$log" 'halb-seed: root password set from the seed' 60 ||
	fail "part 3: the seed's root password was not set on lb2's second boot (see $log)"
grep -a -q 'halb-seed: halb.yaml on the seed disk ignored: /var/lib/halb/halb.yaml exists' "$log" ||
	fail "part 3: the console does not say the seed's halb.yaml was ignored (see $log)"
wait_log "$log" ' halb lb2 ' 60 || fail "part 3: the console does not show lb2's own config (see $log)"
echo "image-test:   second boot READY after $(since "$t_boot3")s: \"root password set from the seed\", the seed's halb.yaml ignored (lb2 keeps its config)"
root_shell "$session_lb2" "$log" halb-test-password-2 \
	'echo halb-journal-$(journalctl -b -u halb-seed -u halb-seed-root --no-pager | grep -c "root password set from the seed") $(id -u)' \
	'halb-journal-1 0' "part 3 (the journal must have halb-seed's message)"
echo "image-test:   console key '!' → sulogin with the new seed's password → root shell; the journal has halb-seed's message"
# The import: halb-seed kept the files; halbctl imports them into a config
# that validates (the marker is split so that the command's echo does not
# match).
grep -a -q 'halb-seed: kept haproxy.cfg from the seed disk for the console' "$log" ||
	fail "part 3: halb-seed did not keep the seed's haproxy.cfg (see $log)"
shell_cmd "$session_lb2" "$log" 'cd /var/lib/halb/import && halbctl import --keepalived keepalived.conf --haproxy haproxy.cfg --allow-partial -o /run/imported.yaml 2>/run/import-report.txt; halbctl config validate /run/imported.yaml | sed "s/^/imp""orted: /"; grep -c "^keepalived.conf:[0-9]*:[0-9]*: dropped" /run/import-report.txt | sed "s/^/drop""ped: /"' \
	'imported: /run/imported.yaml: ok' "part 3 (halbctl import of the seed's files)"
wait_log "$log" 'dropped: [1-9]' 10 || fail "part 3: the import report names no dropped keepalived directive (see $log)"
echo "image-test:   halb-seed kept the seed's keepalived.conf and haproxy.cfg; halbctl import made a config that validates, its report names keepalived.conf's dropped directives"
# Names: the host name is lb2's, /etc/hosts names its peer; its address is
# the lease's (halbd's DHCP client, dnsmasq on the LAN).
# (halbd writes them when the lease comes, which may be after READY: up
# to 20 s more.)
shell_cmd "$session_lb2" "$log" 'SECONDS=0; while [ $SECONDS -lt 20 ] && [ "$(getent hosts lb2 | cut -d" " -f1)" != 192.168.77.2 ]; do sleep 0.5; done; echo names-$(hostname)-$(getent hosts lb1 | cut -d" " -f1)-$(getent hosts lb2 | cut -d" " -f1)' \
	'names-lb2-192\.168\.77\.1-192\.168\.77\.2' "part 3 (host name and /etc/hosts)"
grep -q 'DHCPACK(br0) 192.168.77.2 52:54:00:77:00:02' "$dir/dnsmasq.log" || fail "part 3: dnsmasq never acknowledged lb2's lease (see $dir/dnsmasq.log)"
echo "image-test:   lb2: host name lb2, /etc/hosts: lb1 → 192.168.77.1, lb2 → 192.168.77.2 (its DHCP address)"
# The clock: halbd steps it once the NTP server DHCP named answers; then
# the guest's clock is read over the serial console between two readings
# of the host's, which bound the error.
shell_cmd "$session_lb2" "$log" 'for i in $(seq 120); do halbctl status -json | grep -q "\"steps\": [1-9]" && break; sleep 0.5; done; echo stepped-$(halbctl status -json | grep -o "\"steps\": [0-9]*" | tr -dc 0-9)' \
	'stepped-[1-9]' "part 3 (halbd stepped the clock)"
# Five readings; the one with the shortest round trip bounds the error best.
clock_off= clock_err=
for _ in 1 2 3 4 5; do
	clock_n=$(count "$log" 'guestclock-[0-9]+\.[0-9]+-end')
	h0=$(date +%s.%N)
	send "$session_lb2" 'echo guestclock-$(date +%s.%N)-end'$'\r'
	until [ "$(count "$log" 'guestclock-[0-9]+\.[0-9]+-end')" -gt "$clock_n" ]; do
		awk -v a="$h0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a < 30) }' || fail "part 3: no clock reading from lb2's shell (see $log)"
		sleep 0.005
	done
	h1=$(date +%s.%N)
	g=$(grep -a -o -E 'guestclock-[0-9]+\.[0-9]+-end' "$log" | tail -n1 | sed 's/guestclock-//; s/-end//')
	read -r off err < <(awk -v g="$g" -v a="$h0" -v b="$h1" 'BEGIN { printf "%.3f %.3f\n", (g - (a + b) / 2) * 1000, (b - a) / 2 * 1000 }')
	if [ -z "$clock_err" ] || awk -v e="$err" -v c="$clock_err" 'BEGIN { exit !(e < c) }'; then
		clock_off=$off clock_err=$err
	fi
done
# halbd's own view (the marker is split in the command so that its echo
# does not match).
shell_cmd "$session_lb2" "$log" 'halbctl status | grep -E "^ *time " | sed "s/^/clock""line: /"' 'clockline: time' "part 3 (halbctl status time line)"
clock_halbd=$(grep -a -o -E 'offset [-+]?[0-9.]+[^ ,]*s from 192\.168\.77\.254' "$log" | tail -n1)
echo "image-test:   lb2's clock (booted 1 h behind) after halbd's step: ${clock_off} ms from the host's, ±${clock_err} ms (half the shortest serial round trip of 5); halbd's own figure: ${clock_halbd:-none}"
awk -v o="$clock_off" -v e="$clock_err" 'BEGIN { if (o < 0) o = -o; exit !(o <= 100 + e) }' ||
	fail "part 3: lb2's clock is ${clock_off} ms off the host's (±${clock_err} ms), more than 100 ms"
# lb2 stays up for part 5: back to its console.
send "$session_lb2" exit$'\r'
wait_screen_of "$session_lb2" '^h handover .* \? keys' 30 "part 3 (lb2's console after the root shell)"

# ================================================================ part 4
t_part4=$(now)
pair_show_start # part 5's first steps, on lb2's console
wizard_run
after3=$(since "$t_part4")

# ================================================================ part 5
pair_show_end
pair_run
report
