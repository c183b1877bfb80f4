#!/usr/bin/env bash
# Checks which way the packages depend on each other (see CONVENTIONS):
# persistence imports nothing from the repository, actors and gateway do
# not import each other or the journal, inspect (the offline reader of a
# journal) uses actors and persistence only, cluster (which knows nothing
# about orders) imports none of them, and only cmd/ wires them together.
# The benchmark module (bench/) is a client of servers over HTTP: its
# reference servers use nothing of the engine (they are the designs it is
# compared with), orderbench none of its internals, and the engine uses
# nothing of bench. chaos/ drives a real orderd over HTTP only.
set -euo pipefail
mod=$(go list -m)
fail=0
forbid() { # module directory, package in it, forbidden import prefixes...
	local dir=$1 pkg=$2; shift 2
	local where=$dir/${pkg#./} list deps
	where=${where#./}
	[ -d "$where" ] || return 0
	list=$(go -C "$dir" list -deps "$pkg/...") # a package that does not load fails the check
	deps=$(grep "^$mod/" <<<"$list" || true)
	for bad in "$@"; do
		if grep -q "^$mod/$bad" <<<"$deps"; then
			echo "dependency rule broken: $where imports $mod/$bad"
			fail=1
		fi
	done
}
forbid . ./persistence actors gateway cluster cmd inspect
forbid . ./actors gateway persistence cluster cmd inspect
forbid . ./gateway actors persistence cluster cmd inspect
forbid . ./cluster actors gateway persistence cmd inspect
forbid . ./inspect gateway cluster cmd
forbid . . bench
# The evidence (chaos/) is a client of orderd over HTTP, like any other.
forbid . ./chaos actors gateway persistence cluster cmd
for ref in refapi ceiling refredis refpg; do
	forbid bench ./$ref actors gateway persistence cluster cmd
done
forbid bench ./orderbench actors persistence cluster cmd
exit $fail
