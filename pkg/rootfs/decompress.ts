/**
 * `--decompress-kernel`, as LinuxKit does it (moby/build build.go,
 * decompressKernel): a gzip-compressed kernel (arm64 `Image.gz`) is
 * gunzipped; an x86 bzImage whose payload is gzip yields the vmlinux inside.
 *
 * bzImage header (Documentation/arch/x86/boot.rst, "The real-mode kernel header"):
 *   0x1f1 setup_sects (u8)   0x202 header magic "HdrS"
 *   0x248 payload_offset (u32, from the start of the protected-mode code)
 *   0x24c payload_length (u32)
 * The protected-mode code starts at (setup_sects || 4) + 1 sectors of 512 bytes.
 */
import { gunzipSync } from 'node:zlib';
import { DockyardError } from '../errors.js';

const GZIP = Buffer.from([0x1f, 0x8b]);

function payloadKind(b: Buffer): string {
  if (b.subarray(0, 2).equals(GZIP)) return 'gzip';
  if (b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (b.subarray(0, 3).equals(Buffer.from('BZh'))) return 'bzip2';
  if (b.subarray(0, 4).equals(Buffer.from([0x89, 0x4c, 0x5a, 0x4f]))) return 'lzo';
  if (b.subarray(0, 4).equals(Buffer.from([0x02, 0x21, 0x4c, 0x18]))) return 'lz4';
  return 'unknown';
}

/** No kernel comes near this uncompressed; a gzip bomb stops here. */
export const MaxKernelBytes = 512 * 1024 * 1024;

function gunzipKernel(b: Buffer, label: string): Buffer {
  try {
    return gunzipSync(b, { maxOutputLength: MaxKernelBytes });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new DockyardError('E_LIMIT', `${label}: more than ${MaxKernelBytes >> 20} MiB uncompressed; not a kernel`, { cause: e });
    throw new DockyardError('E_KERNEL', `${label}: not a valid gzip stream (${(e as Error).message})`, { cause: e });
  }
}

export function decompressKernel(kernel: Buffer, label: string): Buffer {
  if (kernel.subarray(0, 2).equals(GZIP)) return gunzipKernel(kernel, label);
  if (kernel.length > 0x250 && kernel.toString('latin1', 0x202, 0x206) === 'HdrS') {
    const setupSects = kernel[0x1f1] || 4;
    const start = (setupSects + 1) * 512 + kernel.readUInt32LE(0x248);
    const len = kernel.readUInt32LE(0x24c);
    const payload = kernel.subarray(start, start + len);
    if (payload.length !== len) throw new DockyardError('E_KERNEL', `${label}: bzImage payload lies outside the file`);
    const kind = payloadKind(payload);
    if (kind !== 'gzip') throw new DockyardError('E_KERNEL', `${label}: the bzImage payload is ${kind}-compressed; --decompress-kernel handles gzip only (as LinuxKit)`);
    return gunzipKernel(payload, label);
  }
  throw new DockyardError('E_KERNEL', `${label}: not a gzip-compressed kernel nor a bzImage; cannot decompress it`);
}
