#!/usr/bin/env bash
# Checks which way the packages depend on each other (see CONVENTIONS):
# persistence imports nothing from the repository, actors and gateway do
# not import each other or the journal, and only cmd/ wires them together.
set -euo pipefail
mod=$(go list -m)
fail=0
forbid() { # package, forbidden import prefixes...
	local pkg=$1; shift
	[ -d "${pkg#./}" ] || return 0
	local deps
	deps=$(go list -deps "$pkg/..." | grep "^$mod/" || true)
	for bad in "$@"; do
		if grep -q "^$mod/$bad" <<<"$deps"; then
			echo "dependency rule broken: $pkg imports $mod/$bad"
			fail=1
		fi
	done
}
forbid ./persistence actors gateway cluster cmd
forbid ./actors gateway persistence cluster cmd
forbid ./gateway actors persistence cluster cmd
forbid ./cluster gateway persistence cmd
exit $fail
