/**
 * The `.MTREE` of a pacman package: what makepkg gets from
 *
 *   bsdtar -cnf - --format=mtree \
 *     --options='!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link' … | gzip -c -f -n
 *
 * written here from the plan's metadata (the digests are already known), in
 * the order and with the `/set` lines libarchive's mtree writer produces
 * (libarchive/archive_write_set_format_mtree.c), so the text matches
 * bsdtar's byte for byte:
 *
 *   #mtree
 *   /set type=file uid=0 gid=0 mode=644
 *   ./.PKGINFO time=1700000000.0 size=412 md5digest=… sha256digest=…
 *   ./usr time=1700000000.0 mode=755 type=dir
 *   ./usr/bin time=1700000000.0 mode=755 type=dir
 *   ./usr/bin/hi time=1700000000.0 mode=777 type=link link=hello
 *
 * Layout rules taken from that writer:
 * - Entries form a tree; each directory is written, then its non-directory
 *   children, then its subdirectories (each recursively), children in byte
 *   order of their names. The root `.` is not written (makepkg never passes
 *   it); missing parents are "virtual" directories, not written either.
 * - Before each directory (and for the root) the most used uid, gid and mode
 *   among its children may become the new `/set` default: the first `/set`
 *   names type=file and all three; later ones only values that changed and
 *   are shared by at least two children. An entry omits what matches the
 *   defaults (type only for regular files).
 * - Keywords in the order time, mode, gid, uid, type, link|size, md5digest,
 *   sha256digest; time as `SECONDS.NANOSECONDS` (`.0`).
 * - Names are escaped byte-wise: anything but printable ASCII other than
 *   space, `#`, `=` and `\` becomes `\ooo` (mtree_quote), UTF-8 included.
 *
 * libalpm reads this (with libarchive's mtree reader) for the package's
 * file list (be_package.c build_filelist_from_mtree) and stores it as
 * `local/NAME-VER/mtree`, which `pacman -Qkk` checks the installed files
 * against (type, uid, gid, mode, mtime, size, link target).
 */
import { gzipSync } from 'node:zlib';
import { DockyardError } from '../../errors.js';

export interface MtreeEntry {
  /** Relative path: no leading `/` or `./`, no trailing `/` (`usr/bin/hello`, `.PKGINFO`). */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits (0o7777 mask). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Bytes of a file. */
  size: number;
  /** Lowercase hex digests of a file's bytes. */
  md5?: string;
  sha256?: string;
  /** Symlink target as written. */
  linkname?: string;
}

/** Bytes mtree writes as themselves (libarchive's safe_char): printable ASCII except space, `#`, `=`, `\`. */
function safe(c: number): boolean {
  return c > 0x20 && c < 0x7f && c !== 0x23 && c !== 0x3d && c !== 0x5c;
}

/** A name or link target as mtree writes it: unsafe bytes of its UTF-8 as `\ooo`. */
export function mtreeQuote(s: string): string {
  const b = Buffer.from(s, 'utf8');
  let out = '';
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (safe(b[i])) continue;
    out += b.toString('latin1', start, i) + '\\' + b[i].toString(8).padStart(3, '0');
    start = i + 1;
  }
  return out + b.toString('latin1', start);
}

interface Node {
  entry: MtreeEntry | undefined; // undefined: a virtual directory (root, or a parent not listed)
  name: Buffer;
  parentPath: string; // './usr/bin' for usr/bin/x; '.' for top-level entries
  dir: boolean;
  children: Node[];
}

/** One of libarchive's attribute counters: values by how many children use them, most used first, ties in the order they got there. */
class Counter {
  private list: { value: number; count: number }[] = [];
  add(v: number): void {
    const i = this.list.findIndex((x) => x.value === v);
    if (i < 0) {
      this.list.push({ value: v, count: 1 });
      return;
    }
    const it = this.list[i];
    it.count++;
    if (i === 0 || this.list[i - 1].count >= it.count) return;
    // Move it behind the nearest earlier counter at least as large (attr_counter_inc).
    let j = i - 1;
    while (j >= 0 && this.list[j].count < it.count) j--;
    this.list.splice(i, 1);
    this.list.splice(j + 1, 0, it);
  }
  get head(): { value: number; count: number } | undefined {
    return this.list[0];
  }
}

/** The `/set` state of libarchive's writer (keys: type, uid, gid, mode). */
interface SetState {
  processing: boolean;
  uid: number;
  gid: number;
  mode: number;
  has: { uid: boolean; gid: boolean; mode: boolean };
}

/** The mtree text (uncompressed) for `entries`, as bsdtar writes it with makepkg's options. */
export function mtreeText(entries: readonly MtreeEntry[]): string {
  const root: Node = { entry: undefined, name: Buffer.from('.'), parentPath: '', dir: true, children: [] };
  const dirs = new Map<string, Node>([['', root]]);
  const seen = new Set<string>();

  const dirNode = (path: string): Node => {
    const have = dirs.get(path);
    if (have) {
      if (!have.dir) throw new DockyardError('E_INTERNAL', `mtree: ${path} is not a directory but has entries below it`);
      return have;
    }
    if (seen.has(path)) throw new DockyardError('E_INTERNAL', `mtree: ${path} is not a directory but has entries below it`);
    const slash = path.lastIndexOf('/');
    const parent = dirNode(slash < 0 ? '' : path.slice(0, slash));
    const n: Node = { entry: undefined, name: Buffer.from(path.slice(slash + 1)), parentPath: slash < 0 ? '.' : `./${path.slice(0, slash)}`, dir: true, children: [] };
    parent.children.push(n);
    dirs.set(path, n);
    return n;
  };

  for (const e of entries) {
    if (e.path === '' || e.path.startsWith('/') || e.path.endsWith('/') || e.path.split('/').some((c) => c === '' || c === '.' || c === '..')) {
      throw new DockyardError('E_INTERNAL', `mtree: bad path '${e.path}'`);
    }
    if (seen.has(e.path)) throw new DockyardError('E_INTERNAL', `mtree: ${e.path} listed twice`);
    seen.add(e.path);
    const virtual = dirs.get(e.path);
    if (virtual) {
      // A directory first made as a parent, now listed itself (libarchive: same entry, no longer virtual).
      if (e.type !== 'dir') throw new DockyardError('E_INTERNAL', `mtree: ${e.path} is not a directory but has entries below it`);
      virtual.entry = e;
      continue;
    }
    const slash = e.path.lastIndexOf('/');
    const parent = dirNode(slash < 0 ? '' : e.path.slice(0, slash));
    const n: Node = { entry: e, name: Buffer.from(e.path.slice(slash + 1)), parentPath: slash < 0 ? '.' : `./${e.path.slice(0, slash)}`, dir: e.type === 'dir', children: [] };
    parent.children.push(n);
    if (n.dir) dirs.set(e.path, n);
  }

  const set: SetState = { processing: false, uid: 0, gid: 0, mode: 0, has: { uid: false, gid: false, mode: false } };
  const out: string[] = ['#mtree\n'];

  /** The `/set` line (if any) before a directory, from its children's counters (write_global). */
  const writeGlobal = (uid: Counter, gid: Counter, mode: Counter): void => {
    const parts: string[] = [];
    const pick = (c: Counter, key: 'uid' | 'gid' | 'mode'): void => {
      const head = c.head;
      if (!head) return; // no children: nothing to base a default on
      // Once defaults exist, change one only when at least two children share a different value.
      if (set.processing && set.has[key] && (head.count < 2 || set[key] === head.value)) return;
      set[key] = head.value;
      set.has[key] = true;
      parts.push(key === 'mode' ? ` mode=${head.value.toString(8)}` : ` ${key}=${head.value}`);
    };
    if (!set.processing) parts.push(' type=file');
    pick(uid, 'uid');
    pick(gid, 'gid');
    pick(mode, 'mode');
    set.processing = true;
    if (parts.length > 0) out.push(`/set${parts.join('')}\n`);
  };

  const writeEntry = (n: Node): void => {
    const e = n.entry!;
    let line = `${mtreeQuote(n.parentPath)}/${mtreeQuote(e.path.slice(e.path.lastIndexOf('/') + 1))}`;
    line += ` time=${Math.floor(e.mtime)}.0`;
    const mode = e.mode & 0o7777;
    if (!(set.has.mode && set.mode === mode)) line += ` mode=${mode.toString(8)}`;
    if (!(set.has.gid && set.gid === e.gid)) line += ` gid=${e.gid}`;
    if (!(set.has.uid && set.uid === e.uid)) line += ` uid=${e.uid}`;
    if (e.type === 'symlink') line += ` type=link link=${mtreeQuote(e.linkname ?? '')}`;
    else if (e.type === 'dir') line += ' type=dir';
    else {
      if (!e.md5 || !e.sha256) throw new DockyardError('E_INTERNAL', `mtree: ${e.path} has no digests`);
      // type=file is the /set default from the first line on.
      line += ` size=${e.size} md5digest=${e.md5} sha256digest=${e.sha256}`;
    }
    out.push(line + '\n');
  };

  const visit = (dir: Node): void => {
    dir.children.sort((a, b) => Buffer.compare(a.name, b.name));
    const uid = new Counter();
    const gid = new Counter();
    const mode = new Counter();
    for (const c of dir.children) {
      // Virtual directories count as 0755 root-owned, as libarchive makes them.
      uid.add(c.entry?.uid ?? 0);
      gid.add(c.entry?.gid ?? 0);
      mode.add(c.entry ? c.entry.mode & 0o7777 : 0o755);
    }
    writeGlobal(uid, gid, mode);
    if (dir.entry) writeEntry(dir);
    for (const c of dir.children) if (!c.dir) writeEntry(c);
    for (const c of dir.children) if (c.dir) visit(c);
  };
  visit(root);
  return out.join('');
}

/**
 * The `.MTREE` file: mtreeText gzip-compressed like `gzip -c -f -n` (no
 * name, no time). zlib writes the header's OS byte for the host it was built
 * for; it is set to 3 (Unix), what gzip writes on Linux, so the bytes do not
 * depend on where dockyard runs.
 */
export function encodeMtree(entries: readonly MtreeEntry[]): Buffer {
  const gz = gzipSync(Buffer.from(mtreeText(entries), 'utf8'), { level: 6 });
  gz[9] = 3;
  return gz;
}
