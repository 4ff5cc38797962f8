#!/usr/bin/env bash
# make demo without root: halbd on loopback, end to end. The demo starts its
# own backends (bin/netlab backend, on 127.0.0.1) and gives halbd a config
# whose listeners, servers and health checks are all on 127.0.0.1, so no
# packet leaves the machine. It shows: requests balanced over the backends
# (http and tcp mode), a broken config refused with every problem named and
# the running config kept, a valid change applied and reported as a diff, a
# backend killed and taken out by its health check while requests keep being
# answered, SIGHUP reloading the file on disk, the event stream, and an
# orderly SIGTERM. VRRP needs root and network links: `make demo` as root
# runs the network-lab demo instead.
#
# HALB_BIN (default bin/) is where halbd, halbctl and netlab are; with
# HALB_DEMO_DIR the demo works in that (empty) directory and keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HALB_BIN:-$PWD/bin}
if [ -n "${HALB_DEMO_DIR:-}" ]; then
	work=$HALB_DEMO_DIR
	mkdir -p "$work"
else
	work=$(mktemp -d /tmp/halb-demo.XXXXXX)
fi
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ -n "${HALB_DEMO_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { echo "\$ halbctl $*"; "$bin/halbctl" -socket "$work/halb.sock" "$@"; }
fail() { echo "demo: $*" >&2; exit 1; }

# wait_for WHAT SECONDS CMD...: until CMD succeeds (polled every 0.1 s).
wait_for() {
	local what=$1 end=$((SECONDS + $2))
	shift 2
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || fail "gave up after $(($2))s waiting for $what (work dir $work)"
		sleep 0.1
	done
}

# free_port FROM: the first port from FROM on that nothing on 127.0.0.1
# accepts connections on.
free_port() {
	local p
	for ((p = $1; p < $1 + 500; p++)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	fail "no free port on 127.0.0.1 from $1"
}

# get PORT: one request (bash's /dev/tcp, no curl needed) to 127.0.0.1:PORT;
# prints the status and which backend and node answered.
get() {
	local line status='' be='' node='' body=''
	exec 3<>"/dev/tcp/127.0.0.1/$1" || { echo "  connect to 127.0.0.1:$1 failed"; return 1; }
	printf 'GET / HTTP/1.1\r\nHost: demo.example\r\nConnection: close\r\n\r\n' >&3
	while IFS= read -r -t 5 line <&3; do
		line=${line%$'\r'}
		[ -z "$line" ] && break
		case "${line,,}" in
		http/1.1\ *) status=${line#* } ;;
		x-backend:*) be=${line#*: } ;;
		x-lb-node:*) node=${line#*: } ;;
		esac
	done
	IFS= read -r -t 5 body <&3 || true
	exec 3<&-
	echo "  GET 127.0.0.1:$1 → ${status:-no answer} from ${be:-?}${node:+ via $node}"
	[ -n "$status" ]
}

# server_state BACKEND/SERVER STATE: halbctl status shows the server in STATE.
server_state() { "$bin/halbctl" -socket "$work/halb.sock" status 2>/dev/null | grep -Eq "^server $1 +$2 "; }

# events_of TYPE: how many events of TYPE the event stream has delivered.
events_of() { grep -c "\"type\":\"$1\"" "$work/events.jsonl" 2>/dev/null || true; }

step "start three backends on loopback (bin/netlab backend)"
declare -A be_port be_pid
for n in 1 2 3; do
	"$bin/netlab" backend -name "be$n" 127.0.0.1:0 >"$work/be$n.log" 2>&1 &
	pids+=($!)
	be_pid[$n]=$!
	wait_for "backend be$n" 10 grep -qs 'listening on' "$work/be$n.log"
	be_port[$n]=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/be$n.log")
	echo "be$n on 127.0.0.1:${be_port[$n]} (pid ${be_pid[$n]})"
done
web=$(free_port 18080)
tcp=$(free_port $((web + 1)))

# config PORTS...: the demo's halb.yaml, the servers of www on the given
# backend numbers.
config() {
	cat <<EOF
# The daemon demo's config (scripts/demo.sh): everything on loopback.
node:
  name: demo
services:
  - name: web
    listen: ["127.0.0.1:$web"]
    mode: http
    default_backend: www
    response_headers: {X-LB-Node: demo}
  - name: web-tcp
    listen: ["127.0.0.1:$tcp"]
    mode: tcp
    default_backend: www-tcp
backends:
  - name: www
    balance: roundrobin
    health: {check: http, path: /healthz, expect_status: 200, interval: 1s, timeout: 500ms, rise: 2, fall: 2}
    servers:
EOF
	local n
	for n in "$@"; do echo "      - {name: web$n, address: \"127.0.0.1:${be_port[$n]}\"}"; done
	cat <<EOF
  - name: www-tcp
    balance: roundrobin
    health: {check: tcp, interval: 1s, rise: 2, fall: 2}
    servers:
EOF
	for n in "$@"; do echo "      - {name: tcp$n, address: \"127.0.0.1:${be_port[$n]}\"}"; done
}

config 1 2 >"$work/halb.yaml"
step "start halbd on a loopback config: http on 127.0.0.1:$web, tcp on 127.0.0.1:$tcp, servers be1 and be2"
sed 's/^/  /' "$work/halb.yaml"
"$bin/halbd" -config "$work/halb.yaml" -socket "$work/halb.sock" -state-dir "$work/state" 2>"$work/halbd.log" &
halbd_pid=$!
pids+=("$halbd_pid")
wait_for "halbd's socket" 10 test -S "$work/halb.sock"
"$bin/halbctl" -socket "$work/halb.sock" events >"$work/events.jsonl" 2>"$work/events.err" &
events_pid=$!
pids+=("$events_pid")
wait_for "the event stream" 10 grep -q 'events.subscribed' "$work/events.jsonl"
wait_for "www/web1 and www/web2 to pass their checks" 15 \
	eval 'server_state www/web1 UP && server_state www/web2 UP'
ctl status

step "requests through the proxy: round robin over be1 and be2 (http), and the tcp service"
for _ in 1 2 3 4; do get "$web"; done
for _ in 1 2; do get "$tcp"; done

step "a broken config: every problem with its line, checked without a daemon"
cat >"$work/broken.yaml" <<YAML
node:
  name: demo
vrrp:
  - name: web-a
    interface: lo
    vrid: 300
    priority: 255
    advert_interval: 15ms
    vips: [127.0.0.100]
services:
  - {name: web, listen: ["127.0.0.1:$web"], mode: http, default_backend: nowhere}
backends:
  - name: www
    helth: {check: http}
YAML
ctl config validate "$work/broken.yaml" || echo "(exit $?)"

step "the daemon refuses it too, and keeps the running config"
ctl config apply "$work/broken.yaml" || echo "(exit $?)"
ctl status | awk 'NR <= 6'
get "$web"

step "a valid change: add be3 to both backends"
config 1 2 3 >"$work/changed.yaml"
ctl config apply "$work/changed.yaml"
wait_for "www/web3 to pass its checks" 15 server_state www/web3 UP
for _ in 1 2 3; do get "$web"; done

step "be1 dies (SIGKILL): its health check takes it out, requests go on to be2 and be3"
kill -9 "${be_pid[1]}"
wait "${be_pid[1]}" 2>/dev/null || true
wait_for "www/web1 to be marked DOWN" 15 server_state www/web1 DOWN
"$bin/halbctl" -socket "$work/halb.sock" status | grep -E '^server www/'
for _ in 1 2 3 4; do get "$web"; done

step "SIGHUP reloads the file on disk: be1 is removed from it"
applied=$(events_of config.applied)
config 2 3 >"$work/halb.yaml.new"
mv "$work/halb.yaml.new" "$work/halb.yaml"
echo "\$ kill -HUP $halbd_pid"
kill -HUP "$halbd_pid"
wait_for "the reload's config.applied event" 10 eval '[ "$(events_of config.applied)" -gt "$applied" ]'
grep '"type":"config.applied"' "$work/events.jsonl" | tail -n1
"$bin/halbctl" -socket "$work/halb.sock" status | grep -E '^server www/'

step "SIGTERM: orderly shutdown"
echo "\$ kill -TERM $halbd_pid"
kill -TERM "$halbd_pid"
rc=0
wait "$halbd_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "halbd exited $rc"
echo "halbd exited 0"
wait "$events_pid" 2>/dev/null || true

step "the event stream saw all of it"
cat "$work/events.jsonl"
echo
echo "halbd's log:"
sed 's/^/  /' "$work/halbd.log"
echo
echo "(VRRP needs root and network links: run 'make demo' as root to see two nodes fail over in a network lab.)"
