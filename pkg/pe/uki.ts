/**
 * Unified kernel images (UAPI group "Unified Kernel Image" specification):
 * the systemd-boot EFI stub with the kernel, initrd, command line and
 * os-release appended as PE sections, laid out as systemd's ukify lays them
 * out (see planAddSections): .osrel, .cmdline, .uname, .initrd, then .linux
 * last so the kernel has room to grow into.
 *
 * The kernel and the initrd are streamed from their files when the image is
 * written; only the stub and the small text sections are held in memory.
 * A gzip-compressed kernel (arm64 Image.gz, as LinuxKit ships it) is
 * decompressed on the fly: the stub hands .linux to the firmware's image
 * loader, which wants the PE inside.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { readHead } from '../fsutil.js';
import { createGunzip } from 'node:zlib';
import { pipeline, type Readable } from 'node:stream';
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';
import { parsePe, planAddSections, SCN_CNT_CODE, SCN_CNT_INITIALIZED_DATA, SCN_MEM_READ, type NewSection } from './pe.js';

/** The systemd-boot stub inside the systemd-boot component, per architecture. */
export const UKI_STUB: Record<'amd64' | 'arm64', string> = {
  amd64: '/usr/lib/systemd/boot/efi/linuxx64.efi.stub',
  arm64: '/usr/lib/systemd/boot/efi/linuxaa64.efi.stub',
};

/** The removable-media boot path file name (UEFI spec 3.5.1.1), per architecture. */
export const EFI_BOOT_NAME = { amd64: 'BOOTX64.EFI', arm64: 'BOOTAA64.EFI' } as const;

/** PE machine types [PE spec 3.3.1] of the stubs, per architecture. */
const MACHINE: Record<'amd64' | 'arm64', number> = { amd64: 0x8664, arm64: 0xaa64 };

export interface UkiInput {
  stub: Buffer;
  /** Path of the kernel (bzImage, arm64 Image or Image.gz). */
  kernel: string;
  /** Path of the initrd. */
  initrd: string;
  cmdline: string;
  osRelease: string;
  /** Refuse a stub for another architecture. */
  arch?: 'amd64' | 'arm64';
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const VERSION_RE = /Linux version (\d+\.[^\s\0]+) \(/;


function kernelStream(path: string, gzip: boolean): Readable {
  const src = createReadStream(path, { highWaterMark: 1024 * 1024 });
  if (!gzip) return src;
  const gz = createGunzip({ chunkSize: 1024 * 1024 });
  pipeline(src, gz, () => {}); // an error of either ends both and reaches the reader of gz
  return gz;
}

/**
 * One pass over the kernel as it will be embedded: its size, its first
 * 4 KiB (PE headers) and the release from its "Linux version" banner.
 */
async function scanKernel(path: string, gzip: boolean): Promise<{ size: number; head: Buffer; release?: string }> {
  let size = 0;
  let head = Buffer.alloc(0);
  let release: string | undefined;
  let carry = Buffer.alloc(0);
  try {
    for await (const c of kernelStream(path, gzip)) {
      const chunk = c as Buffer;
      if (head.length < 4096) head = Buffer.concat([head, chunk.subarray(0, 4096 - head.length)]);
      size += chunk.length;
      if (release !== undefined) continue;
      // Look for the banner across chunk boundaries: keep the last 256 bytes.
      const win = Buffer.concat([carry, chunk]);
      let from = 0;
      while (release === undefined) {
        const i = win.indexOf('Linux version ', from, 'latin1');
        if (i < 0 || win.length - i < 256) break;
        const m = VERSION_RE.exec(win.toString('latin1', i, i + 256));
        if (m) release = m[1];
        from = i + 1;
      }
      carry = win.subarray(Math.max(from, win.length - 256));
    }
  } catch (e) {
    throw new DockyardError('E_KERNEL', `kernel ${path}: cannot read${gzip ? ' (gzip)' : ''}: ${(e as Error).message}`, { cause: e });
  }
  return { size, head, release };
}

/** The release string of an x86 bzImage (boot protocol: kernel_version at 0x20e, relative to 0x200). */
function bzImageRelease(head: Buffer): string | undefined {
  if (head.length < 0x210 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const off = head.readUInt16LE(0x20e);
  if (off === 0) return undefined;
  const at = 0x200 + off;
  const s = head.toString('latin1', at, Math.min(head.length, at + 128)).split('\0')[0];
  const m = /^(\S+) \(/.exec(s);
  return m ? m[1] : undefined;
}

/** The kernel's PE SizeOfImage, if it is a PE (EFI-stub kernels are). */
function kernelSizeOfImage(head: Buffer): number | undefined {
  try {
    return parsePe(head, 'kernel').sizeOfImage;
  } catch {
    return undefined;
  }
}

function textSection(name: string, text: string): NewSection {
  const b = Buffer.from(text, 'utf8');
  return { name, size: b.length, characteristics: SCN_MEM_READ | SCN_CNT_INITIALIZED_DATA, write: (s) => s.write(b) };
}

function fileSection(name: string, size: number, characteristics: number, open: () => Readable, virtualSize?: number): NewSection {
  return {
    name,
    size,
    virtualSize,
    characteristics,
    async write(sink: ByteSink): Promise<void> {
      for await (const c of open()) await sink.write(c as Buffer);
    },
  };
}

/** Plan a UKI: its size, and a writer streaming it (kernel and initrd read from their files). */
export async function planUki(o: UkiInput): Promise<{ size: number; write(sink: ByteSink): Promise<void> }> {
  const stub = parsePe(o.stub, 'systemd-boot stub');
  if (o.arch && stub.machine !== MACHINE[o.arch])
    throw new DockyardError('E_IMAGE_NOT_FOUND', `systemd-boot stub is for PE machine 0x${stub.machine.toString(16)}, not ${o.arch}`);
  if (stub.subsystem !== 10) throw new DockyardError('E_IMAGE_NOT_FOUND', `systemd-boot stub is not an EFI application (subsystem ${stub.subsystem})`);

  const kst = await stat(o.kernel).catch(() => undefined);
  if (!kst || !kst.isFile() || kst.size === 0) throw new DockyardError('E_KERNEL', `kernel ${o.kernel} is missing or empty`);
  const head = await readHead(o.kernel, 64 * 1024);
  const gzip = head.subarray(0, 2).equals(GZIP_MAGIC);
  let size = kst.size;
  let inner = head;
  let release = gzip ? undefined : bzImageRelease(head);
  if (gzip || release === undefined) {
    const scan = await scanKernel(o.kernel, gzip);
    size = scan.size;
    inner = scan.head;
    release = scan.release;
  }
  const initrdSize = (await stat(o.initrd).catch(() => {
    throw new DockyardError('E_KERNEL', `initrd ${o.initrd} is missing`);
  })).size;

  const sections: NewSection[] = [textSection('.osrel', o.osRelease), textSection('.cmdline', o.cmdline)];
  if (release !== undefined) sections.push(textSection('.uname', release));
  sections.push(fileSection('.initrd', initrdSize, SCN_MEM_READ | SCN_CNT_INITIALIZED_DATA, () => createReadStream(o.initrd, { highWaterMark: 1024 * 1024 })));
  // ukify: the kernel's own SizeOfImage as VirtualSize, so the loaded section has room for its BSS.
  sections.push(fileSection('.linux', size, SCN_MEM_READ | SCN_CNT_CODE, () => kernelStream(o.kernel, gzip), kernelSizeOfImage(inner)));
  const plan = planAddSections(o.stub, sections, 'systemd-boot stub');
  return { size: plan.size, write: (sink) => plan.write(sink) };
}
