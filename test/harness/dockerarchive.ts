/**
 * A tiny busybox image as a `docker save` archive, for `docker load` in a test
 * VM (debvm.ts) — the format docker 20.10 writes and reads:
 *
 *   manifest.json               [{ Config, RepoTags, Layers }]
 *   <config hex>.json           the image config (its sha256 is the image ID)
 *   <layer hex>/layer.tar       the layer, uncompressed (<layer hex> = its diff ID hex)
 *   <layer hex>/VERSION, json   the legacy v1 layer metadata
 *   repositories                { name: { tag: <layer hex> } }
 *
 * The layer is Debian bookworm's busybox-static (`bin/busybox` + the
 * BUSYBOX_APPLETS symlinks in /bin, as the busybox fixture image has) plus
 * /etc/passwd, /etc/group and `files`. Every tar is written by the fixtures'
 * deterministic writer (sorted, uid 0, mtime SOURCE_DATE_EPOCH or 0) and the
 * config's `created` is that epoch, so the same inputs give the same bytes.
 * The busybox-static .deb comes from the fixtures' download cache.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_APPLETS, fixturesCacheDir } from '../fixtures/build.js';
import { aptShow, extractDeb, fetchDeb, type Arch, type DebPkg } from '../fixtures/debs.js';
import { fixedEpoch, writeTar, type TreeEntry } from '../fixtures/tarball.js';

export interface BusyboxArchiveOptions {
  arch: Arch;
  /** Repository:tag the image gets on load; default `dockyard.test/busybox:latest`. */
  tag?: string;
  /** Default `['/bin/sh']`. */
  cmd?: string[];
  entrypoint?: string[];
  /** Extra files in the layer (name relative to /). */
  files?: { name: string; content: string | Buffer; mode?: number }[];
  /** The busybox-static version; default apt's candidate. */
  busyboxVersion?: string;
  /** Download cache of .debs; default the fixtures' (`~/.cache/dockyard-fixtures/debs`). */
  debCache?: string;
}

export interface BusyboxArchive {
  /** The archive written. */
  path: string;
  tag: string;
  /** `sha256:<hex>` of the config: what `docker images --no-trunc` shows as IMAGE ID after the load. */
  imageId: string;
  /** `sha256:<hex>` of layer.tar. */
  diffId: string;
  busybox: DebPkg;
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Writes a `docker save`-format archive of a busybox image to `out`. */
export async function writeBusyboxArchive(out: string, o: BusyboxArchiveOptions): Promise<BusyboxArchive> {
  const tag = o.tag ?? 'dockyard.test/busybox:latest';
  const colon = tag.lastIndexOf(':');
  if (colon <= tag.lastIndexOf('/')) throw new Error(`dockerarchive: tag ${tag} has no :tag part`);
  const version = o.busyboxVersion ?? (await aptShow([['busybox-static', o.arch]]))[0].get('Version')!;
  const busybox: DebPkg = { name: 'busybox-static', arch: o.arch, version };
  const debDir = o.debCache ?? path.join(fixturesCacheDir(), 'debs');
  await mkdir(debDir, { recursive: true });
  const deb = await fetchDeb(busybox, debDir);

  const work = await mkdtemp(path.join(os.tmpdir(), 'dockyard-dockerarchive-'));
  try {
    const tree = path.join(work, 'busybox');
    await extractDeb(deb, tree);
    const bin = path.join(tree, 'bin/busybox');
    const entries: TreeEntry[] = [{ name: 'bin/busybox', type: 'file', mode: 0o755, source: bin, size: (await stat(bin)).size }];
    for (const a of BUSYBOX_APPLETS) entries.push({ name: `bin/${a}`, type: 'symlink', target: 'busybox' });
    for (const d of ['dev', 'etc', 'proc', 'root', 'sys', 'usr', 'usr/bin', 'usr/sbin', 'sbin', 'var']) entries.push({ name: d, type: 'dir', mode: 0o755 });
    entries.push({ name: 'tmp', type: 'dir', mode: 0o1777 });
    entries.push({ name: 'etc/passwd', type: 'data', mode: 0o644, data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') });
    entries.push({ name: 'etc/group', type: 'data', mode: 0o644, data: Buffer.from('root:x:0:\n') });
    for (const f of o.files ?? []) {
      entries.push({ name: f.name.replace(/^\/+/, ''), type: 'data', mode: f.mode ?? 0o644, data: Buffer.from(f.content) });
    }
    const layerTar = path.join(work, 'layer.tar');
    const layer = await writeTar(entries, layerTar, { gzip: false });
    const layerHex = layer.diffId.slice(7);

    const created = new Date(fixedEpoch() * 1000).toISOString().replace(/\.000Z$/, 'Z');
    const containerConfig: Record<string, unknown> = { Env: [PATH_ENV], Cmd: o.cmd ?? ['/bin/sh'] };
    if (o.entrypoint) containerConfig.Entrypoint = o.entrypoint;
    const config = Buffer.from(
      JSON.stringify({
        architecture: o.arch,
        os: 'linux',
        created,
        config: containerConfig,
        rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        history: [{ created, created_by: 'dockyard test harness: Debian busybox-static' }],
      }),
    );
    const configHex = sha256(config);
    const manifest = Buffer.from(JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [tag], Layers: [`${layerHex}/layer.tar`] }]));
    const repositories = Buffer.from(JSON.stringify({ [tag.slice(0, colon)]: { [tag.slice(colon + 1)]: layerHex } }));
    const legacy = Buffer.from(JSON.stringify({ id: layerHex, created, os: 'linux', architecture: o.arch, config: containerConfig }));
    const data = (name: string, b: Buffer): TreeEntry => ({ name, type: 'data', mode: 0o644, data: b });
    await writeTar(
      [
        data('manifest.json', manifest),
        data('repositories', repositories),
        data(`${configHex}.json`, config),
        { name: layerHex, type: 'dir', mode: 0o755 },
        data(`${layerHex}/VERSION`, Buffer.from('1.0')),
        data(`${layerHex}/json`, legacy),
        { name: `${layerHex}/layer.tar`, type: 'file', mode: 0o644, source: layerTar, size: (await stat(layerTar)).size },
      ],
      out,
      { gzip: false },
    );
    return { path: out, tag, imageId: `sha256:${configHex}`, diffId: layer.diffId, busybox };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
