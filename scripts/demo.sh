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
[ -f dist/cmd/dockyard.js ] || npx tsc -p tsconfig.json

work=.cache/demo
mkdir -p "$work"
echo "== building the fixture images (Debian kernel, busybox, runc; cached after the first run)"
node dist/test/fixtures/cli.js "$work/images" --no-full >/dev/null
echo "== importing them into dockyard's cache"
node dist/cmd/dockyard.js cache --cache "$work/cache" import "$work/images"
echo "== dockyard build examples/hello.yml ($ARCH)"
node dist/cmd/dockyard.js build --offline --cache "$work/cache" --arch "$ARCH" -f kernel+initrd --dir "$work/out" examples/hello.yml
ls -l "$work/out"
echo "== booting in qemu (TCG; the system powers itself off when its onboot containers are done)"
if [ "$ARCH" = amd64 ]; then
  set -- qemu-system-x86_64 -M q35 -accel tcg
else
  set -- qemu-system-aarch64 -M virt -cpu cortex-a57 -accel tcg
fi
exec timeout 300 "$@" -m 512 -nographic -no-reboot \
  -kernel "$work/out/hello-kernel" -initrd "$work/out/hello-initrd.img" -append "$(cat "$work/out/hello-cmdline")"
