/**
 * The text files of the rpi3 boot partition: `config.txt`, read by the
 * Raspberry Pi firmware (start.elf), and the U-Boot script `boot.scr` wraps.
 *
 * Boot chain on a Raspberry Pi 3: the GPU's ROM runs bootcode.bin, which runs
 * start.elf; start.elf reads config.txt and starts `kernel=` (u-boot.bin) in
 * 64-bit mode with a device tree in x0. U-Boot's distro boot finds boot.scr
 * on the card and `source`s it: the script loads the kernel, the device tree
 * U-Boot names for the board (`fdtfile`, set from the board revision) and the
 * initramfs, and `bootm`s them with the spec's command line.
 *
 * Memory map the script uses (RAM from 0; a 1 GiB Pi 3 leaves the top
 * 64 MiB or more to the GPU):
 *   0x00200000  the kernel, where bootm puts it (the uImage's load address:
 *               arm64 kernels since 5.8 want a 2 MiB-aligned base — LinuxKit's
 *               0x80000 suited the older text_offset)
 *   0x06000000  the device tree (96 MiB: room for a 94 MiB kernel below it)
 *   0x08000000  kernel.uimg as read from the card (64 MiB)
 *   0x0c000000  initrd.uimg as read from the card, used in place
 */
import { DockyardError } from '../../errors.js';

export const KERNEL_LOAD = 0x0020_0000;
export const FDT_ADDR = 0x0600_0000;
export const KERNEL_UIMG_ADDR = 0x0800_0000;
export const INITRD_UIMG_ADDR = 0x0c00_0000;
/** What kernel.uimg may take before the initrd's place. */
export const MAX_KERNEL_UIMG = INITRD_UIMG_ADDR - KERNEL_UIMG_ADDR;
/** What initrd.uimg may take: up to 960 MiB, below the GPU's share of a 1 GiB board. */
export const MAX_INITRD_UIMG = 0x3c00_0000 - INITRD_UIMG_ADDR;

/** The device trees the tar carries, as LinuxKit's mkimage-rpi3 picks them (boot/dtb/broadcom/ of the system). */
export const DTB_DIR = 'boot/dtb/broadcom/';
export const isRpi3Dtb = (path: string) => path.startsWith(DTB_DIR) && /^bcm2837-rpi-3-b[^/]*\.dtb$/.test(path.slice(DTB_DIR.length));

/**
 * config.txt (the firmware's, raspberrypi.com "config.txt" documentation):
 * 64-bit mode, the UART enabled (U-Boot's console, the mini UART on the
 * GPIO header), U-Boot as the "kernel".
 */
export function configTxt(): string {
  return ['# Raspberry Pi firmware settings (written by dockyard rpi3)', 'arm_64bit=1', 'enable_uart=1', 'avoid_warnings=2', 'kernel=u-boot.bin', ''].join('\n');
}

/** A string inside U-Boot hush double quotes: `\`, `"`, `$` and backquote escaped. */
function hushQuoted(s: string): string {
  return `"${s.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/**
 * The boot script. `cmdline` is the spec's (LinuxKit's script has a fixed
 * one; dockyard keeps the spec's, as every other format does). Run by distro
 * boot, devtype/devnum/distro_bootpart name the partition it came from;
 * `source`d by hand, the first partition of the first SD card.
 */
export function bootScript(cmdline: string): string {
  if (/[\0\n\r]/.test(cmdline)) throw new DockyardError('E_SPEC_INVALID', 'rpi3: the kernel command line has a NUL or a line break, which a U-Boot script cannot carry');
  const from = '${devtype} ${devnum}:${distro_bootpart}';
  return [
    '# dockyard rpi3: load the kernel, the device tree and the initramfs, and boot them',
    `setenv bootargs ${hushQuoted(cmdline)}`,
    'if test -z "${devtype}"; then setenv devtype mmc; setenv devnum 0; setenv distro_bootpart 1; fi',
    'if test -z "${fdtfile}"; then setenv fdtfile broadcom/bcm2837-rpi-3-b.dtb; fi',
    `load ${from} ${hex(KERNEL_UIMG_ADDR)} kernel.uimg`,
    `load ${from} ${hex(FDT_ADDR)} dtb/\${fdtfile}`,
    `load ${from} ${hex(INITRD_UIMG_ADDR)} initrd.uimg`,
    `bootm ${hex(KERNEL_UIMG_ADDR)} ${hex(INITRD_UIMG_ADDR)} ${hex(FDT_ADDR)}`,
    '',
  ].join('\n');
}
