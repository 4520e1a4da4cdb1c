/**
 * xz decompression, streamed: xz-decompress (xz-embedded compiled to
 * WebAssembly; no native code, nothing built at install). Used for Debian's
 * Packages.xz indices and the data.tar.xz of .deb packages, whose
 * uncompressed size is not bounded by anything we hold in memory.
 */
import { Readable } from 'node:stream';
import xzPkg from 'xz-decompress';
import { DockyardError, type ErrorCode } from '../errors.js';

const { XzReadableStream } = xzPkg as unknown as { XzReadableStream: new (s: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array> };

/** xz-embedded's return codes (xz.h enum xz_ret) as the decoder reports them. */
const XZ_ERRORS: Record<string, string> = {
  '2': 'an integrity check it does not know',
  '3': 'out of memory',
  '4': 'a dictionary over the memory limit',
  '5': 'not the xz format',
  '6': 'options it does not support: an SHA-256 integrity check or an unknown filter',
  '7': 'corrupt data',
  '8': 'truncated',
};

function why(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const code = /error code (\d+)/.exec(m)?.[1];
  return code && XZ_ERRORS[code] ? XZ_ERRORS[code] : m;
}

/** The uncompressed bytes of an xz stream, chunk by chunk; a corrupt stream is one `code` error naming `what`. */
export async function* xzChunks(source: Buffer | AsyncIterable<Buffer>, what: string, code: ErrorCode = 'E_ARCHIVE_FORMAT'): AsyncGenerator<Buffer> {
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : Readable.from(source);
  const out = new XzReadableStream(Readable.toWeb(input) as ReadableStream<Uint8Array>);
  const reader = out.getReader();
  try {
    for (;;) {
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await reader.read();
      } catch (e) {
        // The input's own failure (a truncated source, a digest mismatch) is passed on as it is.
        if (e instanceof DockyardError || e instanceof RangeError) throw e;
        throw new DockyardError(code, `${what}: not a valid xz stream (${why(e)})`, { cause: e });
      }
      if (r.done) return;
      yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    }
  } finally {
    await reader.cancel().catch(() => {});
    input.destroy();
  }
}

/** A whole xz stream decompressed, at most `max` bytes out. */
export async function xzBuffer(data: Buffer, what: string, max: number, code: ErrorCode = 'E_ARCHIVE_FORMAT'): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of xzChunks(data, what, code)) {
    n += c.length;
    if (n > max) throw new DockyardError('E_LIMIT', `${what}: more than ${max} bytes uncompressed`);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts, n);
}
