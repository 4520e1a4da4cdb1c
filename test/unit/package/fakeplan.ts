/**
 * A small package plan held in memory, for the packaging formats' unit tests
 * (the real plan is made from a spec and its images: pkg/package/plan.ts).
 */
import { createHash } from 'node:crypto';
import type { PackageFile, PackagePlan, RenderedScripts } from '../../../pkg/package/types.js';

export interface FakeFile {
  path: string;
  type?: 'file' | 'dir' | 'symlink';
  mode?: number;
  body?: string | Buffer;
  linkname?: string;
  config?: boolean;
  ghost?: boolean;
  user?: string;
  group?: string;
}

export function fakePlan(o: { arch?: 'amd64' | 'arm64'; epoch?: number; name?: string; version?: string; release?: string; pkgEpoch?: number; files?: FakeFile[]; scripts?: RenderedScripts; mtime?: number } = {}): PackagePlan {
  const mtime = o.mtime ?? 1700000000;
  const given: FakeFile[] = o.files ?? [
    { path: '/usr/bin/hello', mode: 0o755, body: '#!/bin/sh\necho hello\n' },
    { path: '/usr/share/doc/hello/README', body: 'hello\n' },
    { path: '/usr/bin/hi', type: 'symlink', linkname: 'hello' },
    { path: '/etc/hello.conf', body: 'greeting=hello\n', config: true },
    { path: '/var/lib/hello', type: 'dir' },
    { path: '/var/log/hello.log', ghost: true, body: '' },
  ];
  const bodies = new Map<string, Buffer>();
  const byPath = new Map<string, PackageFile>();
  const addDir = (p: string) => {
    if (p === '/' || byPath.has(p)) return;
    addDir(p.slice(0, p.lastIndexOf('/')) || '/');
    byPath.set(p, { path: p, type: 'dir', mode: 0o755, user: 'root', group: 'root', uid: 0, gid: 0, size: 0, mtime });
  };
  for (const f of given) {
    addDir(f.path.slice(0, f.path.lastIndexOf('/')) || '/');
    const type = f.type ?? 'file';
    const body = type === 'file' ? Buffer.from(f.body ?? '') : undefined;
    if (body) bodies.set(f.path, body);
    byPath.set(f.path, {
      path: f.path,
      type,
      mode: f.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      user: f.user ?? 'root',
      group: f.group ?? 'root',
      uid: 0,
      gid: 0,
      size: body?.length ?? 0,
      linkname: f.linkname,
      mtime,
      sha256: body && createHash('sha256').update(body).digest('hex'),
      md5: body && createHash('md5').update(body).digest('hex'),
      config: f.config,
      ghost: f.ghost,
    });
  }
  const files = [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return {
    meta: {
      name: o.name ?? 'hello',
      version: o.version ?? '1.2.3',
      epoch: o.pkgEpoch ?? 0,
      release: o.release ?? '1',
      arch: o.arch ?? 'amd64',
      summary: 'says hello',
      description: 'A small package that says hello.\nIt has a config file and a symlink.',
      maintainer: 'Dockyard Tests <tests@dockyard.invalid>',
      vendor: 'dockyard',
      homepage: 'https://example.org/hello',
      license: 'Apache-2.0',
      section: 'misc',
      priority: 'optional',
      relations: { depends: ['libc6 (>= 2.34)'], preDepends: [], recommends: [], suggests: [], conflicts: ['hello-old'], breaks: [], replaces: ['hello-old'], provides: ['hello-world'] },
      changelog: [{ version: `${o.version ?? '1.2.3'}-${o.release ?? '1'}`, date: mtime, author: 'Dockyard Tests <tests@dockyard.invalid>', changes: ['First release.'] }],
    },
    contents: {
      files,
      async *body(f) {
        const b = bodies.get(f.path);
        if (b === undefined) throw new Error(`no body for ${f.path}`);
        yield b;
      },
      installedBytes: files.filter((f) => !f.ghost).reduce((n, f) => n + f.size, 0),
    },
    scripts: o.scripts ?? {
      deb: { postinst: '#!/bin/sh\nset -e\necho configured\n' },
      rpm: { post: 'echo installed\n' },
      pacman: 'post_install() {\n  echo installed\n}\n',
    },
    accounts: [],
    units: [],
    time: mtime,
  };
}
