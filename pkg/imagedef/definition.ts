/**
 * An image definition of `dockyard pkg` (schemas/image.schema.json): YAML
 * checked against the schema, every problem reported as file:line:col, and
 * normalised (defaults filled, keyring paths made absolute).
 */
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { DockyardError, type SpecProblem } from '../errors.js';
import { readRegular } from '../fsutil.js';
import { MaxSpecBytes } from '../limits.js';
import type { Repository } from '../debian/archive.js';
import type { Request } from '../debian/solve.js';
import type { Relation } from '../debian/version.js';
import { describeErrors, displayPath, validateImageDefinition, type PathSeg } from '../spec/schema.js';
import { parseYamlFile, problemAt, type YamlFile } from '../yamlfile/yamlfile.js';

export type Arch = 'amd64' | 'arm64';

export interface ImageDefinition {
  /** The definition file (absolute) and its folder. */
  file: string;
  dir: string;
  name: string;
  repositories: Repository[];
  /** Absolute paths. */
  keyring: string[];
  /** As written; `archs` is a dpkg architecture restriction (`[amd64]`, `[!arm64]`): see packagesFor. */
  packages: PackageRequest[];
  exclude: string[];
  essential: boolean;
  archs: Arch[];
  config: {
    entrypoint?: string[];
    cmd?: string[];
    env?: Record<string, string>;
    workdir?: string;
    user?: string;
    labels?: Record<string, string>;
    runtime?: Record<string, unknown>;
  };
  accounts: { groups: { name: string; gid: number }[]; users: { name: string; uid: number; gid?: number; home?: string; shell?: string }[] };
  paths: { path: string; type: 'directory' | 'symlink'; target?: string; mode?: string; uid?: number; gid?: number }[];
  files: { source: string; path: string; mode?: string; uid?: number; gid?: number }[];
  /** Package files put elsewhere as they are written (`from` → `to`, absolute paths as the image has them). */
  move: { from: string; to: string }[];
  layout: 'rootfs' | 'kernel';
  /** bin, sbin, lib* as symlinks into usr/ (Debian's default since bookworm); false keeps them real directories. */
  mergedUsr: boolean;
  /** For layout: kernel: which modules (closed under their dependencies) and device trees kernel.tar keeps; all when absent. */
  kernel: { modules?: string[]; dtbs?: string[] };
}

export interface PackageRequest extends Request {
  /** Only for these architectures (dpkg's `[amd64 arm64]`), or for all but these (`[!arm64]`). */
  archs?: { not: boolean; list: string[] };
}

/** The requests of the definition that apply to one architecture. */
export function packagesFor(def: ImageDefinition, arch: Arch): Request[] {
  return def.packages
    .filter((p) => !p.archs || p.archs.list.includes(arch) !== p.archs.not)
    .map(({ name, op, version }) => (op ? { name, op, version } : { name }));
}

const REQUEST = /^([a-z0-9][a-z0-9+.-]*)(?:\s*\((<<|<=|=|>=|>>)\s*([A-Za-z0-9.+~:-]+)\))?(?:\s*\[\s*([^\]]*?)\s*\])?$/;

/** The name a definition file gives by default: its base name without .yml/.yaml. */
export function defaultName(file: string): string {
  return basename(file).replace(/\.ya?ml$/i, '');
}

/** Parses and checks a definition's text; problems come back as values. */
export function parseDefinition(text: string, file: string): { def?: ImageDefinition; problems: SpecProblem[] } {
  const y = parseYamlFile(text, file);
  if ('problem' in y) return { problems: [y.problem] };
  if (y.data === null || y.data === undefined) return { problems: [{ file, line: 1, col: 1, path: '', message: 'the image definition is empty' }] };
  const errors = validateImageDefinition(y.data);
  if (errors.length > 0) return { problems: describeErrors(errors, y.data, 'image definition').map((i) => problemAt(y, i.path, i.message, i.key)) };
  return check(y);
}

function check(y: YamlFile): { def?: ImageDefinition; problems: SpecProblem[] } {
  const d = y.data as Record<string, unknown> & Omit<ImageDefinition, 'file' | 'dir' | 'packages' | 'name'> & { packages: string[]; name?: string };
  const problems: SpecProblem[] = [];
  const file = resolve(y.file);
  const dir = dirname(file);
  const packages: PackageRequest[] = d.packages.map((p, i) => {
    const m = REQUEST.exec(p.trim())!;
    const r: PackageRequest = m[2] ? { name: m[1], op: m[2] as Relation, version: m[3] } : { name: m[1] };
    if (m[4] !== undefined) {
      // dpkg: all positive or all negated (deb-src-control(5), Build-Depends).
      const words = m[4].split(/\s+/);
      const not = words[0].startsWith('!');
      if (words.some((w) => w.startsWith('!') !== not)) problems.push(problemAt(y, ['packages', i], `packages: ${p}: an architecture list is all positive or all negated ([amd64 arm64] or [!arm64])`));
      r.archs = { not, list: words.map((w) => w.replace(/^!/, '')) };
    }
    return r;
  });
  const archs = [...new Set(d.archs ?? ['amd64', 'arm64'])].sort() as Arch[];
  // A name twice is a mistake unless the two never apply to the same architecture.
  const twice = new Set<number>();
  for (const arch of archs) {
    const seen = new Map<string, number>();
    packages.forEach((p, i) => {
      if (p.archs && p.archs.list.includes(arch) === p.archs.not) return;
      const first = seen.get(p.name);
      if (first === undefined) seen.set(p.name, i);
      else if (!twice.has(i)) {
        twice.add(i);
        const forArch = p.archs || packages[first].archs ? ` for ${arch}` : '';
        problems.push(problemAt(y, ['packages', i], `packages: ${p.name} is listed twice${forArch} (first as item ${first + 1})`));
      }
    });
  }
  const seen = new Set(packages.map((p) => p.name));
  const exclude = d.exclude ?? [];
  exclude.forEach((x, i) => {
    if (seen.has(x)) problems.push(problemAt(y, ['exclude', i], `exclude: ${x} is also in packages`));
  });
  const moves = (d as { move?: { from: string; to: string }[] }).move ?? [];
  const movedFrom = new Map<string, number>();
  moves.forEach((m, i) => {
    if (movedFrom.has(m.from)) problems.push(problemAt(y, ['move', i, 'from'], `move: ${m.from} is moved twice (first as item ${movedFrom.get(m.from)! + 1})`));
    else movedFrom.set(m.from, i);
  });
  // Paths written into the image: no "." or ".." parts, no empty ones (a layer entry must stay below its root).
  const inImage: [PathSeg[], string][] = [
    ...(d.paths ?? []).map((x, i): [PathSeg[], string] => [['paths', i, 'path'], x.path]),
    ...(d.files ?? []).map((x, i): [PathSeg[], string] => [['files', i, 'path'], x.path]),
    ...moves.flatMap((x, i): [PathSeg[], string][] => [[['move', i, 'from'], x.from], [['move', i, 'to'], x.to]]),
  ];
  for (const [at, path] of inImage) {
    if (path.slice(1).split('/').some((part) => part === '' || part === '.' || part === '..')) problems.push(problemAt(y, at, `${displayPath(at)}: ${path} is not a plain absolute path (no ".", ".." or empty parts)`));
  }
  const kernel = (d as { kernel?: ImageDefinition['kernel'] }).kernel ?? {};
  if (Object.keys(kernel).length && (d.layout ?? 'rootfs') !== 'kernel') problems.push(problemAt(y, ['kernel'], 'kernel: only for layout: kernel'));
  for (const arch of archs) {
    if (!packages.some((p) => !p.archs || p.archs.list.includes(arch) !== p.archs.not)) problems.push(problemAt(y, ['packages'], `packages: none of them is for ${arch}, one of the archs`));
  }
  const def: ImageDefinition = {
    file,
    dir,
    name: d.name ?? defaultName(file),
    repositories: d.repositories.map((r) => ({ uri: r.uri.replace(/\/+$/, ''), suites: r.suites, components: r.components })),
    keyring: d.keyring.map((k) => (isAbsolute(k) ? k : resolve(dir, k))),
    packages,
    exclude,
    essential: d.essential ?? false,
    archs,
    config: d.config ?? {},
    accounts: { groups: d.accounts?.groups ?? [], users: d.accounts?.users ?? [] },
    paths: d.paths ?? [],
    files: d.files ?? [],
    move: moves,
    layout: d.layout ?? 'rootfs',
    mergedUsr: (d as { 'merged-usr'?: boolean })['merged-usr'] ?? true,
    kernel,
  };
  return problems.length ? { problems } : { def, problems };
}

/** Reads and checks a definition file; the first problem is the error (file:line:col). */
export async function loadDefinition(file: string): Promise<ImageDefinition> {
  const bytes = await readRegular(file, MaxSpecBytes, 'image definition', 'E_SPEC_READ');
  const { def, problems } = parseDefinition(bytes.toString('utf8'), file);
  if (!def) {
    const p = problems[0];
    throw new DockyardError('E_SPEC_INVALID', p.message, { position: { file: p.file, line: p.line, col: p.col } });
  }
  return def;
}
