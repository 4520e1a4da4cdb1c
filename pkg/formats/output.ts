/**
 * Output files written atomically: a hidden temp file beside the target,
 * renamed into place only when every output of the build is complete; on
 * failure every temp file is removed, so no partial output is left.
 */
import { constants as fsConstants, createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { appendFile, chmod, copyFile as copyFileFs, open, rename, rm, mkdir, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { DockyardError } from '../errors.js';
import { checkOutputPath, fsError, outputTemp } from '../fsutil.js';
import { formatSize } from '../limits.js';
import { untrackTemp } from '../tempfiles.js';
import { Sink, forwardZeros, type ByteSink } from '../archive/sink.js';
import { FilePositionalSink } from '../archive/positional.js';
import type { FormatContext, OutputFile } from './format.js';

export interface OpenOutput {
  path: string;
  sink: Sink;
}

export class Outputs {
  private readonly open: { path: string; tmp?: string; sink?: Sink; stream?: WriteStream; fh?: FileHandle; positional?: FilePositionalSink; done?: { bytes: number; sha256: string } }[] = [];

  constructor(private readonly ctx: FormatContext) {}

  private limit(path: string): { max: number; error: () => Error } | undefined {
    const max = this.ctx.maxOutputBytes;
    return max === undefined ? undefined : { max, error: () => tooLarge(path, max) };
  }

  /** A temp file beside the output (its directory made), the output's place checked first. */
  private async tempFor(path: string): Promise<string> {
    await checkOutputPath(path, 'output');
    try {
      await mkdir(dirname(path), { recursive: true });
      return await outputTemp(path);
    } catch (e) {
      throw fsError('E_OUTPUT', `cannot write ${path}`, e);
    }
  }

  /** Path for `file`: ctx.outFile if given, else ctx.dir/file. */
  async create(file: string, useOutFile = false): Promise<OpenOutput> {
    if (useOutFile && this.ctx.outFile === '-') {
      if (!this.ctx.stdout) throw new DockyardError('E_INTERNAL', 'no stdout stream for -o -');
      const sink = new Sink([this.ctx.stdout as Writable], { limit: this.limit('standard output') });
      this.open.push({ path: '-', sink });
      return { path: '-', sink };
    }
    const path = useOutFile && this.ctx.outFile ? this.ctx.outFile : join(this.ctx.dir, file);
    const tmp = await this.tempFor(path);
    // 'wx': the temp name is new; a link planted there is not followed.
    const stream = createWriteStream(tmp, { mode: 0o644, flags: 'wx' });
    const entry: (typeof this.open)[number] = { path, tmp, stream };
    this.open.push(entry);
    await new Promise<void>((res, rej) => {
      stream.once('open', () => res());
      stream.once('error', (e) => rej(fsError('E_OUTPUT', `cannot write ${path}`, e)));
    });
    // Later write errors (ENOSPC): the Sink listens for them from here on and throws them, naming the file.
    const sink = new Sink([stream], { limit: this.limit(path), onError: (e) => fsError('E_OUTPUT', `cannot write ${path}`, e) });
    entry.sink = sink;
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
    const max = this.ctx.maxOutputBytes;
    if (max !== undefined && o.size + tail.length > max) throw tooLarge(path, max);
    const tmp = await this.tempFor(path);
    const entry = { path, tmp, done: { bytes: o.size + tail.length, sha256: o.sha256 } };
    this.open.push(entry);
    try {
      if (o.copy) await o.copy(src, tmp);
      else await copyFileFs(src, tmp, fsConstants.COPYFILE_FICLONE | fsConstants.COPYFILE_EXCL);
      if (tail.length) await appendFile(tmp, tail);
      await chmod(tmp, 0o644);
    } catch (e) {
      throw fsError('E_OUTPUT', `cannot write ${path}`, e);
    }
    return { path };
  }

  /**
   * An output written by position (filesystem images write their superblock
   * last). Not to standard output; its digest is read back at commit.
   */
  async createPositional(file: string): Promise<{ path: string; sink: FilePositionalSink }> {
    if (this.ctx.outFile === '-') throw new DockyardError('E_USAGE', `${file} is written by position: it cannot go to standard output`);
    const path = join(this.ctx.dir, file);
    const tmp = await this.tempFor(path);
    const entry: (typeof this.open)[number] = { path, tmp };
    this.open.push(entry);
    try {
      entry.fh = await open(tmp, 'wx+', 0o644);
    } catch (e) {
      throw fsError('E_OUTPUT', `cannot write ${path}`, e);
    }
    const sink = new FilePositionalSink(entry.fh, this.limit(path), (e) => fsError('E_OUTPUT', `cannot write ${path}`, e));
    entry.positional = sink;
    return { path, sink };
  }

  /** Finish every output and move it into place. */
  async commit(format: string): Promise<OutputFile[]> {
    const out: OutputFile[] = [];
    for (const o of this.open) {
      if (o.fh) {
        try {
          const fh = o.fh;
          o.fh = undefined;
          await fh.close();
          o.done = { bytes: o.positional!.end, sha256: await fileSha256(o.tmp!) };
        } catch (e) {
          throw fsError('E_OUTPUT', `cannot write ${o.path}`, e);
        }
      }
      if (!o.sink) continue;
      try {
        if (o.stream) await o.sink.end();
        else await o.sink.flush();
      } catch (e) {
        throw fsError('E_OUTPUT', `cannot write ${o.path}`, e);
      }
    }
    for (const o of this.open) {
      if (o.tmp) {
        // Checked again: something may have been made there while the build ran.
        await checkOutputPath(o.path, 'output');
        try {
          await rename(o.tmp, o.path);
        } catch (e) {
          throw fsError('E_OUTPUT', `cannot write ${o.path}`, e);
        }
        untrackTemp(o.tmp);
      }
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
      await o.fh?.close().catch(() => {});
      if (o.tmp) {
        await rm(o.tmp, { force: true });
        untrackTemp(o.tmp);
      }
    }
    this.open.length = 0;
  }
}

function tooLarge(path: string, max: number): DockyardError {
  return new DockyardError('E_LIMIT', `output ${path} would be larger than ${formatSize(max)} (--max-output-size raises the limit)`);
}

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
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
