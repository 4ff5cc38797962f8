#!/usr/bin/env bash
# make image-test — boots the appliance image built by `make image` in QEMU
# (root). Two parts:
#   1. one VM (user networking): the kernel boots, the seed disk is imported,
#      halbd is READY, the console is drawn on ttyS0, a request to the
#      proxied port (hostfwd on 127.0.0.1) is answered by a backend on the
#      host (qemu guestfwd runs image-test's backend per connection), and the
#      console's key ('!' + Enter) gives a root shell after the seeded
#      password.
#   2. two VMs on one LAN (a bridge in a network namespace made here, which
#      is also the client and holds the backend): lb1 (UEFI, seed disk)
#      and lb2 (direct kernel, config from halb.seed= on the command line,
#      no root password: its console key must refuse a shell);
#      lb1 (priority 150) holds the VIP; its QEMU is killed; lb2 must answer
#      on the VIP.
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
	iproute2=/usr/sbin/ip python3=/usr/bin/python3 openssl=/usr/bin/openssl ||
	skip "the packages above are missing"
[ -f "$img" ] || fail "$img missing: run make image first"
[ -x bin/halbctl ] || fail "bin/halbctl missing: run make build first"

BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}

rm -rf "$dir"
mkdir -p "$dir"
ns=halbimg$$
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
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

# qemu_args NAME [pipe]: the common part of a VM's command line; the serial
# port goes to NAME.serial.log, or with pipe to the FIFOs NAME.in (keys) and
# NAME.out (read into NAME.serial.log by the caller).
accel=tcg
qemu_args() {
	local cpu=max serial=file:$dir/$1.serial.log
	[ "$accel" = kvm ] && cpu=host
	[ "${2:-}" = pipe ] && serial=pipe:$dir/$1
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
# FD, its output in LOG): '!' + Enter, PASSWORD for sulogin, COMMAND in the
# root shell; its output must show WANT. WHAT names the step in failures.
root_shell() {
	local fd=$1 log=$2 pw=$3 cmd=$4 want=$5 what=$6
	printf '!\r' >&"$fd"
	wait_log "$log" 'Give root password for maintenance' 30 ||
		fail "$what: '!' + Enter on the console did not ask for the root password (see $log)"
	printf '%s\r' "$pw" >&"$fd"
	wait_log "$log" 'root@halb:' 30 || fail "$what: no root shell prompt after the password (see $log)"
	printf '%s\r' "$cmd" >&"$fd"
	wait_log "$log" "$want" 30 || fail "$what: no root shell after the password, or no $want from '$cmd' (see $log)"
}

# alive PID: the VM is still running.
alive() { kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------- accel
if [ -z "${IMAGE_TEST_TCG:-}" ]; then accel=$(qemu_accel "$dir"); fi
echo "image-test: accelerator $accel"

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
# test's backend on the host (qemu guestfwd 10.0.2.100:8080).
node:
  name: lb-solo
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
wait_log "$log" 'halb console' 60 || fail "part 1: no console banner on ttyS0 (see $log)"
wait_log "$log" 'node +lb-solo' 30 || fail "part 1: the console does not show the seeded node lb-solo (see $log)"
# The serial console leaves the terminal's scrollback alone (no ESC [3J).
! grep -a -q $'\e\[3J' "$log" || fail "part 1: the serial console cleared the terminal's scrollback (ESC [3J; see $log)"
echo "image-test:   console drawn on ttyS0 with the seeded config (node lb-solo), scrollback kept"

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

# The console's one key: '!' then Enter asks for root's password (sulogin)
# and gives a root shell; exit returns to the console.
root_shell 7 "$log" halb-test-password 'echo halb-shell-$((6*7)) $(id -u)' 'halb-shell-42 0' "part 1"
printf 'exit\r' >&7
banners=$(grep -a -c 'halb console ' "$log" || true)
end=$(($(date +%s) + 30))
while [ "$(grep -a -c 'halb console ' "$log" || true)" -le "$banners" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.5; done
[ "$(grep -a -c 'halb console ' "$log" || true)" -gt "$banners" ] || fail "part 1: the console did not come back after the shell (see $log)"
echo "image-test:   console key '!' + Enter → sulogin with the seeded password → root shell → back to the console"
kill "$solo"
wait "$solo" 2>/dev/null || true

# ================================================================ part 2
echo "image-test: part 2: two VMs, VRRP failover on a bridge in netns $ns"
ADVERT_MS=${ADVERT_MS:-200}
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" link set br0 type bridge forward_delay 0 stp_state 0
ip -n "$ns" addr add 192.168.77.254/24 dev br0
ip -n "$ns" link set br0 up
for t in tap1 tap2; do
	ip -n "$ns" tuntap add dev $t mode tap
	ip -n "$ns" link set $t master br0 up
done

mkdir -p "$dir/www"
echo 'halb-image-test backend ok' >"$dir/www/index.html"
ip netns exec "$ns" /usr/bin/python3 -m http.server --bind 192.168.77.254 --directory "$dir/www" 9000 \
	>"$dir/backend2.log" 2>&1 &
pids+=("$!")

for n in 1 2; do
	prio=$([ $n = 1 ] && echo 150 || echo 100)
	mkdir -p "$dir/seed-lb$n/network"
	cat >"$dir/seed-lb$n/halb.yaml" <<EOF
# image-test, part 2: lb$n of a MASTER/BACKUP pair on the test's LAN.
node:
  name: lb$n
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
	cat >"$dir/seed-lb$n/network/eth0.network" <<EOF
[Match]
Name=eth0

[Network]
Address=192.168.77.$n/24
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
	bin/halbctl config validate "$dir/seed-lb$n/halb.yaml" >/dev/null || fail "seed config of lb$n does not validate"
	if [ $n = 2 ]; then
		# lb2 takes its config from the kernel command line (halb.seed=),
		# booted with a direct kernel; its seed disk has only the network.
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

declare -A vm
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
# gives no shell.
printf '!\r' >&8
wait_log "$dir/lb2.serial.log" 'the root account is locked' 30 ||
	fail "part 2: '!' on lb2's console (no root password seeded) did not say root is locked (see $dir/lb2.serial.log)"
echo "image-test:   lb2 (no root password in its seed): '!' + Enter → \"the root account is locked\", no shell"

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
echo "image-test: part 3: lb2 boots again with a seed that carries a root password"
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
qemu-system-x86_64 $(qemu_args lb2 pipe) -kernel "$kernel" -initrd "$initrd" \
	-append "root=PARTUUID=$rootuuid ro rootfstype=ext4 console=ttyS0,115200 net.ifnames=0" \
	-drive if=virtio,format=raw,file="$dir/seed-lb2b.img" >"$dir/lb2.boot2.qemu.log" 2>&1 &
vm[2]=$!
pids+=("${vm[2]}")
log=$dir/lb2.serial.log
wait_log "$log" 'Started.*halbd\.service' "$BOOT_TIMEOUT" || fail "part 3: halbd on lb2 did not become READY on its second boot (see $log)"
grep -a -q 'halb-seed: root password set from the seed' "$log" ||
	fail "part 3: the seed's root password was not set on lb2's second boot (see $log)"
grep -a -q 'halb-seed: halb.yaml on the seed disk ignored: /var/lib/halb/halb.yaml exists' "$log" ||
	fail "part 3: the console does not say the seed's halb.yaml was ignored (see $log)"
wait_log "$log" 'node +lb2' 60 || fail "part 3: the console does not show lb2's own config (see $log)"
echo "image-test:   second boot READY after $(since "$t_boot3")s: \"root password set from the seed\", the seed's halb.yaml ignored (lb2 keeps its config)"
root_shell 8 "$log" halb-test-password-2 \
	'echo halb-journal-$(journalctl -b -u halb-seed --no-pager | grep -c "root password set from the seed") $(id -u)' \
	'halb-journal-1 0' "part 3 (the journal must have halb-seed's message)"
echo "image-test:   console key '!' + Enter → sulogin with the new seed's password → root shell; the journal has halb-seed's message"
kill "${vm[2]}"
wait "${vm[2]}" 2>/dev/null || true

total=$(since "$t_start")
{
	echo "accelerator: $accel"
	echo "boot to READY (one VM, from QEMU start): ${ready_solo}s"
	echo "failover (kill -9 of lb1's QEMU to lb2 answering on the VIP): ${failover}s (VRRP bound ${bound}s; the test allows ${slack}s more)"
	echo "image-test total: ${total}s"
} | tee "$dir/timings.txt"
echo "image-test: PASS"
