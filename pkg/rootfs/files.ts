/**
 * The `files:` section (moby/build build.go, filesystem): each entry with its
 * leading directories, written with the entry's owner and its mode plus the
 * x bit of each class that has r or w, unless an earlier entry wrote them.
 * Default modes: files 0600, directories 0700.
 *
 * A `source:` must be a regular file (a device or FIFO is refused before a
 * byte is read). It is hashed at plan time, streamed, for the segment's key,
 * and streamed again when written: a source that changed in between is an
 * error, never a silently different output.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { DockyardError } from '../errors.js';
import { openRegular } from '../fsutil.js';
import type { FileSpec } from '../spec/types.js';
import type { Entry, Segment } from './entry.js';
import { ROOTFS_VERSION } from './image.js';

export interface FilesSegmentOptions {
  files: FileSpec[];
  resolveId(v: number | string | undefined): number;
  metadata(format: 'yaml' | 'json'): string;
  epoch: number;
  signal?: AbortSignal;
}

function where(f: FileSpec): string {
  return f.pos ? `${f.pos.file}:${f.pos.line}:${f.pos.col}: ` : '';
}

function sourcePath(f: FileSpec): string {
  const s = f.source ?? '';
  if (s.startsWith('~/')) return join(homedir(), s.slice(2));
  return isAbsolute(s) ? s : join(f.baseDir, s);
}

/** Leading-directory mode: the entry's mode plus x where r or w is set (setuid etc. not carried). */
export function dirModeOf(mode: number): number {
  let m = mode & 0o777;
  if (m & 0o700) m |= 0o100;
  if (m & 0o070) m |= 0o010;
  if (m & 0o007) m |= 0o001;
  return m;
}

/** A `files:` path made relative and clean; `.`, `..` and empty results are refused. */
export function filesPath(raw: string, f: FileSpec): string {
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: path "${raw}" contains ".."`);
  if (parts.length === 0) throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: path "${raw}" names the root itself`);
  return parts.join('/');
}

interface SourceRead {
  size: number;
  sha256: string;
}

/** Hash a source file as it streams (a regular file only). */
async function hashSource(path: string, f: FileSpec, signal?: AbortSignal): Promise<SourceRead> {
  const { fh } = await openRegular(path, `${where(f)}files: ${f.path}: source ${f.source}`, 'E_SPEC_READ');
  const h = createHash('sha256');
  let size = 0;
  try {
    for await (const c of fh.createReadStream({ autoClose: false, highWaterMark: 1 << 20 })) {
      signal?.throwIfAborted();
      h.update(c as Buffer);
      size += (c as Buffer).length;
    }
  } finally {
    await fh.close();
  }
  return { size, sha256: h.digest('hex') };
}

/** The source again, checked against what was hashed at plan time. */
async function* streamSource(path: string, f: FileSpec, want: SourceRead): AsyncGenerator<Buffer> {
  const what = `${where(f)}files: ${f.path}: source ${f.source}`;
  const { fh } = await openRegular(path, what, 'E_SPEC_READ');
  const h = createHash('sha256');
  let size = 0;
  const changed = () => new DockyardError('E_SPEC_READ', `${what} changed while the build was reading it`);
  try {
    for await (const c of fh.createReadStream({ autoClose: false, highWaterMark: 1 << 20 })) {
      size += (c as Buffer).length;
      if (size > want.size) throw changed();
      h.update(c as Buffer);
      yield c as Buffer;
    }
  } finally {
    await fh.close();
  }
  if (size !== want.size || h.digest('hex') !== want.sha256) throw changed();
}

/** Every entry of the section, and a digest of each body (for the segment key). */
export async function fileEntries(o: FilesSegmentOptions): Promise<{ entries: Entry[]; bodies: string[] }> {
  const entries: Entry[] = [];
  const bodies: string[] = [];
  const added = new Set<string>();
  const push = (e: Entry, body = '') => {
    entries.push(e);
    bodies.push(body);
  };
  for (const f of o.files) {
    o.signal?.throwIfAborted();
    const path = filesPath(f.path, f);
    let mode = f.directory ? 0o700 : 0o600;
    if (f.mode !== undefined && f.mode !== '') {
      if (!/^[0-7]{1,6}$/.test(f.mode)) throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: ${f.path}: mode "${f.mode}" is not an octal number`);
      mode = parseInt(f.mode, 8);
    }
    const uid = o.resolveId(f.uid);
    const gid = o.resolveId(f.gid);
    let body: Buffer | AsyncIterable<Buffer> | undefined;
    let size = 0;
    let digest = '';
    if (!f.directory && f.symlink === undefined) {
      if (f.contents !== undefined) body = Buffer.from(f.contents, 'utf8');
      else if (f.source !== undefined && f.source !== '') {
        const src = sourcePath(f);
        if (f.optional && !(await stat(src).then(() => true, () => false))) continue; // optional and absent: skipped, as LinuxKit does
        const read = await hashSource(src, f, o.signal);
        size = read.size;
        digest = read.sha256;
        body = { [Symbol.asyncIterator]: () => streamSource(src, f, read) };
      } else if (f.metadata) body = Buffer.from(o.metadata(f.metadata), 'utf8');
      else throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: ${f.path}: no contents, source, metadata, symlink or directory given`);
      if (Buffer.isBuffer(body)) {
        size = body.length;
        digest = createHash('sha256').update(body).digest('hex');
      }
    }
    const dirMode = dirModeOf(mode);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (added.has(d)) continue;
      push({ path: d, type: 'dir', mode: dirMode, uid, gid, size: 0 });
      added.add(d);
    }
    added.add(path);
    if (f.directory) push({ path, type: 'dir', mode, uid, gid, size: 0 });
    else if (f.symlink !== undefined) push({ path, type: 'symlink', mode, uid, gid, size: 0, linkname: f.symlink });
    else push({ path, type: 'file', mode, uid, gid, size, body }, digest);
  }
  return { entries, bodies };
}

export async function filesSegment(o: FilesSegmentOptions): Promise<Segment> {
  const { entries, bodies } = await fileEntries(o);
  return keyedSegment('files', entries, bodies);
}

/** The key of a segment of known entries: their headers and the digests of their bodies. */
function keyOf(name: string, entries: Entry[], bodies: string[]): string {
  const h = createHash('sha256');
  for (const p of [ROOTFS_VERSION, 'static', name]) h.update(p + '\0');
  entries.forEach((e, i) => {
    h.update(JSON.stringify([e.path, e.type, e.mode, e.uid, e.gid, e.size, e.linkname ?? '', e.devmajor ?? 0, e.devminor ?? 0, e.mtime ?? null, bodies[i]]) + '\0');
  });
  return h.digest('hex');
}

function keyedSegment(name: string, entries: Entry[], bodies: string[]): Segment {
  return {
    name,
    key: keyOf(name, entries, bodies),
    async *entries() {
      yield* entries;
    },
  };
}

/** A segment of entries known in advance (generated files, directories): bodies are bytes. */
export function staticSegment(name: string, entries: Entry[]): Segment {
  const bodies = entries.map((e) => {
    if (e.body !== undefined && !Buffer.isBuffer(e.body)) throw new DockyardError('E_INTERNAL', `static entry ${e.path} must carry its bytes`);
    return Buffer.isBuffer(e.body) ? createHash('sha256').update(e.body.toString('base64') + '\0').digest('hex') : '';
  });
  return keyedSegment(name, entries, bodies);
}
