#!/usr/bin/env bash
# make image-test — boots the appliance image built by `make image` in QEMU
# (root). Four parts:
#   1. one VM (user networking): the kernel boots, the seed disk is imported,
#      halbd is READY, the console (halb-console) shows the seeded node on
#      ttyS0, a request to the proxied port (hostfwd on 127.0.0.1) is
#      answered by a backend on the host (qemu guestfwd runs image-test's
#      backend per connection), ctrl+c does not end the console, the
#      console's key ('!') gives a root shell after the seeded password, and
#      a killed console comes back (systemd).
#   2. two VMs on one LAN (a bridge in a network namespace made here, which
#      is also the client and holds the backend): lb1 (UEFI, seed disk)
#      and lb2 (direct kernel, config from halb.seed= on the command line,
#      no root password: its console key must refuse a shell);
#      lb1 (priority 150) holds the VIP; its QEMU is killed; lb2 must answer
#      on the VIP.
#   3. lb2 boots again with a seed that carries a root password.
#   4. (booting beside part 3) a VM with NO seed at all on the same LAN
#      (an address from a DHCP server the test runs there): the test
#      completes the console's setup wizard over the serial port alone
#      (keys sent and the screen read through tmux), and a client on the
#      LAN gets an answer from the backend through the VIP and service the
#      wizard configured.
# IMAGE_TEST_ONLY=wizard runs part 4 alone (while working on it).
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

rm -rf "$dir"
mkdir -p "$dir"
ns=halbimg$$
session=halbimg$$-wiz
# Unix sockets have a short path limit: theirs is a directory in /tmp.
sockdir=$(mktemp -d /tmp/halbimg.XXXXXX)
pids=()
declare -A vm # the VMs' QEMU PIDs
cleanup() {
	local p
	tmux kill-session -t "$session" 2>/dev/null || true
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

# qemu_args NAME [pipe|socket]: the common part of a VM's command line; the
# serial port goes to NAME.serial.log, or with pipe to the FIFOs NAME.in
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
	echo -machine q35,accel=$accel -cpu $cpu -m 512 -smp 1 -display none -no-reboot -monitor none -net none \
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
		sleep 0.5
	done
	return 1
}

# root_shell FD LOG PASSWORD COMMAND WANT WHAT: on a console (keys to fd
# FD, its output in LOG): '!', PASSWORD for sulogin, COMMAND in the root
# shell; its output must show WANT. WHAT names the step in failures.
root_shell() {
	local fd=$1 log=$2 pw=$3 cmd=$4 want=$5 what=$6
	printf '!' >&"$fd"
	wait_log "$log" 'Give root password for maintenance' 30 ||
		fail "$what: '!' on the console did not ask for the root password (see $log)"
	printf '%s\r' "$pw" >&"$fd"
	wait_log "$log" 'root@[a-z0-9-]+:' 30 || fail "$what: no root shell prompt after the password (see $log)"
	shell_cmd "$fd" "$log" "$cmd" "$want" "$what"
}

# shell_cmd FD LOG COMMAND WANT WHAT: COMMAND in the root shell on the
# console; its output must show WANT within 30 s.
shell_cmd() {
	printf '%s\r' "$3" >&"$1"
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

# alive PID: the VM is still running.
alive() { kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------- accel
if [ -z "${IMAGE_TEST_TCG:-}" ]; then accel=$(qemu_accel "$dir"); fi
echo "image-test: accelerator $accel"

# ---------------------------------------------------------------- part 4
# The VM with no seed at all, its console on ttyS0 read and typed on
# through tmux: QEMU's serial port is a unix socket, socat in an 80x24 tmux
# pane is the terminal on it (the size the console on ttyS0 is set to).
WIZ_VIP=192.168.77.110
wkeys=0

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
	local end=$(($(date +%s) + 30))
	until [ -S "$sockdir/wiz.sock" ]; do
		[ "$(date +%s)" -lt "$end" ] && alive "${vm[wiz]}" || fail "part 4: QEMU made no serial socket (see $dir/wiz.qemu.log)"
		sleep 0.1
	done
	tmux new-session -d -s "$session" -x 80 -y 24 "socat -,raw,echo=0 UNIX-CONNECT:$sockdir/wiz.sock"
}

# screen: the 24 lines of part 4's console as the terminal shows them.
screen() { tmux capture-pane -p -t "$session" 2>/dev/null; }

# save_screen NAME: the screen as $dir/console-NAME.txt (trailing blanks cut).
save_screen() { screen | sed 's/ *$//' >"$dir/console-$1.txt"; }

# wait_screen REGEX TIMEOUT WHAT: until the screen shows REGEX.
wait_screen() {
	local end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$end" ]; do
		screen | grep -q -E "$1" && return 0
		sleep 0.2
	done
	save_screen failed
	fail "part 4: the console never showed /$1/ ($3); the screen is in $dir/console-failed.txt, the serial log in $dir/wiz.serial.log"
}

# keys KEY...: tmux key names (Enter, C-u), one keystroke each; text TEXT:
# typed as is, a keystroke per character.
keys() {
	tmux send-keys -t "$session" "$@"
	wkeys=$((wkeys + $#))
}
text() {
	tmux send-keys -t "$session" -l "$1"
	wkeys=$((wkeys + ${#1}))
}

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
	local t0
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
	keys Enter
	wait_screen "vip-a MASTER prio 150 VRID 42 on eth0 +VIPs $WIZ_VIP/24" 30 "the dashboard with vip-a MASTER"
	wizard_s=$(since "$t0")
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
	wait_screen 'web1 192\.168\.77\.254:9000 +UP .* [1-9][0-9]* req' 30 "the request on the dashboard"
	ascii_screen dashboard 'h handover'
	save_screen dashboard
	part4_s=$(since "$t_wiz")
}

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
overlay solo
# The serial port through FIFOs: the test types on the console too.
mkfifo "$dir/solo.in" "$dir/solo.out"
cat "$dir/solo.out" >"$dir/solo.serial.log" &
pids+=("$!")
exec 7<>"$dir/solo.in"
t_boot=$(now)
# shellcheck disable=SC2046
qemu-system-x86_64 $(qemu_args solo pipe) \
	-drive if=virtio,format=raw,file="$dir/seed-solo.img" \
	-nic "user,model=virtio-net-pci,restrict=off,hostfwd=tcp:127.0.0.1:$hostport-:8080,guestfwd=tcp:10.0.2.100:8080-cmd:$dir/backend.sh" \
	>"$dir/solo.qemu.log" 2>&1 &
solo=$!
pids+=("$solo")
log=$dir/solo.serial.log

wait_log "$log" 'Linux version' 120 || fail "part 1: no kernel output on the serial port (see $log)"
echo "image-test:   kernel booted after $(since "$t_boot")s"
wait_log "$log" 'Started.*halbd\.service' "$BOOT_TIMEOUT" ||
	fail "part 1: halbd did not become READY within ${BOOT_TIMEOUT}s (see $log)"
ready_solo=$(since "$t_boot")
echo "image-test:   halbd READY (systemd: Started halbd.service) after ${ready_solo}s"
grep -a -q 'halb-seed: imported halb.yaml from the seed disk' "$log" || fail "part 1: the seed disk was not imported (see $log)"
grep -a -q 'halb-seed: root password set from the seed' "$log" || fail "part 1: the root password was not set from the seed (see $log)"
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
heads=$(count "$log" ' halb lb-solo ')
printf 'exit\r' >&7
wait_more "$log" ' halb lb-solo ' "$heads" 30 || fail "part 1: the console did not come back after the shell (see $log)"
echo "image-test:   console key '!' → sulogin with the seeded password → root shell → back to the console"
kill "$solo"
wait "$solo" 2>/dev/null || true

# ================================================================ part 2
echo "image-test: part 2: two VMs, VRRP failover on a bridge in netns $ns"
ADVERT_MS=${ADVERT_MS:-200}
lan_up

for n in 1 2; do
	prio=$([ $n = 1 ] && echo 150 || echo 100)
	mkdir -p "$dir/seed-lb$n"
	if [ $n = 1 ]; then
		mgmt="{interface: eth0, address: 192.168.77.1/24}" peer="{name: lb2, address: 192.168.77.2}"
		clock="{servers: [192.168.77.254], set_clock: true}"
	else
		mgmt="{interface: eth0, dhcp: true}" peer="{name: lb1, address: 192.168.77.1}"
		clock="{set_clock: true}"
	fi
	cat >"$dir/seed-lb$n/halb.yaml" <<EOF
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
	-append "root=PARTUUID=$rootuuid ro rootfstype=ext4 console=ttyS0,115200 net.ifnames=0 halb.seed=$(cat "$dir/lb2.seed.b64")")

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
get() {
	ip netns exec "$ns" curl -s -m "${1:-1}" --connect-timeout "${1:-1}" -D - -o /dev/null http://192.168.77.100/ 2>/dev/null |
		tr -d '\r' | sed -n 's/^[Xx]-[Ll][Bb]-[Nn]ode: //p' || true
}
# lb1 must be MASTER, answering on the VIP (preemption after lb2 came up first).
end=$(($(date +%s) + 60))
who=
while [ "$(date +%s)" -lt "$end" ]; do
	who=$(get 2)
	[ "$who" = lb1 ] && break
	sleep 0.5
done
[ "$who" = lb1 ] || fail "part 2: the VIP is not answered by lb1 (last answer: '${who:-none}')"
# Stable for a moment (no flapping between the two).
for _ in 1 2 3 4 5; do
	who=$(get 2)
	[ "$who" = lb1 ] || fail "part 2: the VIP moved away from lb1 without a fault (answer: '${who:-none}')"
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
seed_disk "$dir/seed-lb2b.img" "$dir/seed-lb2b"
mv "$dir/lb2.serial.log" "$dir/lb2.boot1.serial.log"
rm -f "$dir/lb2.in" "$dir/lb2.out"
mkfifo "$dir/lb2.in" "$dir/lb2.out"
cat "$dir/lb2.out" >"$dir/lb2.serial.log" &
pids+=("$!")
exec 8<>"$dir/lb2.in"
t_boot3=$(now)
# shellcheck disable=SC2046
ip netns exec "$ns" qemu-system-x86_64 $(qemu_args lb2 pipe) -kernel "$kernel" -initrd "$initrd" \
	-append "root=PARTUUID=$rootuuid ro rootfstype=ext4 console=ttyS0,115200 net.ifnames=0" \
	-rtc "base=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%S),clock=host" \
	-drive if=virtio,format=raw,file="$dir/seed-lb2b.img" \
	-netdev tap,id=lan,ifname=tap2,script=no,downscript=no \
	-device virtio-net-pci,netdev=lan,mac=52:54:00:77:00:02 >"$dir/lb2.boot2.qemu.log" 2>&1 &
vm[2]=$!
pids+=("${vm[2]}")
log=$dir/lb2.serial.log
wait_log "$log" 'Started.*halbd\.service' "$BOOT_TIMEOUT" || fail "part 3: halbd on lb2 did not become READY on its second boot (see $log)"
grep -a -q 'halb-seed: root password set from the seed' "$log" ||
	fail "part 3: the seed's root password was not set on lb2's second boot (see $log)"
grep -a -q 'halb-seed: halb.yaml on the seed disk ignored: /var/lib/halb/halb.yaml exists' "$log" ||
	fail "part 3: the console does not say the seed's halb.yaml was ignored (see $log)"
wait_log "$log" ' halb lb2 ' 60 || fail "part 3: the console does not show lb2's own config (see $log)"
echo "image-test:   second boot READY after $(since "$t_boot3")s: \"root password set from the seed\", the seed's halb.yaml ignored (lb2 keeps its config)"
root_shell 8 "$log" halb-test-password-2 \
	'echo halb-journal-$(journalctl -b -u halb-seed --no-pager | grep -c "root password set from the seed") $(id -u)' \
	'halb-journal-1 0' "part 3 (the journal must have halb-seed's message)"
echo "image-test:   console key '!' → sulogin with the new seed's password → root shell; the journal has halb-seed's message"
# Names: the host name is lb2's, /etc/hosts names its peer; its address is
# the lease's (halbd's DHCP client, dnsmasq on the LAN).
shell_cmd 8 "$log" 'echo names-$(hostname)-$(getent hosts lb1 | cut -d" " -f1)-$(getent hosts lb2 | cut -d" " -f1)' \
	'names-lb2-192\.168\.77\.1-192\.168\.77\.2' "part 3 (host name and /etc/hosts)"
grep -q 'DHCPACK(br0) 192.168.77.2 52:54:00:77:00:02' "$dir/dnsmasq.log" || fail "part 3: dnsmasq never acknowledged lb2's lease (see $dir/dnsmasq.log)"
echo "image-test:   lb2: host name lb2, /etc/hosts: lb1 → 192.168.77.1, lb2 → 192.168.77.2 (its DHCP address)"
# The clock: halbd steps it once the NTP server DHCP named answers; then
# the guest's clock is read over the serial console between two readings
# of the host's, which bound the error.
shell_cmd 8 "$log" 'for i in $(seq 120); do halbctl status -json | grep -q "\"steps\": [1-9]" && break; sleep 0.5; done; echo stepped-$(halbctl status -json | grep -o "\"steps\": [0-9]*" | tr -dc 0-9)' \
	'stepped-[1-9]' "part 3 (halbd stepped the clock)"
# Five readings; the one with the shortest round trip bounds the error best.
clock_off= clock_err=
for _ in 1 2 3 4 5; do
	clock_n=$(count "$log" 'guestclock-[0-9]+\.[0-9]+-end')
	h0=$(date +%s.%N)
	printf 'echo guestclock-$(date +%%s.%%N)-end\r' >&8
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
shell_cmd 8 "$log" 'halbctl status | grep -E "^ *time " | sed "s/^/clock""line: /"' 'clockline: time' "part 3 (halbctl status time line)"
clock_halbd=$(grep -a -o -E 'offset [-+]?[0-9.]+[^ ,]*s from 192\.168\.77\.254' "$log" | tail -n1)
echo "image-test:   lb2's clock (booted 1 h behind) after halbd's step: ${clock_off} ms from the host's, ±${clock_err} ms (half the shortest serial round trip of 5); halbd's own figure: ${clock_halbd:-none}"
awk -v o="$clock_off" -v e="$clock_err" 'BEGIN { if (o < 0) o = -o; exit !(o <= 100 + e) }' ||
	fail "part 3: lb2's clock is ${clock_off} ms off the host's (±${clock_err} ms), more than 100 ms"
kill "${vm[2]}"
wait "${vm[2]}" 2>/dev/null || true

# ================================================================ part 4
t_part4=$(now)
wizard_run
after3=$(since "$t_part4")
kill "${vm[wiz]}"
wait "${vm[wiz]}" 2>/dev/null || true

total=$(since "$t_start")
{
	echo "accelerator: $accel"
	echo "boot to READY (one VM, from QEMU start): ${ready_solo}s"
	echo "failover (kill -9 of lb1's QEMU to lb2 answering on the VIP): ${failover}s (VRRP bound ${bound}s; the test allows ${slack}s more)"
	echo "clock (lb2 booted 1 h behind, stepped by halbd from chronyd on the LAN): ${clock_off} ms from the host's, ±${clock_err} ms (serial console reading); halbd: ${clock_halbd:-none}"
	echo "part 4 (no seed, the wizard over ttyS0): ${part4_s}s from QEMU start to the client's answer through the VIP (booting beside part 3; ${after3}s after part 3 ended); the wizard ${wizard_s}s, $wkeys keystrokes"
	echo "image-test total: ${total}s"
} | tee "$dir/timings.txt"
echo "image-test: PASS"
