/**
 * xz decompression, streamed: xz-decompress (xz-embedded compiled to
 * WebAssembly; no native code, nothing built at install). Used for Debian's
 * Packages.xz indices and the data.tar.xz of .deb packages, whose
 * uncompressed size is not bounded by anything we hold in memory.
 *
 * A stream that is not small is decoded on a worker thread
 * (pkg/archive/xz-worker.ts; at most one per core, kept for the next
 * stream and never keeping the process alive): the main thread goes on
 * reading tar entries, hashing and handing gzip work to libuv's pool while
 * the next bytes are decoded, and two streams (two architectures' layers)
 * are decoded side by side. Small streams (a control.tar.xz), or a process
 * that cannot start workers, decode on the calling thread.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
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

/** Streams of fewer compressed bytes than this are decoded in-thread: a worker's messages would cost more than they save. */
export const XZ_WORKER_MIN = 256 * 1024;

// The worker's module sits beside this one once compiled (dist/); run from the TypeScript sources it does not, and every stream decodes in-thread.
const workerFile = new URL('./xz-worker.js', import.meta.url);
const canUseWorkers = workerFile.protocol === 'file:' && existsSync(fileURLToPath(workerFile));
const idle: Worker[] = [];
let live = 0;

/** An idle decoding thread, a new one while there are fewer than cores, or none (decode in-thread). */
function takeWorker(): Worker | undefined {
  return idle.pop() ?? newWorker();
}

/**
 * Start decoding threads now, up to `n` (and one per core), so that they
 * boot while the caller does something else (downloads) rather than when
 * the first stream wants one.
 */
export function xzPrewarm(n = availableParallelism()): void {
  while (live < Math.min(n, availableParallelism())) {
    const w = newWorker();
    if (!w) return;
    w.unref();
    idle.push(w);
  }
}

function newWorker(): Worker | undefined {
  if (!canUseWorkers || live >= availableParallelism()) return undefined;
  try {
    const n = new Worker(workerFile);
    live++;
    n.once('exit', () => {
      live--;
      const i = idle.indexOf(n);
      if (i >= 0) idle.splice(i, 1);
    });
    return n;
  } catch {
    return undefined;
  }
}

type FromWorker = { t: 'need' } | { t: 'out'; data: ArrayBuffer } | { t: 'done' } | { t: 'err'; message: string } | { t: 'gone'; message: string } | { t: 'read'; error?: unknown };

async function* onWorker(w: Worker, source: AsyncIterable<Buffer>, what: string, code: ErrorCode): AsyncGenerator<Buffer> {
  const events: FromWorker[] = [];
  let wake: (() => void) | undefined;
  const push = (m: FromWorker) => {
    events.push(m);
    const go = wake;
    wake = undefined;
    go?.();
  };
  const onError = (e: Error) => push({ t: 'gone', message: e.message });
  const onExit = (n: number) => push({ t: 'gone', message: `the decoding thread exited (${n})` });
  w.on('message', push);
  w.on('error', onError);
  w.on('exit', onExit);
  w.ref();
  const it = source[Symbol.asyncIterator]();
  let clean = false;
  let sourceDone = false;
  // The source is read while decoded bytes are handed on: a 'need' starts one read, its end is an event.
  const read = () => {
    it.next().then(
      (r) => {
        if (r.done) {
          sourceDone = true;
          w.postMessage({ t: 'end' });
        } else {
          // A buffer of its own to transfer (a read stream's chunks may share memory with others).
          const data = new Uint8Array(r.value).buffer;
          w.postMessage({ t: 'in', data }, [data]);
        }
        push({ t: 'read' });
      },
      (error: unknown) => push({ t: 'read', error }),
    );
  };
  w.postMessage({ t: 'start' });
  try {
    for (;;) {
      while (events.length === 0) await new Promise<void>((go) => (wake = go));
      const m = events.shift()!;
      if (m.t === 'need') read();
      else if (m.t === 'read') {
        // The input's own failure (a truncated source, a digest mismatch) is passed on as it is.
        if (m.error !== undefined) {
          sourceDone = true;
          throw m.error;
        }
      } else if (m.t === 'out') {
        yield Buffer.from(m.data);
        w.postMessage({ t: 'ack' });
      } else if (m.t === 'done') {
        clean = true;
        return;
      } else if (m.t === 'err') throw new DockyardError(code, `${what}: not a valid xz stream (${why(new Error(m.message))})`);
      else throw new DockyardError('E_INTERNAL', `${what}: ${m.message}`);
    }
  } finally {
    w.off('message', push);
    w.off('error', onError);
    w.off('exit', onExit);
    if (clean) {
      w.unref();
      idle.push(w);
    } else void w.terminate();
    if (!sourceDone) await it.return?.().catch(() => {});
  }
}

async function* inThread(source: AsyncIterable<Buffer>, what: string, code: ErrorCode): AsyncGenerator<Buffer> {
  const input = Readable.from(source);
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

/**
 * The uncompressed bytes of an xz stream, chunk by chunk; a corrupt stream
 * is one `code` error naming `what`. `size`, the compressed size when the
 * caller knows it, keeps small streams in-thread.
 */
export function xzChunks(source: Buffer | AsyncIterable<Buffer>, what: string, code: ErrorCode = 'E_ARCHIVE_FORMAT', size?: number): AsyncGenerator<Buffer> {
  const n = Buffer.isBuffer(source) ? source.length : size;
  const w = n !== undefined && n < XZ_WORKER_MIN ? undefined : takeWorker();
  const input = Buffer.isBuffer(source) ? (async function* () { yield source; })() : source;
  return w ? onWorker(w, input, what, code) : inThread(input, what, code);
}

/** Whether streams are decoded on worker threads here (false when run from the TypeScript sources). */
export const xzOnWorkers = canUseWorkers;
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
