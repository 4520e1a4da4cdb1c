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
import { describeErrors, validateImageDefinition } from '../spec/schema.js';
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
  packages: Request[];
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
  layout: 'rootfs' | 'kernel';
}

const REQUEST = /^([a-z0-9][a-z0-9+.-]*)(?:\s*\((<<|<=|=|>=|>>)\s*([A-Za-z0-9.+~:-]+)\))?$/;

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
  const packages: Request[] = d.packages.map((p) => {
    const m = REQUEST.exec(p.trim())!;
    return m[2] ? { name: m[1], op: m[2] as Relation, version: m[3] } : { name: m[1] };
  });
  const seen = new Map<string, number>();
  packages.forEach((p, i) => {
    if (seen.has(p.name)) problems.push(problemAt(y, ['packages', i], `packages: ${p.name} is listed twice (first as item ${seen.get(p.name)! + 1})`));
    else seen.set(p.name, i);
  });
  const exclude = d.exclude ?? [];
  exclude.forEach((x, i) => {
    if (seen.has(x)) problems.push(problemAt(y, ['exclude', i], `exclude: ${x} is also in packages`));
  });
  const archs = [...new Set(d.archs ?? ['amd64', 'arm64'])].sort() as Arch[];
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
    layout: d.layout ?? 'rootfs',
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
