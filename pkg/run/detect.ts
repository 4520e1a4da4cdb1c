/**
 * What `dockyard run` was given: a kernel+initrd NAME prefix or an image
 * file, recognised by its magic bytes (the file name only breaks ties and
 * names the expectation in errors), with the architecture and boot method
 * (BIOS or UEFI) read from the image where it says.
 */
import { open, stat, readFile } from 'node:fs/promises';
import { gunzipSync, constants as zc } from 'node:zlib';
import { DockyardError } from '../errors.js';
import { openGuestDisk, type DiskFormat, type GuestDisk } from './guestdisk.js';

export type Arch = 'amd64' | 'arm64';
export type InputKind = 'kernel' | 'iso' | 'efi' | DiskFormat;

export interface RunInput {
  kind: InputKind;
  /** The image file, or the NAME prefix for `kernel`. */
  path: string;
  kernel?: string;
  initrd?: string;
  /** Contents of NAME-cmdline (trimmed), if the file exists. */
  cmdline?: string;
  /** Architecture read from the image, if it says. */
  arch?: Arch;
  /** The image boots through UEFI only (GPT with an ESP, an EFI-only ISO, a PE binary). */
  efi: boolean;
  /** The image can boot from a PC BIOS (an El Torito BIOS entry, MBR boot code). */
  bios: boolean;
  /** How arch/efi were decided, for `--dry-run` and error messages. */
  notes: string[];
}

const fail = (msg: string): never => {
  throw new DockyardError('E_OUTPUT', msg);
};

async function head(path: string, length: number, offset = 0): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** PE/COFF (Microsoft PE format): 0x3c e_lfanew → 'PE\0\0', then the COFF header's Machine (u16). */
export function peMachine(b: Buffer): number | undefined {
  if (b.length < 0x40 || b.toString('latin1', 0, 2) !== 'MZ') return undefined;
  const pe = b.readUInt32LE(0x3c);
  if (pe + 6 > b.length || b.toString('latin1', pe, pe + 4) !== 'PE\0\0') return undefined;
  return b.readUInt16LE(pe + 4);
}

const PE_ARCH: Record<number, Arch> = { 0x8664: 'amd64', 0xaa64: 'arm64' };

/**
 * Architecture of a kernel or EFI binary from its first bytes: x86 boot
 * protocol 'HdrS' at 0x202 (bzImage), arm64 Image 'ARM\x64' at 0x38, the PE
 * Machine field (EFI stub, zboot, UKI), ELF e_machine; gzip is looked into.
 */
export function binaryArch(b: Buffer, depth = 0): Arch | undefined {
  if (b.length >= 0x206 && b.toString('latin1', 0x202, 0x206) === 'HdrS') return 'amd64';
  if (b.length >= 0x3c && b.readUInt32LE(0x38) === 0x644d5241) return 'arm64';
  const m = peMachine(b);
  if (m !== undefined) return PE_ARCH[m];
  if (b.length >= 20 && b.readUInt32BE(0) === 0x7f454c46) {
    const em = b[5] === 2 ? b.readUInt16BE(18) : b.readUInt16LE(18);
    return em === 62 ? 'amd64' : em === 183 ? 'arm64' : undefined;
  }
  if (depth === 0 && b.length > 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      return binaryArch(gunzipSync(b, { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, 1 << 16), 1);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const ESP_TYPE = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b';

/** GUID bytes as on disk (first three fields little-endian) → text. */
export function guidText(b: Buffer): string {
  const h = (s: number, e: number, le: boolean) => {
    const part = Buffer.from(b.subarray(s, e));
    return (le ? part.reverse() : part).toString('hex');
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`;
}

/** Short (8.3) directory entry names of the UEFI removable-media boot files. */
const BOOT_NAMES: [string, Arch][] = [['BOOTX64 EFI', 'amd64'], ['BOOTAA64EFI', 'arm64']];

/**
 * Which arch an ESP (a FAT image) boots: looks for the 8.3 directory entry
 * of \EFI\BOOT\BOOTX64.EFI / BOOTAA64.EFI in its first MiBs (directories of
 * a small ESP sit there). A heuristic: undefined if none or both are found.
 */
export function espArch(fat: Buffer): Arch | undefined {
  const found = new Set<Arch>();
  for (let o = 0; o + 11 <= fat.length; o += 32) {
    for (const [name, arch] of BOOT_NAMES) if (fat[o] === 0x42 && fat.toString('latin1', o, o + 11) === name) found.add(arch);
  }
  return found.size === 1 ? [...found][0] : undefined;
}

const ESP_SCAN = 4 << 20;

/* Partition table of a disk: GPT (UEFI spec ch. 5: header at LBA 1, 'EFI PART'; 72 entries LBA, 80 count,
 * 84 entry size; entry: 0 type GUID, 32 first LBA, 40 last LBA) or MBR (446 four 16-byte entries: 4 type,
 * 8 first LBA (LE), 12 sectors; 510 0x55AA). */
async function inspectPartitions(d: GuestDisk): Promise<{ efi: boolean; bios: boolean; arch?: Arch; notes: string[] }> {
  const lba01 = await d.read(0, 1024);
  const notes: string[] = [];
  const mbrSig = lba01.readUInt16LE(510) === 0xaa55;
  const bootCode = mbrSig && lba01.subarray(0, 440).some((x) => x !== 0);
  let esp: { start: number; length: number } | undefined;
  if (lba01.toString('latin1', 512, 520) === 'EFI PART') {
    const entriesLba = Number(lba01.readBigUInt64LE(512 + 72));
    const count = Math.min(lba01.readUInt32LE(512 + 80), 1024);
    const entrySize = lba01.readUInt32LE(512 + 84);
    const table = await d.read(entriesLba * 512, count * entrySize);
    for (let i = 0; i < count; i++) {
      const e = table.subarray(i * entrySize, (i + 1) * entrySize);
      if (guidText(e.subarray(0, 16)) === ESP_TYPE) {
        const first = Number(e.readBigUInt64LE(32));
        esp = { start: first * 512, length: (Number(e.readBigUInt64LE(40)) - first + 1) * 512 };
        break;
      }
    }
    notes.push(esp ? 'GPT with an EFI system partition' : 'GPT without an EFI system partition');
  } else if (mbrSig) {
    for (let i = 0; i < 4; i++) {
      const p = lba01.subarray(446 + i * 16, 446 + (i + 1) * 16);
      if (p[4] === 0xef) esp = { start: p.readUInt32LE(8) * 512, length: p.readUInt32LE(12) * 512 };
    }
    notes.push(esp ? 'MBR with an EFI system partition' : 'MBR');
  } else {
    fail(`no partition table (neither GPT nor an MBR boot signature)`);
  }
  let arch: Arch | undefined;
  if (esp) {
    arch = espArch(await d.read(esp.start, Math.min(esp.length, ESP_SCAN)));
    if (arch) notes.push(`ESP boots ${arch}`);
  }
  return { efi: esp !== undefined, bios: bootCode, arch, notes };
}

/* ISO 9660 (ECMA-119) volume descriptors from sector 16; El Torito boot record (type 0, 'CD001',
 * 7 'EL TORITO SPECIFICATION', 0x47 catalog LBA). Catalog: validation entry (1 platform id), default
 * entry (8 load RBA), then section headers (0x90/0x91: 1 platform id, 2 entry count) and their entries. */
async function inspectIso(path: string): Promise<{ efi: boolean; bios: boolean; arch?: Arch; notes: string[] }> {
  const vd = await head(path, 2048, 17 * 2048);
  if (vd[0] !== 0 || vd.toString('latin1', 1, 6) !== 'CD001' || !vd.toString('latin1', 7, 30).startsWith('EL TORITO SPECIFICATION')) {
    fail(`${path}: an ISO 9660 image without an El Torito boot record: not bootable`);
  }
  const cat = await head(path, 2048, vd.readUInt32LE(0x47) * 2048);
  const platforms: { id: number; rba: number }[] = [];
  if (cat[0] !== 1) fail(`${path}: El Torito boot catalog has no validation entry`);
  let platform = cat[1];
  if (cat[32] === 0x88) platforms.push({ id: platform, rba: cat.readUInt32LE(32 + 8) });
  for (let o = 64; o + 32 <= cat.length; ) {
    const hdr = cat[o];
    if (hdr !== 0x90 && hdr !== 0x91) break;
    platform = cat[o + 1];
    const n = cat.readUInt16LE(o + 2);
    for (let i = 1; i <= n && o + 32 * (i + 1) <= cat.length; i++) {
      const e = o + 32 * i;
      if (cat[e] === 0x88) platforms.push({ id: platform, rba: cat.readUInt32LE(e + 8) });
    }
    o += 32 * (n + 1);
    if (hdr === 0x91) break;
  }
  const bios = platforms.some((p) => p.id === 0);
  const efiEntry = platforms.find((p) => p.id === 0xef);
  const notes = [`El Torito: ${[bios ? 'BIOS' : '', efiEntry ? 'EFI' : ''].filter(Boolean).join(' + ') || 'no bootable entry'}`];
  let arch: Arch | undefined;
  if (efiEntry) {
    arch = espArch(await head(path, ESP_SCAN, efiEntry.rba * 2048));
    if (arch) notes.push(`EFI image boots ${arch}`);
  }
  if (!bios && !efiEntry) fail(`${path}: El Torito catalog has no BIOS or EFI boot entry`);
  return { efi: !bios && efiEntry !== undefined, bios, arch, notes };
}

const EXT_KIND: Record<string, InputKind> = {
  '.iso': 'iso',
  '.raw': 'raw',
  '.img': 'raw',
  '.qcow2': 'qcow2',
  '.vhd': 'vhd',
  '.vmdk': 'vmdk',
  '.efi': 'efi',
};

/** The container format by magic bytes; undefined for "no magic" (raw or unknown). */
export async function sniffFile(path: string): Promise<InputKind | undefined> {
  const b = await head(path, 64);
  if (b.toString('latin1', 0, 4) === 'QFI\xfb') return 'qcow2';
  if (b.length >= 4 && b.readUInt32LE(0) === 0x564d444b) return 'vmdk';
  if (b.toString('latin1', 0, 21) === '# Disk DescriptorFile') return 'vmdk';
  if (peMachine(await head(path, 4096)) !== undefined) return 'efi';
  const { size } = await stat(path);
  if (size >= 512 && (await head(path, 8, size - 512)).toString('latin1') === 'conectix') return 'vhd';
  if (b.toString('latin1', 0, 8) === 'conectix') return 'vhd';
  if ((await head(path, 5, 16 * 2048 + 1)).toString('latin1') === 'CD001') return 'iso';
  return undefined;
}

/** An MBR boot signature or a GPT header: a raw disk whatever its name. */
async function looksPartitioned(path: string): Promise<boolean> {
  const b = await head(path, 520);
  return b.length === 520 && (b.readUInt16LE(510) === 0xaa55 || b.toString('latin1', 512, 520) === 'EFI PART');
}

/**
 * Resolve PATH: an existing file is an image; otherwise PATH-kernel,
 * PATH-initrd.img and PATH-cmdline (LinuxKit's kernel+initrd outputs).
 * PATH may also name the NAME-kernel file itself.
 */
export async function inspectInput(path: string): Promise<RunInput> {
  let st;
  try {
    st = await stat(path);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) fail(`${path} is a directory: give an image file or a kernel+initrd NAME prefix`);
  let prefix: string | undefined;
  if (!st) prefix = path;
  else if (path.endsWith('-kernel') && (await exists(path.slice(0, -7) + '-initrd.img'))) prefix = path.slice(0, -7);
  if (prefix !== undefined) return inspectKernel(prefix);

  const dot = path.lastIndexOf('.');
  const ext = dot > path.lastIndexOf('/') ? path.slice(dot).toLowerCase() : '';
  const byName = EXT_KIND[ext];
  const byMagic = await sniffFile(path);
  let kind: InputKind;
  if (byMagic) {
    if (byName && byName !== byMagic && !(byName === 'raw' && byMagic === 'iso')) {
      fail(`${path}: named like a ${byName} image but its contents are ${byMagic}`);
    }
    // An isohybrid ISO is also a disk image: boot it as the CD it is named for, or as a disk if named .img/.raw.
    kind = byMagic === 'iso' && byName === 'raw' ? 'raw' : byMagic;
  } else if (byName === 'raw' || (!byName && (await looksPartitioned(path)))) {
    kind = 'raw';
  } else if (byName) {
    return fail(`${path}: named like a ${byName} image but does not start like one`);
  } else {
    return fail(`${path}: unknown image type (expected NAME-kernel/-initrd.img, .iso, .raw/.img, .qcow2, .vhd, .vmdk or .efi)`);
  }

  if (kind === 'efi') {
    const arch = binaryArch(await head(path, 4096));
    if (!arch) fail(`${path}: a PE binary for neither x86-64 nor arm64`);
    return { kind, path, arch, efi: true, bios: false, notes: [`PE binary for ${arch}`] };
  }
  if (kind === 'iso') return { kind, path, ...(await inspectIso(path)) };
  let disk: GuestDisk | undefined;
  try {
    disk = await openGuestDisk(path, kind as DiskFormat);
    return { kind, path, ...(await inspectPartitions(disk)) };
  } catch (e) {
    if (e instanceof DockyardError) throw new DockyardError(e.code, `${path}: ${e.message}`);
    return fail(`${path}: cannot read the ${kind} image: ${(e as Error).message}`);
  } finally {
    await disk?.close();
  }
}

async function inspectKernel(prefix: string): Promise<RunInput> {
  const kernel = `${prefix}-kernel`;
  const initrd = `${prefix}-initrd.img`;
  const cmdlineFile = `${prefix}-cmdline`;
  if (!(await exists(kernel))) {
    const more = (await exists(`${prefix}-squashfs.img`)) || (await exists(`${prefix}-erofs.img`));
    fail(more ? `${prefix}: kernel+squashfs/erofs is not supported by dockyard run yet` : `${prefix}: no such file, and no ${kernel} (kernel+initrd)`);
  }
  if (!(await exists(initrd))) fail(`${initrd} is missing (kernel+initrd needs NAME-kernel and NAME-initrd.img)`);
  const cmdline = (await exists(cmdlineFile)) ? (await readFile(cmdlineFile, 'utf8')).trim() : undefined;
  const arch = binaryArch(await head(kernel, 1 << 20));
  return {
    kind: 'kernel',
    path: prefix,
    kernel,
    initrd,
    cmdline,
    arch,
    efi: false,
    bios: true,
    notes: [arch ? `kernel for ${arch}` : 'kernel architecture not recognised'],
  };
}
