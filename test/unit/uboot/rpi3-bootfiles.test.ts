/**
 * The rpi3 boot partition's text files: the boot script carries the command
 * line through U-Boot's hush quoting, refuses what a script line cannot
 * hold, and its memory map leaves each piece room (the boot itself is in
 * test/integration/rpi3.test.ts).
 */
import { describe, it, expect } from 'vitest';
import { bootScript, configTxt, isRpi3Dtb, FDT_ADDR, INITRD_UIMG_ADDR, KERNEL_LOAD, KERNEL_UIMG_ADDR, MAX_INITRD_UIMG, MAX_KERNEL_UIMG } from '../../../pkg/formats/rpi3/bootfiles.js';
import { DockyardError } from '../../../pkg/errors.js';

describe('rpi3 boot files', () => {
  it('the command line is quoted for hush: backslash, double quote, dollar and backquote escaped, nothing else touched', () => {
    const s = bootScript('console=ttyAMA0 a="b c" x=$HOME y=\\z `w` panic=-1');
    expect(s.split('\n')[1]).toBe('setenv bootargs "console=ttyAMA0 a=\\"b c\\" x=\\$HOME y=\\\\z \\`w\\` panic=-1"');
    expect(bootScript('').split('\n')[1]).toBe('setenv bootargs ""');
  });

  it('a command line with a line break or NUL is one clear error', () => {
    for (const bad of ['a\nb', 'a\rb', 'a\0b']) {
      let err: unknown;
      try {
        bootScript(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DockyardError);
      expect((err as DockyardError).code).toBe('E_SPEC_INVALID');
    }
  });

  it('loads from the partition distro boot found it on, the device tree U-Boot names for the board', () => {
    const s = bootScript('console=ttyAMA0');
    expect(s).toContain('load ${devtype} ${devnum}:${distro_bootpart} 0x06000000 dtb/${fdtfile}\n');
    expect(s).toContain('if test -z "${fdtfile}"; then setenv fdtfile broadcom/bcm2837-rpi-3-b.dtb; fi\n');
    expect(s.trimEnd().split('\n').pop()).toBe('bootm 0x08000000 0x0c000000 0x06000000');
  });

  it('the memory map: a 2 MiB-aligned kernel with U-Boot\'s 64 MiB bootm limit below the device tree, the images above it, all under 960 MiB', () => {
    expect(KERNEL_LOAD % (2 * 1024 * 1024)).toBe(0);
    expect(KERNEL_LOAD + 64 * 1024 * 1024).toBeLessThanOrEqual(FDT_ADDR);
    expect(FDT_ADDR + 1024 * 1024).toBeLessThanOrEqual(KERNEL_UIMG_ADDR);
    expect(KERNEL_UIMG_ADDR + MAX_KERNEL_UIMG).toBe(INITRD_UIMG_ADDR);
    expect(INITRD_UIMG_ADDR + MAX_INITRD_UIMG).toBe(960 * 1024 * 1024);
  });

  it('config.txt starts U-Boot in 64-bit mode with the UART on; the Pi 3 device trees are picked by name', () => {
    expect(configTxt().split('\n')).toEqual(expect.arrayContaining(['arm_64bit=1', 'enable_uart=1', 'kernel=u-boot.bin']));
    expect(isRpi3Dtb('boot/dtb/broadcom/bcm2837-rpi-3-b.dtb')).toBe(true);
    expect(isRpi3Dtb('boot/dtb/broadcom/bcm2837-rpi-3-b-plus.dtb')).toBe(true);
    expect(isRpi3Dtb('boot/dtb/broadcom/bcm2837-rpi-3-a-plus.dtb')).toBe(false);
    expect(isRpi3Dtb('boot/dtb/broadcom/bcm2711-rpi-4-b.dtb')).toBe(false);
    expect(isRpi3Dtb('boot/dtb/broadcom/x/bcm2837-rpi-3-b.dtb')).toBe(false);
    expect(isRpi3Dtb('dtb/broadcom/bcm2837-rpi-3-b.dtb')).toBe(false);
  });
});
