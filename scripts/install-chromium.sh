#!/usr/bin/env bash
# Makes sure a headless Chromium is available for make test-ui: Debian's
# chromium package, installed with apt-get when it is missing and this runs
# as root. Prints the browser's path, or nothing (and why, on stderr) when
# it cannot be had; the browser test then skips with that message.
set -uo pipefail
for b in "${CHROMIUM:-}" chromium chromium-browser; do
	if [ -n "$b" ] && command -v "$b" >/dev/null 2>&1; then
		command -v "$b"
		exit 0
	fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium: no chromium, and apt-get cannot install it here (not root, or not Debian)" >&2
	exit 0
fi
echo "install-chromium: installing Debian's chromium with apt-get ..." >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >&2; then
	echo "install-chromium: apt-get could not install chromium" >&2
	exit 0
fi
command -v chromium || true
