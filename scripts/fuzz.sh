#!/usr/bin/env bash
# Runs every fuzz target in the repository's modules (the engine's and
# bench/) for the given time each (default 20s).
set -euo pipefail
fuzztime=${1:-20s}
for mod in . bench; do
	for pkg in $(go -C "$mod" list ./...); do
		for target in $(go -C "$mod" test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
			echo "== $pkg $target ($fuzztime)"
			go -C "$mod" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
		done
	done
done
