#!/usr/bin/env bash
# make profile — where the CPU time of a request goes, halb against
# HAProxy, in tcp and http mode (docs/proxy-profile.md; issue 17).
#
# In a network namespace of its own, on its loopback only: a backend
# HAProxy (one thread, `http-request return` of a 160-byte page), in front
# of it HAProxy (two threads, a mode tcp and a mode http frontend) and halbd
# (a tcp and an http service, no access log), and wrk -t2 -c64 against each
# in turn, keep-alive and then with a new connection per request. For each
# of the eight targets:
#   - CPU a request: `perf stat -e task-clock` of the proxy over a wrk run,
#     divided by wrk's requests; the median of ROUNDS interleaved runs;
#   - system calls a request, by call, over the same runs (the median run);
#   - the split: `perf record -g` over one more run; each sample goes in one
#     row by its call chain (scripts/profile_split.py), the row's share of
#     the samples times the median CPU a request gives its microseconds.
# Env: ROUNDS (3), DURATION (3s), OUT (out/profile), KEEP (keep the perf
# data). Needs root (the namespace, perf), Go, wrk, haproxy and perf
# (scripts/deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
OUT=${OUT:-out/profile}

if [ "$(id -u)" -ne 0 ]; then
	echo "make profile: needs root (a network namespace, perf)" >&2
	exit 1
fi
for tool in wrk haproxy perf python3; do
	command -v "$tool" >/dev/null || { echo "make profile: $tool missing (scripts/deps.sh)" >&2; exit 1; }
done

ns=halbprof-$$
dir=$(mktemp -d /tmp/halbprof.XXXXXX)
mkdir -p "$OUT"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	[ -n "${KEEP:-}" ] && echo "profile: files kept in $dir" >&2 || rm -rf "$dir"
}
trap cleanup EXIT
# halbd as make build builds it, with its symbols (for perf's call chains).
CGO_ENABLED=0 "${GO:-go}" build -trimpath -o "$dir/halbd" ./cmd/halbd
ip netns add "$ns"
ip -n "$ns" link set lo up
run() { ip netns exec "$ns" "$@"; }

cat >"$dir/backend.cfg" <<'EOF'
global
	nbthread 1
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend page
	bind 127.0.0.1:8000
	http-request return status 200 content-type text/plain string "halb profile backend: a page of one hundred and sixty bytes, the same as netlab bench's origin sends back to every request it gets...."
EOF
cat >"$dir/front.cfg" <<'EOF'
global
	nbthread 2
defaults
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend ft
	mode tcp
	bind 127.0.0.1:8101
	default_backend bt
backend bt
	mode tcp
	server s 127.0.0.1:8000
frontend fh
	mode http
	bind 127.0.0.1:8102
	default_backend bh
backend bh
	mode http
	server s 127.0.0.1:8000
EOF
cat >"$dir/halb.yaml" <<'EOF'
node: {name: profile}
services:
  - {name: t, listen: ["127.0.0.1:8201"], mode: tcp, default_backend: b}
  - {name: h, listen: ["127.0.0.1:8202"], default_backend: b}
backends:
  - {name: b, servers: [{name: s, address: "127.0.0.1:8000"}]}
EOF

start() { # name cmd...: starts cmd in the namespace, its PID in $name
	local name=$1
	shift
	# Not through run: a function sent to the background is a subshell,
	# and $! would be its PID, not the proxy's.
	ip netns exec "$ns" "$@" >"$dir/$name.log" 2>&1 &
	pids+=($!)
	printf -v "$name" '%s' "$!"
}
start backend haproxy -db -f "$dir/backend.cfg"
start front haproxy -db -f "$dir/front.cfg"
start halbd "$dir/halbd" -config "$dir/halb.yaml" -socket "$dir/halb.sock" -state-dir "$dir/state"
# HAProxy without -W runs in one process, and ip netns exec execs: each
# PID is the proxy's own. The tcp services pass HTTP through to the page.
for port in 8101 8102 8201 8202; do
	for i in $(seq 50); do
		run curl -sf -o /dev/null -m 1 "http://127.0.0.1:$port/" 2>/dev/null && break
		[ "$i" -lt 50 ] || { echo "make profile: nothing answers on 127.0.0.1:$port" >&2; cat "$dir"/*.log >&2; exit 1; }
		sleep 0.1
	done
done

calls=raw_syscalls:sys_enter
for c in read write recvfrom recvmsg sendto epoll_wait epoll_pwait epoll_ctl futex nanosleep clock_gettime \
	accept4 socket connect close shutdown setsockopt getsockopt getsockname getpeername fcntl; do
	calls+=,syscalls:sys_enter_$c
done
# Keep-alive (the tcp and http rows of netlab bench), then a new
# connection per request (its tcp-conn and http-conn rows: wrk sends
# Connection: close, the backend closes, and so does each proxy).
targets=("haproxy-tcp front 8101" "halb-tcp halbd 8201" "haproxy-http front 8102" "halb-http halbd 8202"
	"haproxy-tcp-conn front 8101" "halb-tcp-conn halbd 8201" "haproxy-http-conn front 8102" "halb-http-conn halbd 8202")

# load TARGET PORT: one wrk run against TARGET.
load() {
	local close=()
	case $1 in *-conn) close=(-H "Connection: close") ;; esac
	run wrk -t2 -c64 -d"$DURATION" "${close[@]}" "http://127.0.0.1:$2/"
}
echo "profile: $ROUNDS interleaved rounds of wrk -t2 -c64 -d$DURATION against each target, perf stat on the proxy"
for r in $(seq "$ROUNDS"); do
	for spec in "${targets[@]}"; do
		read -r t who port <<<"$spec"
		perf stat -x, -e "task-clock,$calls" -p "${!who}" -o "$dir/$t.$r.stat" &
		ps=$!
		load "$t" "$port" >"$dir/$t.$r.wrk"
		kill -INT "$ps"
		wait "$ps" || true
	done
done
echo "profile: perf record -g, one more run each"
for spec in "${targets[@]}"; do
	read -r t who port <<<"$spec"
	perf record -F 2999 -g -p "${!who}" -o "$dir/$t.perf" -- sleep 100000 >/dev/null 2>&1 &
	ps=$!
	sleep 0.5
	load "$t" "$port" >/dev/null
	kill -INT "$ps"
	wait "$ps" || true
	perf script -i "$dir/$t.perf" -F comm,tid,ip,sym,dso 2>/dev/null >"$dir/$t.script"
done
names=("${targets[@]%% *}")
{
	python3 scripts/profile_split.py "$dir" "$ROUNDS" "${names[@]:0:4}"
	echo
	echo "A new connection per request (wrk -H 'Connection: close'): the same, a request being a connection"
	echo
	python3 scripts/profile_split.py "$dir" "$ROUNDS" "${names[@]:4:4}"
} | tee "$OUT/profile.txt"
echo "profile: written to $OUT/profile.txt"
