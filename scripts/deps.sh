#!/usr/bin/env bash
# Installs the Debian packages that halb's tests need, when running as root
# and they are missing. Idempotent and quiet when there is nothing to do.
# Without root it only says what is missing; tests that need it skip.
set -euo pipefail

# package → a file that proves it is installed
declare -A need=(
	[gcc]=/usr/bin/gcc                   # go test -race needs cgo
	[libc6-dev]=/usr/include/stdio.h
	[keepalived]=/usr/sbin/keepalived    # netlab reference nodes
	[haproxy]=/usr/sbin/haproxy
	[curl]=/usr/bin/curl                 # reference track scripts
	[nftables]=/usr/sbin/nft             # netlab faults: partition, loss
	[wrk]=/usr/bin/wrk                   # make bench
)

missing=()
for pkg in "${!need[@]}"; do
	[ -e "${need[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root, not installing: ${missing[*]} (tests needing them skip or run without -race)"
	exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start keepalived or haproxy on the machine itself.
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
