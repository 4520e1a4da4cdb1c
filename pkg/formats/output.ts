/**
 * Output files written atomically: a hidden temp file beside the target,
 * renamed into place only when every output of the build is complete; on
 * failure every temp file is removed, so no partial output is left.
 */
import { constants as fsConstants, createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { appendFile, chmod, copyFile as copyFileFs, rename, rm, mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { DockyardError } from '../errors.js';
import { Sink, forwardZeros, type ByteSink } from '../archive/sink.js';
import type { FormatContext, OutputFile } from './format.js';

export interface OpenOutput {
  path: string;
  sink: Sink;
}

export class Outputs {
  private readonly open: { path: string; tmp?: string; sink?: Sink; stream?: WriteStream; done?: { bytes: number; sha256: string } }[] = [];

  constructor(private readonly ctx: FormatContext) {}

  /** Path for `file`: ctx.outFile if given, else ctx.dir/file. */
  async create(file: string, useOutFile = false): Promise<OpenOutput> {
    if (useOutFile && this.ctx.outFile === '-') {
      if (!this.ctx.stdout) throw new DockyardError('E_INTERNAL', 'no stdout stream for -o -');
      const sink = new Sink([this.ctx.stdout as Writable]);
      this.open.push({ path: '-', sink });
      return { path: '-', sink };
    }
    const path = useOutFile && this.ctx.outFile ? this.ctx.outFile : join(this.ctx.dir, file);
    await mkdir(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const stream = createWriteStream(tmp, { mode: 0o644 });
    await new Promise<void>((res, rej) => {
      stream.once('open', () => res());
      stream.once('error', (e) => rej(new DockyardError('E_OUTPUT', `cannot write ${path}: ${(e as Error).message}`, { cause: e })));
    });
    const sink = new Sink([stream]);
    this.open.push({ path, tmp, sink, stream });
    return { path, sink };
  }

  /**
   * An output that is a copy of the file `src` followed by `tail`, whose
   * digest the caller already knows: the copy is made by the kernel
   * (copy_file_range, or a reflink where the filesystem has them) instead of
   * passing through this process. To stdout (`-o -`) the bytes are streamed.
   */
  async createCopy(
    file: string,
    src: string,
    o: { size: number; sha256: string; tail?: Buffer; signal?: AbortSignal; copy?: (src: string, dest: string) => Promise<void> },
    useOutFile = false,
  ): Promise<{ path: string }> {
    const tail = o.tail ?? Buffer.alloc(0);
    if (useOutFile && this.ctx.outFile === '-') {
      const out = await this.create(file, true);
      await copyFile(src, out.sink, o.signal);
      await out.sink.write(tail);
      return out;
    }
    const path = useOutFile && this.ctx.outFile ? this.ctx.outFile : join(this.ctx.dir, file);
    await mkdir(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const entry = { path, tmp, done: { bytes: o.size + tail.length, sha256: o.sha256 } };
    this.open.push(entry);
    try {
      if (o.copy) await o.copy(src, tmp);
      else await copyFileFs(src, tmp, fsConstants.COPYFILE_FICLONE);
      if (tail.length) await appendFile(tmp, tail);
      await chmod(tmp, 0o644);
    } catch (e) {
      throw new DockyardError('E_OUTPUT', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
    }
    return { path };
  }

  /** Finish every output and move it into place. */
  async commit(format: string): Promise<OutputFile[]> {
    const out: OutputFile[] = [];
    for (const o of this.open) {
      if (!o.sink) continue;
      if (o.stream) await o.sink.end();
      else await o.sink.flush();
    }
    for (const o of this.open) {
      if (o.tmp) await rename(o.tmp, o.path);
      const f = { path: o.path, bytes: o.done?.bytes ?? o.sink!.bytes, sha256: o.done?.sha256 ?? o.sink!.sha256() };
      this.ctx.emit({ kind: 'output-done', format, file: o.path, bytes: f.bytes, sha256: f.sha256 });
      out.push(f);
    }
    this.open.length = 0;
    return out;
  }

  async abort(): Promise<void> {
    for (const o of this.open) {
      o.stream?.destroy();
      if (o.tmp) await rm(o.tmp, { force: true });
    }
    this.open.length = 0;
  }
}

/** Copy a file's bytes into a sink. */
export async function copyFile(path: string, sink: ByteSink, signal?: AbortSignal): Promise<void> {
  for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    signal?.throwIfAborted();
    await sink.write(c as Buffer);
  }
}

/** Passes bytes on, reporting the running count every 16 MiB (output-progress events). */
export class Progress implements ByteSink {
  private bytes = 0;
  private next = PROGRESS_STEP;
  constructor(
    private readonly inner: ByteSink,
    private readonly report: (bytes: number) => void,
  ) {}
  async write(b: Buffer): Promise<void> {
    await this.inner.write(b);
    this.count(b.length);
  }
  async zeros(n: number): Promise<void> {
    await forwardZeros(this.inner, n);
    this.count(n);
  }
  private count(n: number): void {
    this.bytes += n;
    if (this.bytes >= this.next) {
      this.next = this.bytes + PROGRESS_STEP;
      this.report(this.bytes);
    }
  }
}

const PROGRESS_STEP = 16 * 1024 * 1024;

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
