#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use (not the build path:
# dockyard itself needs only Node). Idempotent; needs root (or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
pkgs=(qemu-system-x86 libarchive-tools qemu-system-arm qemu-utils ovmf qemu-efi-aarch64 docker-registry skopeo cpio apache2-utils openssl python3 xz-utils xorriso genisoimage mtools gdisk dosfstools fdisk binutils binutils-aarch64-linux-gnu lintian rpm rpmlint pacman-package-manager mmdebstrap e2fsprogs arch-test qemu-user-static binfmt-support squashfs-tools erofs-utils u-boot-tools gpg gpgv kmod)
# (mmdebstrap builds the arm64 Debian VM of the engine test through qemu-user: arch-test, qemu-user-static, binfmt-support.)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
# The fixtures download arm64 kernels and userland with apt-get download PKG:arm64.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then $SUDO dpkg --add-architecture arm64; need_update=1; fi
if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# binfmt-support registers qemu-aarch64 when binfmt_misc is mounted; make sure it is (a fresh VM may not have it yet).
if [ "$(uname -m)" != aarch64 ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  mountpoint -q /proc/sys/fs/binfmt_misc || $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
  $SUDO update-binfmts --enable qemu-aarch64 || true
fi
