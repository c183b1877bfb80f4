#!/usr/bin/env bash
# Fails when go mod tidy would change go.mod or go.sum of a module; leaves
# them as they were either way. Arguments: the modules' directories (default:
# the current one).
set -euo pipefail
(($# > 0)) || set -- .
tmp=$(mktemp -d)
mods=("$@")
restore() {
	local i
	for i in "${!mods[@]}"; do
		if [[ -f $tmp/$i/go.sum ]]; then cp "$tmp/$i/go.mod" "$tmp/$i/go.sum" "${mods[i]}/"; fi
	done
	rm -rf "$tmp"
}
trap restore EXIT
fail=0
for i in "${!mods[@]}"; do
	dir=${mods[i]}
	mkdir "$tmp/$i"
	cp "$dir/go.mod" "$dir/go.sum" "$tmp/$i/"
	go -C "$dir" mod tidy
	if ! cmp -s "$tmp/$i/go.mod" "$dir/go.mod" || ! cmp -s "$tmp/$i/go.sum" "$dir/go.sum"; then
		echo "go mod tidy changes $dir/go.mod or $dir/go.sum; run it there and commit the result"
		diff -u "$tmp/$i/go.mod" "$dir/go.mod" || true
		fail=1
	fi
done
exit $fail
