#!/usr/bin/env bash
# npm run demo: build the fixture images from Debian packages, build
# examples/hello.yml with dockyard (no Docker, no root needed for this part),
# and boot it in qemu with the serial console on this terminal.
# Installs the Debian packages it needs first (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${ARCH:-$(dpkg --print-architecture 2>/dev/null || echo amd64)}
case "$ARCH" in amd64|arm64) ;; *) echo "demo: unsupported arch $ARCH" >&2; exit 1 ;; esac
bash scripts/install-deps.sh
[ -f dist/cmd/dockyard.js ] || npm run build

work=.cache/demo
mkdir -p "$work"
echo "== building the fixture images (Debian kernel, busybox, runc; cached after the first run)"
node dist/test/fixtures/cli.js "$work/images" --no-full >/dev/null
echo "== importing them into dockyard's cache"
node dist/cmd/dockyard.js cache --cache "$work/cache" import "$work/images"
echo "== dockyard build examples/hello.yml ($ARCH)"
node dist/cmd/dockyard.js build --offline --cache "$work/cache" --arch "$ARCH" -f kernel+initrd --dir "$work/out" examples/hello.yml
ls -l "$work/out"
echo "== dockyard run qemu (TCG; the system powers itself off when its onboot containers are done)"
exec timeout 300 node dist/cmd/dockyard.js run qemu --accel tcg --arch "$ARCH" "$work/out/hello"
