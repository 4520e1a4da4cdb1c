/**
 * The `files:` section (moby/build build.go, filesystem): each entry with its
 * leading directories, written with the entry's owner and its mode plus the
 * x bit of each class that has r or w, unless an earlier entry wrote them.
 * Default modes: files 0600, directories 0700.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { DockyardError } from '../errors.js';
import type { FileSpec } from '../spec/types.js';
import type { Entry, Segment } from './entry.js';
import { ROOTFS_VERSION } from './image.js';
import { sha256hex } from '../hash.js';

export interface FilesSegmentOptions {
  files: FileSpec[];
  resolveId(v: number | string | undefined): number;
  metadata(format: 'yaml' | 'json'): string;
  epoch: number;
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

/** Every entry of the section, computed now (sources are read at plan time). */
export function fileEntries(o: FilesSegmentOptions): Entry[] {
  const out: Entry[] = [];
  const added = new Set<string>();
  for (const f of o.files) {
    const path = f.path.replace(/^\/+/, '').replace(/\/+$/, '');
    if (path === '') throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: empty path`);
    if (path.split('/').includes('..')) throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: path "${f.path}" contains ".."`);
    let mode = f.directory ? 0o700 : 0o600;
    if (f.mode !== undefined && f.mode !== '') {
      if (!/^[0-7]{1,6}$/.test(f.mode)) throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: ${f.path}: mode "${f.mode}" is not an octal number`);
      mode = parseInt(f.mode, 8);
    }
    const uid = o.resolveId(f.uid);
    const gid = o.resolveId(f.gid);
    let body: Buffer | undefined;
    if (!f.directory && f.symlink === undefined) {
      if (f.contents !== undefined) body = Buffer.from(f.contents, 'utf8');
      else if (f.source !== undefined && f.source !== '') {
        const src = sourcePath(f);
        try {
          if (f.optional) statSync(src);
        } catch {
          continue; // optional and absent: skipped, as LinuxKit does
        }
        try {
          body = readFileSync(src);
        } catch (e) {
          const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
          throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: ${f.path}: cannot read source ${f.source}: ${why}`, { cause: e });
        }
      } else if (f.metadata) body = Buffer.from(o.metadata(f.metadata), 'utf8');
      else throw new DockyardError('E_SPEC_INVALID', `${where(f)}files: ${f.path}: no contents, source, metadata, symlink or directory given`);
    }
    const dirMode = dirModeOf(mode);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (added.has(d)) continue;
      out.push({ path: d, type: 'dir', mode: dirMode, uid, gid, size: 0 });
      added.add(d);
    }
    added.add(path);
    if (f.directory) out.push({ path, type: 'dir', mode, uid, gid, size: 0 });
    else if (f.symlink !== undefined) out.push({ path, type: 'symlink', mode, uid, gid, size: 0, linkname: f.symlink });
    else out.push({ path, type: 'file', mode, uid, gid, size: body!.length, body });
  }
  return out;
}

export function filesSegment(o: FilesSegmentOptions): Segment {
  const entries = fileEntries(o);
  return staticSegment('files', entries);
}

/** A segment of entries known in advance (generated files, directories). */
export function staticSegment(name: string, entries: Entry[]): Segment {
  const h = [ROOTFS_VERSION, 'static', name];
  for (const e of entries) {
    const body = Buffer.isBuffer(e.body) ? sha256hex(e.body.toString('base64')) : '';
    h.push(JSON.stringify([e.path, e.type, e.mode, e.uid, e.gid, e.size, e.linkname ?? '', e.devmajor ?? 0, e.devminor ?? 0, e.mtime ?? null, body]));
    if (e.body !== undefined && !Buffer.isBuffer(e.body)) throw new DockyardError('E_INTERNAL', `static entry ${e.path} must carry its bytes`);
  }
  return {
    name,
    key: sha256hex(...h),
    async *entries() {
      yield* entries;
    },
  };
}
