#!/usr/bin/env bash
# scripts/deps.sh [SET] — installs the Debian packages a make target needs,
# when running as root and they are missing. Idempotent and quiet when there
# is nothing to do. Without root it only says what is missing; tests that
# need it skip.
#
# SET (default: test):
#   test            everything make test, make netlab and make bench use
#   demo-halb       make demo as root with halb nodes (nftables: the partition key)
#   demo-reference  make demo as root with keepalived + HAProxy nodes
#   profile         make profile (perf)
set -euo pipefail
set_name=${1:-test}

# package → a file that proves it is installed
declare -A where=(
	[gcc]=/usr/bin/gcc                # go test -race needs cgo
	[libc6-dev]=/usr/include/stdio.h
	[keepalived]=/usr/sbin/keepalived # netlab reference nodes
	[haproxy]=/usr/sbin/haproxy
	[curl]=/usr/bin/curl              # reference track scripts
	[nftables]=/usr/sbin/nft          # netlab faults: partition, loss
	[wrk]=/usr/bin/wrk                # make bench
	[tmux]=/usr/bin/tmux              # the netlab demo's test types on a terminal
	[dnsmasq-base]=/usr/sbin/dnsmasq  # DHCP server of the netcfg tests
	[chrony]=/usr/sbin/chronyd        # NTP server of the timesync tests (never started on the host)
	[chromium]=/usr/bin/chromium      # renders the stats page (metrics tests, netlab)
	[testssl.sh]=/usr/bin/testssl     # the netlab TLS scenario's audit
	[fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf # its screenshots' text
	[psmisc]=/usr/bin/killall         # the import scenario's keepalived vrrp_script (killall -0 haproxy)
	[frr]=/usr/lib/frr/bgpd           # the upstream router of the netlab BGP scenarios (never started on the host)
	[linux-perf]=/usr/bin/perf        # make profile
)
case "$set_name" in
test) pkgs=(gcc libc6-dev keepalived haproxy curl nftables wrk tmux dnsmasq-base chrony chromium fonts-dejavu-core testssl.sh psmisc frr) ;;
demo-halb) pkgs=(nftables) ;;
demo-reference) pkgs=(keepalived haproxy nftables) ;;
profile) pkgs=(haproxy wrk curl linux-perf) ;;
*)
	echo "deps: unknown set $set_name (test, demo-halb, demo-reference, profile)" >&2
	exit 2
	;;
esac

missing=()
for pkg in "${pkgs[@]}"; do
	[ -e "${where[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root, not installing: ${missing[*]} (tests needing them skip or run without -race)"
	exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start keepalived, haproxy, chronyd or frr on the machine itself.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created_policy=1
fi
trap '[ -n "$created_policy" ] && rm -f "$policy"' EXIT
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
