/**
 * The directory tree a filesystem image (squashfs, EROFS, ISO 9660) is
 * written from, built from a stream of entries in output order (segments one
 * after another). The stream may name a path more than once, as a tar
 * archive or concatenated cpio archives may: the last entry wins, as when
 * they are extracted in order —
 *   - a directory over a directory takes its metadata and keeps its children;
 *   - anything else replaces the node (a directory's subtree goes with it);
 *   - a hard link shares the node its target has at that moment (later
 *     entries at the target path do not change it, as for `tar -x`).
 * Parents a stream does not name are made (0755, root, the build epoch).
 *
 * A file's content is written by the filesystem writer as the entry comes
 * (streamed, never held); the tree keeps only what the writer returns for it
 * (`data`), so memory grows with the number of entries, not their size.
 * Children are sorted by the bytes of their names (strcmp order: what
 * squashfs and EROFS directory lookups need), so the result is deterministic.
 */
import type { Entry } from '../rootfs/entry.js';
import { DockyardError } from '../errors.js';

export type NodeType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

export interface FsNode<D> {
  type: NodeType;
  /** Permission bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Content length for files; 0 otherwise. */
  size: number;
  /** Symlink target. */
  target?: string;
  devmajor?: number;
  devminor?: number;
  /** What the writer made of a file's content (where its blocks are). */
  data?: D;
  /** Directory children by name; sort with `sortedChildren`. */
  children?: Map<string, FsNode<D>>;
  /** Directory entries naming this node (hard links); set by `finish`. */
  links: number;
  /** The first path the node was seen at (errors, hard links). */
  path: string;
}

export class FsTree<D> {
  readonly root: FsNode<D>;

  constructor(private readonly epoch: number) {
    this.root = this.dir('', 0o755, 0, 0, epoch);
  }

  private dir(path: string, mode: number, uid: number, gid: number, mtime: number): FsNode<D> {
    return { type: 'dir', mode, uid, gid, mtime, size: 0, children: new Map(), links: 0, path };
  }

  /** The directory holding `path`, made (with its parents) if the stream has not named it. */
  private parentOf(path: string): { parent: FsNode<D>; name: string } {
    const parts = path.split('/');
    const name = parts.pop()!;
    let at = this.root;
    let sofar = '';
    for (const p of parts) {
      sofar = sofar ? `${sofar}/${p}` : p;
      let next = at.children!.get(p);
      if (!next || next.type !== 'dir') {
        // A non-directory in the way is replaced, as extracting `a/b` over a file `a` would.
        next = this.dir(sofar, 0o755, 0, 0, this.epoch);
        at.children!.set(p, next);
      }
      at = next;
    }
    return { parent: at, name };
  }

  /** The node at `path`, if any. */
  lookup(path: string): FsNode<D> | undefined {
    if (path === '') return this.root;
    let at: FsNode<D> | undefined = this.root;
    for (const p of path.split('/')) {
      at = at?.children?.get(p);
      if (!at) return undefined;
    }
    return at;
  }

  /**
   * Adds one entry; `data` is what the writer made of a file's content.
   * Returns the node (a hard link returns its target's).
   */
  add(e: Entry, data?: D): FsNode<D> {
    const mtime = e.mtime ?? this.epoch;
    const mode = e.mode & 0o7777;
    if (e.path === '') {
      // The root itself: metadata only.
      if (e.type === 'dir') Object.assign(this.root, { mode, uid: e.uid, gid: e.gid, mtime });
      return this.root;
    }
    const { parent, name } = this.parentOf(e.path);
    const old = parent.children!.get(name);
    if (e.type === 'hardlink') {
      const target = e.linkname === undefined ? undefined : this.lookup(e.linkname);
      if (!target || target.type === 'dir')
        throw new DockyardError('E_LAYER_FORMAT', `${e.path}: hard link to ${e.linkname ?? '(nothing)'}, which is ${target ? 'a directory' : 'not in the image before it'}`);
      parent.children!.set(name, target);
      return target;
    }
    if (e.type === 'dir') {
      if (old && old.type === 'dir') {
        Object.assign(old, { mode, uid: e.uid, gid: e.gid, mtime });
        return old;
      }
      const d = this.dir(e.path, mode, e.uid, e.gid, mtime);
      parent.children!.set(name, d);
      return d;
    }
    const node: FsNode<D> = { type: e.type, mode, uid: e.uid, gid: e.gid, mtime, size: e.type === 'file' ? e.size : 0, links: 0, path: e.path };
    if (e.type === 'symlink') node.target = e.linkname ?? '';
    if (e.type === 'char' || e.type === 'block') {
      node.devmajor = e.devmajor ?? 0;
      node.devminor = e.devminor ?? 0;
    }
    if (data !== undefined) node.data = data;
    parent.children!.set(name, node);
    return node;
  }

  /**
   * Counts links and returns every distinct node once, directories before
   * their children, children in name order (depth first): the order writers
   * number inodes in.
   */
  finish(): FsNode<D>[] {
    const seen = new Set<FsNode<D>>();
    const out: FsNode<D>[] = [];
    const visit = (n: FsNode<D>) => {
      n.links++;
      if (seen.has(n)) return;
      seen.add(n);
      out.push(n);
      if (n.type === 'dir') for (const [, c] of sortedChildren(n)) visit(c);
    };
    visit(this.root);
    // A directory's link count: its entry, its own ".", and each subdirectory's "..".
    for (const n of out) if (n.type === 'dir') n.links = (n === this.root ? 2 : n.links + 1) + [...n.children!.values()].filter((c) => c.type === 'dir').length;
    return out;
  }
}

/** Children of a directory in strcmp order of their UTF-8 names. */
export function sortedChildren<D>(n: FsNode<D>): [string, FsNode<D>][] {
  return [...(n.children ?? new Map<string, FsNode<D>>())].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
