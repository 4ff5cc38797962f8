#!/usr/bin/env bash
# Runs every fuzz target of the module for a short while (FUZZTIME, default
# 15s each). A crash fails the run and leaves its input in testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-15s}
found=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
		found=1
		echo "fuzz: $dir $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir"
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' appliance cmd netlab tui 2>/dev/null | sort)
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets found"; exit 1; }
