#!/usr/bin/env bash
# make demo: shows what halb does today, end to end, without root: halbd
# starts on a config, halbctl reads its status, a broken config is refused
# with every problem named and the running config kept, a valid change is
# applied and reported as a diff, the event stream shows it all, and SIGTERM
# shuts down in order. (The network lab demo arrives with netlab.)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
work=$(mktemp -d /tmp/halb-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { echo "\$ halbctl $*"; "$bin/halbctl" -socket "$work/halb.sock" "$@"; }

cp examples/lb1.yaml "$work/halb.yaml"
step "start halbd on examples/lb1.yaml"
"$bin/halbd" -config "$work/halb.yaml" -socket "$work/halb.sock" -state-dir "$work/state" 2>"$work/halbd.log" &
pids+=($!)
halbd_pid=$!
for _ in $(seq 100); do [ -S "$work/halb.sock" ] && break; sleep 0.05; done
"$bin/halbctl" -socket "$work/halb.sock" events >"$work/events.jsonl" &
pids+=($!)
sleep 0.2
ctl status
echo "(examples/lb1.yaml names eth1, which this machine lacks: the VRRP instance says so and"
echo " retries every second. Run 'make demo' as root to see VRRP fail over in the network lab.)"

step "a broken config: every problem with its line, checked without a daemon"
cat >"$work/broken.yaml" <<'YAML'
node:
  name: lb1
vrrp:
  - name: web-a
    interface: eth1
    vrid: 300
    priority: 255
    advert_interval: 15ms
    vips: [192.168.10.100]
services:
  - {name: web, listen: ["192.168.10.100:80"], mode: http, default_backend: nowhere}
backends:
  - name: www
    helth: {check: http}
YAML
ctl config validate "$work/broken.yaml" || echo "(exit $?)"

step "the daemon refuses it too, and keeps the running config"
ctl config apply "$work/broken.yaml" || echo "(exit $?)"
ctl status | awk "NR <= 6"

step "a valid change: lower the priority and add a server"
sed -e 's/priority: 150/priority: 120/' \
    -e 's|      - {name: web2, address: "10.0.0.12:80", weight: 10}|&\n      - {name: web3, address: "10.0.0.13:80", weight: 10}|' \
    examples/lb1.yaml >"$work/changed.yaml"
ctl config apply "$work/changed.yaml"

step "SIGHUP reloads the file on disk (now the applied one: no changes)"
kill -HUP "$halbd_pid"
sleep 0.3

step "SIGTERM: orderly shutdown"
kill -TERM "$halbd_pid"
wait "$halbd_pid" && echo "halbd exited 0"
sleep 0.2
step "the event stream saw all of it"
cat "$work/events.jsonl"

echo "halbd's log:"
sed 's/^/  /' "$work/halbd.log"
