#!/usr/bin/env bash
# Fails when go mod tidy would change go.mod or go.sum; leaves them as
# they were either way.
set -euo pipefail
tmp=$(mktemp -d)
trap 'cp "$tmp/go.mod" go.mod; cp "$tmp/go.sum" go.sum; rm -rf "$tmp"' EXIT
cp go.mod go.sum "$tmp/"
go mod tidy
if ! diff -q "$tmp/go.mod" go.mod >/dev/null || ! diff -q "$tmp/go.sum" go.sum >/dev/null; then
	echo "go mod tidy changes go.mod or go.sum; run it and commit the result"
	diff -u "$tmp/go.mod" go.mod || true
	exit 1
fi
