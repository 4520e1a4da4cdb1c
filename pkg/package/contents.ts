/**
 * A package's contents, resolved once per build and architecture for every
 * packaging format: `package.contents` (files and trees of the spec's images,
 * files beside the spec, inline content, directories, symlinks, ghosts), the
 * spec's `files:` placed on the host, and generated entries (container
 * bundles, their units). Image paths are picked out of the flattened layers
 * as they stream by, never unpacked; bodies go to one spool (spool.ts).
 *
 * Every destination has one source: two sources for one path (two images, an
 * image and a file) is an error naming both; directories may be declared
 * twice (the first declaration's mode wins). Parent directories are added
 * (root, 0755) and marked implicit: rpm leaves them to the packages that own
 * them, deb and pacman list them as dpkg-deb and makepkg do.
 */
import { DockyardError } from '../errors.js';
import { readRegular } from '../fsutil.js';
import { MaxCollectedBytes } from '../archive/sink.js';
import { flattenLayers } from '../rootfs/layers.js';
import type { Entry } from '../rootfs/entry.js';
import type { BlobStore, ImageHandle } from '../oci/types.js';
import type { PackageContentSpec, PackagerName } from '../spec/types.js';
import type { PackageContents, PackageFile } from './types.js';
import { Spool, type Spooled } from '../archive/spool.js';

/** A file from somewhere else than `package.contents` (files:, bundles, units). */
export interface ExtraSource {
  /** For messages: `files:`, `services[0] (sshd)`. */
  what: string;
  entries(): AsyncIterable<Entry>;
  /** Destination prefix: entries' paths are relative to it ('/' for files:). */
  prefix: string;
}

export interface ResolveInput {
  contents: PackageContentSpec[];
  extra: ExtraSource[];
  images: Map<string, ImageHandle>;
  store: BlobStore;
  epoch: number;
  tmpDir: string;
  maxLayerBytes?: number;
  signal?: AbortSignal;
}

interface Item extends PackageFile {
  /** Where it came from, for conflicts. */
  from: string;
  spooled?: Spooled;
  /** The formats it is limited to (`packager:`). */
  only?: PackagerName[];
}

export interface ResolvedContents {
  /** The contents one format sees (its `packager:` entries and the shared ones). */
  forFormat(f: PackagerName): PackageContents;
  close(): Promise<void>;
}

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

function where(c: PackageContentSpec): string {
  return `${c.pos ? `${c.pos.file}:${c.pos.line}:${c.pos.col}: ` : ''}package.contents ${c.dst}`;
}

function clean(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  return '/' + parts.join('/');
}

const normalMode = (type: Entry['type'], mode: number | undefined) => mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644);

export async function resolveContents(input: ResolveInput): Promise<ResolvedContents> {
  const spool = await Spool.create(input.tmpDir, 'package-contents');
  try {
    const items = new Map<string, Item[]>();
    const add = (it: Item) => {
      const list = items.get(it.path) ?? [];
      for (const other of list) {
        // One path, one source per format: a deb-only and an rpm-only entry may share a path.
        if (other.only && it.only && !other.only.some((f) => it.only!.includes(f))) continue;
        if (other.type === 'dir' && it.type === 'dir') return;
        throw new DockyardError('E_PACKAGE', `${it.from} and ${other.from} both provide ${it.path}`);
      }
      list.push(it);
      items.set(it.path, list);
    };
    const base = (c: PackageContentSpec, type: PackageFile['type'], path: string, mode?: number): Item => ({
      path,
      type,
      mode: normalMode(type, c.mode ?? mode) & 0o7777,
      user: c.owner ?? 'root',
      group: c.group ?? 'root',
      // Owners go by name (dpkg, rpm and pacman look names up on the target); the ids are root's.
      uid: 0,
      gid: 0,
      size: 0,
      mtime: input.epoch,
      config: c.type === 'config' || c.type === 'config|noreplace' ? true : undefined,
      ghost: c.type === 'ghost' ? true : undefined,
      from: where(c),
      only: c.packager,
    });

    // Entries not taken from images, in the order written.
    const fromImages = new Map<string, PackageContentSpec[]>();
    for (const c of input.contents) {
      input.signal?.throwIfAborted();
      const dst = clean(c.dst);
      if (dst === '/') throw new DockyardError('E_PACKAGE', `${where(c)}: dst names the root`);
      if (c.image !== undefined) {
        const list = fromImages.get(c.image) ?? [];
        list.push(c);
        fromImages.set(c.image, list);
        continue;
      }
      switch (c.type) {
        case 'dir':
          add(base(c, 'dir', dst));
          break;
        case 'symlink':
          add({ ...base(c, 'symlink', dst), linkname: c.src });
          break;
        case 'ghost':
          add(base(c, 'file', dst));
          break;
        default: {
          const body = c.content !== undefined ? Buffer.from(c.content, 'utf8') : await readRegular(c.src!, MaxCollectedBytes, `${where(c)}: src ${c.src}`, 'E_PACKAGE');
          const spooled = await spool.add(body, input.signal);
          add({ ...base(c, 'file', dst), size: spooled.size, sha256: spooled.sha256, md5: spooled.md5, spooled });
        }
      }
    }

    // Image paths: one pass over each image's flattened layers picks every path asked of it.
    for (const [ref, wanted] of fromImages) {
      const h = input.images.get(ref);
      if (!h) throw new DockyardError('E_INTERNAL', `image ${ref} was not resolved before packaging`);
      const label = `image ${ref}`;
      // src (relative, as layers name paths) → the contents entries asking for it.
      const exact = new Map<string, PackageContentSpec[]>();
      const trees: { src: string; c: PackageContentSpec }[] = [];
      for (const c of wanted) {
        const src = clean(c.src ?? '').slice(1);
        if (c.type === 'tree') trees.push({ src, c });
        else exact.set(src, [...(exact.get(src) ?? []), c]);
      }
      const found = new Set<PackageContentSpec>();
      // Bodies by image path, for hard links to a file picked earlier.
      const picked = new Map<string, Spooled>();
      const take = async (e: Entry, c: PackageContentSpec, dst: string, fromTree: boolean) => {
        let type: PackageFile['type'];
        if (e.type === 'file' || e.type === 'hardlink') type = 'file';
        else if (e.type === 'dir' || e.type === 'symlink') type = e.type;
        else throw new DockyardError('E_PACKAGE', `${where(c)}: ${e.path} in ${label} is a ${e.type} device node, which packages do not ship`);
        if (!fromTree && type === 'dir') throw new DockyardError('E_PACKAGE', `${where(c)}: ${'/' + e.path} in ${label} is a directory: use type: tree to take a whole directory`);
        // Modes as the image has them, unless file_info says otherwise.
        const it: Item = { ...base(c, type, dst, e.mode), from: `${where(c)} (${label})` };
        if (type === 'symlink') it.linkname = e.linkname;
        if (type === 'file') {
          let spooled: Spooled | undefined;
          if (e.type === 'hardlink') {
            spooled = picked.get(e.linkname ?? '');
            if (!spooled) throw new DockyardError('E_PACKAGE', `${where(c)}: ${'/' + e.path} in ${label} is a hard link to /${e.linkname ?? ''}, which is not taken into the package: take that path too`);
          } else spooled = await spool.add(e.body ?? Buffer.alloc(0), input.signal);
          picked.set(e.path, spooled);
          Object.assign(it, { size: spooled.size, sha256: spooled.sha256, md5: spooled.md5, spooled });
        }
        if (c.type === 'config' || c.type === 'config|noreplace') it.config = type === 'file' ? true : undefined;
        add(it);
      };
      for await (const e of flattenLayers(input.store, h.layers, label, { maxLayerBytes: input.maxLayerBytes })) {
        input.signal?.throwIfAborted();
        for (const c of exact.get(e.path) ?? []) {
          found.add(c);
          await take(e, c, clean(c.dst), false);
        }
        for (const t of trees) {
          if (e.path === t.src) {
            if (e.type !== 'dir') throw new DockyardError('E_PACKAGE', `${where(t.c)}: ${'/' + t.src} in ${label} is not a directory (type tree)`);
            found.add(t.c);
            await take(e, t.c, clean(t.c.dst), true);
          } else if (t.src === '' || e.path.startsWith(t.src + '/')) {
            found.add(t.c);
            await take(e, t.c, clean(`${t.c.dst}/${e.path.slice(t.src === '' ? 0 : t.src.length + 1)}`), true);
          }
        }
      }
      for (const c of wanted) {
        if (!found.has(c)) throw new DockyardError('E_PACKAGE', `${where(c)}: ${c.src ?? ''} is not in ${label}`);
      }
    }

    for (const x of input.extra) {
      for await (const e of x.entries()) {
        input.signal?.throwIfAborted();
        const path = clean(`${x.prefix}/${e.path}`);
        if (path === '/') continue;
        if (e.type !== 'file' && e.type !== 'dir' && e.type !== 'symlink' && e.type !== 'hardlink') {
          throw new DockyardError('E_PACKAGE', `${x.what}: ${path} is a ${e.type} device node, which packages do not ship`);
        }
        const it: Item = {
          path,
          type: e.type === 'hardlink' ? 'file' : e.type,
          mode: e.mode & 0o7777,
          user: e.uid === 0 ? 'root' : String(e.uid),
          group: e.gid === 0 ? 'root' : String(e.gid),
          uid: e.uid,
          gid: e.gid,
          size: 0,
          linkname: e.type === 'symlink' ? e.linkname : undefined,
          mtime: input.epoch,
          from: x.what,
        };
        if (e.type === 'file') {
          const spooled = await spool.add(e.body ?? Buffer.alloc(0), input.signal);
          Object.assign(it, { size: spooled.size, sha256: spooled.sha256, md5: spooled.md5, spooled });
        } else if (e.type === 'hardlink') {
          const target = items.get(clean(`${x.prefix}/${e.linkname ?? ''}`))?.[0];
          if (!target?.spooled) throw new DockyardError('E_PACKAGE', `${x.what}: hard link ${path} to a file not in the package`);
          Object.assign(it, { size: target.size, sha256: target.sha256, md5: target.md5, spooled: target.spooled });
        }
        add(it);
      }
    }

    return {
      forFormat(f: PackagerName): PackageContents {
        const chosen = new Map<string, Item>();
        for (const [path, list] of items) {
          const it = list.find((i) => i.only?.includes(f)) ?? list.find((i) => i.only === undefined);
          if (it) chosen.set(path, it);
        }
        // Every parent directory listed, implicit ones root-owned 0755.
        for (const path of [...chosen.keys()]) {
          for (let p = path.slice(0, path.lastIndexOf('/')); p !== ''; p = p.slice(0, p.lastIndexOf('/'))) {
            const parent = chosen.get(p);
            if (parent) {
              if (parent.type !== 'dir') throw new DockyardError('E_PACKAGE', `${parent.from} makes ${p} a ${parent.type}, but ${chosen.get(path)!.from} puts ${path} below it`);
              continue;
            }
            chosen.set(p, { path: p, type: 'dir', mode: 0o755, user: 'root', group: 'root', uid: 0, gid: 0, size: 0, mtime: input.epoch, implicit: true, from: 'parent directory' });
          }
        }
        // Files in /etc are configuration, as debhelper marks them (Debian Policy §10.7.2).
        const files: PackageFile[] = [...chosen.values()]
          .sort((a, b) => byteOrder(a.path, b.path))
          .map(({ from: _from, only: _only, spooled: _s, ...f }) => (f.type === 'file' && !f.ghost && f.path.startsWith('/etc/') ? { ...f, config: true } : f));
        const spooledOf = new Map([...chosen.values()].map((i) => [i.path, i.spooled]));
        return {
          files,
          async *body(f: PackageFile) {
            const s = spooledOf.get(f.path);
            if (s) yield* spool.read(s);
          },
          installedBytes: files.reduce((n, f) => n + (f.ghost ? 0 : f.size), 0),
        };
      },
      close: () => spool.close(),
    };
  } catch (e) {
    await spool.close();
    throw e;
  }
}
