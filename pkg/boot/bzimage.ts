/**
 * The x86 Linux boot protocol (Documentation/arch/x86/boot.rst in the kernel
 * source, "THE REAL-MODE KERNEL HEADER"): reading a bzImage's setup header
 * and preparing the real-mode part the way a boot loader does before it
 * jumps to it, so that a loader without any logic (mbrload) can start it.
 *
 * Memory layout used (the protocol's "modern bzImage" example, loaded at 0x90000):
 *   0x90000           setup sectors (boot sector + setup_sects × 512 bytes)
 *   0x90000 + 0xDE00  heap_end_ptr (heap after the setup code; stack up to 0xE000)
 *   0x9E000           command line (NUL-terminated)
 *   0x100000          protected-mode kernel
 *   initrd            above everything the kernel decompresses into (see initrdAddress)
 */
import { DockyardError } from '../errors.js';

export const SETUP_ADDR = 0x90000;
export const KERNEL_ADDR = 0x100000;
const HEAP_END = 0xde00;
const CMDLINE_OFF = 0xe000;
const MiB = 1024 * 1024;

export interface BzImageHeader {
  /** Bytes of the real-mode part (boot sector + setup sectors) at the start of the file. */
  setupBytes: number;
  /** Boot protocol version, e.g. 0x020f. */
  version: number;
  initrdAddrMax: number;
  /** Longest command line the kernel takes (without the NUL). */
  cmdlineSize: number;
  prefAddress: number;
  initSize: number;
}

/** Parse the setup header; `head` is the first (at least) 1 KiB of the kernel file. */
export function parseBzImage(head: Buffer): BzImageHeader {
  const bad = (why: string) => new DockyardError('E_KERNEL', `raw-bios needs an x86 bzImage kernel: ${why}`);
  if (head.length < 0x264) throw bad('the file is too short');
  if (head.readUInt16LE(0x1fe) !== 0xaa55 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') throw bad('no setup header (HdrS)');
  const version = head.readUInt16LE(0x206); // version
  if (version < 0x0202) throw bad(`boot protocol ${version.toString(16)} is older than 2.02`);
  if (!(head[0x211] & 0x01)) throw bad('not loaded high (a zImage)'); // loadflags LOADED_HIGH
  const setupSects = head[0x1f1] || 4; // setup_sects (0 means 4)
  return {
    setupBytes: (setupSects + 1) * 512,
    version,
    initrdAddrMax: version >= 0x0203 ? head.readUInt32LE(0x22c) : 0x37ffffff, // initrd_addr_max
    cmdlineSize: version >= 0x0206 ? head.readUInt32LE(0x238) : 255, // cmdline_size
    prefAddress: version >= 0x020a ? Number(head.readBigUInt64LE(0x258)) : KERNEL_ADDR, // pref_address
    initSize: version >= 0x020a ? head.readUInt32LE(0x260) : 0, // init_size
  };
}

/**
 * Where the initrd goes: on a MiB boundary above the loaded kernel and above
 * the whole range the kernel decompresses into (from 0x100000 or from
 * pref_address, init_size bytes), below initrd_addr_max.
 */
export function initrdAddress(h: BzImageHeader, kernelSize: number, initrdSize: number): number {
  const pm = kernelSize - h.setupBytes;
  const floor = Math.max(KERNEL_ADDR + pm, KERNEL_ADDR + h.initSize, h.prefAddress + h.initSize);
  const addr = Math.ceil(floor / MiB) * MiB;
  if (addr + initrdSize - 1 > h.initrdAddrMax)
    throw new DockyardError('E_KERNEL', `raw-bios: the initrd (${initrdSize} bytes) does not fit below the kernel's initrd_addr_max (0x${h.initrdAddrMax.toString(16)})`);
  return addr;
}

/**
 * The real-mode part as it must lie at 0x90000 when the loader jumps: the
 * setup sectors with the loader's fields of the header filled in, and the
 * command line at +0xE000.
 */
export function lowImage(setup: Buffer, h: BzImageHeader, o: { cmdline: string; initrdAddr: number; initrdSize: number }): Buffer {
  if (h.setupBytes > HEAP_END - 0x200) throw new DockyardError('E_KERNEL', 'raw-bios: the kernel setup code is too big');
  const cmd = Buffer.from(o.cmdline, 'utf8');
  if (cmd.length > h.cmdlineSize || cmd.length > 4095) throw new DockyardError('E_KERNEL', `raw-bios: the command line is ${cmd.length} bytes, the kernel takes ${Math.min(h.cmdlineSize, 4095)}`);
  const b = Buffer.alloc(CMDLINE_OFF + Math.ceil((cmd.length + 1) / 512) * 512);
  setup.copy(b, 0, 0, h.setupBytes);
  b[0x210] = 0xff; // type_of_loader: undefined (no assigned id)
  b[0x211] |= 0x80; // loadflags: CAN_USE_HEAP
  b.writeUInt32LE(o.initrdAddr, 0x218); // ramdisk_image
  b.writeUInt32LE(o.initrdSize, 0x21c); // ramdisk_size
  b.writeUInt16LE(HEAP_END, 0x224); // heap_end_ptr
  b.writeUInt32LE(SETUP_ADDR + CMDLINE_OFF, 0x228); // cmd_line_ptr
  cmd.copy(b, CMDLINE_OFF);
  return b;
}
