/**
 * File reading with the checks every input needs: only regular files are
 * read (a device, FIFO or socket is refused before a byte is read: /dev/zero
 * never ends, a FIFO may never answer), reads into memory are capped, and
 * errno failures become one line naming the path.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DockyardError, type ErrorCode } from './errors.js';
import { formatSize } from './limits.js';
import { pidAlive, runTag, tempIsStale, trackTemp } from './tempfiles.js';

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory (or a parent is not)',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'name too long',
  EEXIST: 'already exists',
  EXDEV: 'on another file system',
  EIO: 'input/output error',
  EFBIG: 'file too large',
};

/** Why a file operation failed, in words (`no space left on device`). */
export function errnoReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  return (code && REASONS[code]) ?? (e as Error)?.message ?? String(e);
}

/** A failure to read that was "no such file" (the errno error itself, or one fsError wrapped). */
export function isMissing(e: unknown): boolean {
  const code = (x: unknown) => (x as NodeJS.ErrnoException | undefined)?.code;
  return code(e) === 'ENOENT' || code((e as DockyardError | undefined)?.cause) === 'ENOENT';
}

/** True for errors from the operating system (they carry an errno code). */
export function isErrno(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

/** An errno failure as one line: `cannot write X: no space left on device`. */
export function fsError(code: ErrorCode, what: string, e: unknown): DockyardError {
  if (e instanceof DockyardError) return e;
  return new DockyardError(code, `${what}: ${errnoReason(e)}`, { cause: e });
}

export function kindOf(st: { isDirectory(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean; isSymbolicLink(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

export interface RegularFile {
  fh: FileHandle;
  size: number;
}

/**
 * Open `path` for reading if it is a regular file. O_NONBLOCK keeps the
 * open itself from waiting on a FIFO; fstat on the opened descriptor decides
 * (no window between a check and the open).
 */
export async function openRegular(path: string, what: string, code: ErrorCode, opts: { fifoOk?: boolean } = {}): Promise<RegularFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fsError(code, `cannot read ${what}`, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() && !(opts.fifoOk && st.isFIFO())) throw new DockyardError(code, `${what} is ${kindOf(st)}, not a regular file`);
    return { fh, size: st.size };
  } catch (e) {
    await fh.close().catch(() => {});
    throw fsError(code, `cannot read ${what}`, e);
  }
}

/** The whole of a regular file, refused past `limit` bytes (counted as read, whatever stat said). */
export async function readRegular(path: string, limit: number, what: string, code: ErrorCode, opts: { fifoOk?: boolean; tooLarge?: string } = {}): Promise<Buffer> {
  const { fh } = await openRegular(path, what, code, opts);
  try {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of fh.createReadStream({ autoClose: false, highWaterMark: 1 << 20 })) {
      n += (c as Buffer).length;
      if (n > limit) throw new DockyardError(code, `${what} is larger than ${formatSize(limit)}${opts.tooLarge ? ` ${opts.tooLarge}` : ''}`);
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks, n);
  } catch (e) {
    throw fsError(code, `cannot read ${what}`, e);
  } finally {
    await fh.close().catch(() => {});
  }
}

/** A stream of a regular file's bytes (the descriptor closes with the stream). */
export async function streamRegular(path: string, what: string, code: ErrorCode, opts: { start?: number; end?: number } = {}): Promise<{ stream: Readable; size: number }> {
  const { fh, size } = await openRegular(path, what, code);
  return { stream: fh.createReadStream({ highWaterMark: 1 << 20, start: opts.start, end: opts.end }), size };
}

/** The first `n` bytes of a file (fewer if it is shorter). */
export async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * An output may take a free name or replace a regular file; anything else
 * there (a directory, a device, a FIFO, a socket, a symbolic link) is
 * refused, never replaced. `what` names it in the message (`-o`, `output`).
 */
export async function checkOutputPath(path: string, what: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fsError('E_OUTPUT', `cannot write ${what} ${path}`, e);
  }
  if (st.isFile()) return;
  const hint = st.isCharacterDevice() || st.isFIFO() ? ' (-o - writes to standard output)' : st.isDirectory() ? ' (--dir names a directory for outputs)' : '';
  throw new DockyardError('E_OUTPUT', `${what} ${path} exists and is ${kindOf(st)}; dockyard writes only regular files and never replaces anything else${hint}`);
}

/**
 * A temp file name beside `path` (same directory, for an atomic rename),
 * registered for removal at exit: `.NAME.HOSTTAG-PID-RANDOM.tmp`. Temp files
 * that killed runs left for the same output are removed first.
 */
export async function outputTemp(path: string): Promise<string> {
  const dir = dirname(path);
  const base = basename(path);
  const esc = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ours = new RegExp(`^\\.${esc}\\.[0-9a-f]{8}-\\d+-[0-9a-f]{8}\\.tmp$`);
  const legacy = new RegExp(`^\\.${esc}\\.(\\d+)\\.[0-9a-f]{8}\\.tmp$`);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const old = legacy.exec(name);
    let stale: boolean | undefined;
    if (old) stale = !pidAlive(Number(old[1]));
    else if (ours.test(name)) {
      const st = await lstat(join(dir, name)).catch(() => undefined);
      stale = st ? tempIsStale(name.slice(base.length + 2), st.mtimeMs) : false;
    }
    if (stale) await rm(join(dir, name), { force: true });
  }
  const tmp = join(dir, `.${base}.${runTag}-${randomBytes(4).toString('hex')}.tmp`);
  trackTemp(tmp);
  return tmp;
}
