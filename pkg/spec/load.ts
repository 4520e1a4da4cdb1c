/**
 * load: YAML text → schema check → merge (LinuxKit's moby.AppendConfig) →
 * semantic checks knowable without pulling → normalised Spec. Problems are
 * returned as values with file:line:col; nothing here throws for bad input.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { homedir } from 'node:os';
import type { Document, LineCounter } from 'yaml';
import { parseYamlFile, positionIn } from '../yamlfile/yamlfile.js';
import { DockyardError, type SourcePosition, type SpecProblem } from '../errors.js';
import { kindOf, readRegular } from '../fsutil.js';
import { formatSize, MaxSpecBytes } from '../limits.js';
import { RELATION_KEYS, type FileSpec, type ImageSpec, type KernelSpec, type PackageSpec, type PackagerName, type Spec, type VolumeSpec } from './types.js';
import { describeErrors, displayPath, validateSpec, type PathSeg } from './schema.js';

export interface SpecInput {
  file: string;
  text: string;
}

export const STDIN_NAME = '<stdin>';

async function readStream(s: NodeJS.ReadableStream, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    n += b.length;
    if (n > limit) throw new DockyardError('E_SPEC_READ', `the spec on standard input is larger than ${formatSize(limit)} (large contents belong in files: source:)`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads each spec file; `-` reads `stdin` (once) and is named `<stdin>`. A
 * spec is a regular file (or a pipe: `<(…)`), at most MaxSpecBytes.
 */
export async function readSpecInputs(paths: string[], stdin?: NodeJS.ReadableStream, limit = MaxSpecBytes): Promise<SpecInput[]> {
  const out: SpecInput[] = [];
  for (const p of paths) {
    if (p === '-') {
      if (!stdin) throw new DockyardError('E_SPEC_READ', 'cannot read spec from stdin: no input stream');
      out.push({ file: STDIN_NAME, text: await readStream(stdin, limit) });
      continue;
    }
    out.push({ file: p, text: (await readRegular(p, limit, `spec ${p}`, 'E_SPEC_READ', { fifoOk: true, tooLarge: '(large contents belong in files: source:)' })).toString('utf8') });
  }
  return out;
}

export interface LoadOptions {
  /** Check that `files:` sources exist (relative to the declaring file). Default true. */
  checkSources?: boolean | 'warn';
}

export interface LoadResult {
  spec?: Spec;
  problems: SpecProblem[];
  warnings: string[];
}

/** One parsed file: its plain data plus a way back to positions. */
interface Parsed {
  file: string;
  baseDir: string;
  data: Record<string, unknown>;
  doc: Document;
  lines: LineCounter;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Position of the node at `path`; with `key`, of that key inside the map at `path`. */
function positionOf(p: Parsed, path: PathSeg[], key?: string): { line: number; col: number } {
  return positionIn(p, path, key);
}

function problem(p: Parsed, path: PathSeg[], message: string, key?: string): SpecProblem {
  const { line, col } = positionOf(p, path, key);
  return { file: p.file, line, col, path: path.join('/'), message };
}

function pos(p: Parsed, path: PathSeg[]): SourcePosition {
  const { line, col } = positionOf(p, path);
  return { file: p.file, line, col };
}

function baseDirOf(file: string): string {
  return file === STDIN_NAME ? process.cwd() : dirname(resolve(file));
}

function parseOne(input: SpecInput, problems: SpecProblem[]): Parsed | undefined {
  const y = parseYamlFile(input.text, input.file);
  if ('problem' in y) {
    problems.push(y.problem);
    return undefined;
  }
  const { doc, lines, data } = y;
  const parsed: Parsed = { file: input.file, baseDir: baseDirOf(input.file), data: {}, doc, lines };
  if (data === null || data === undefined) return parsed; // an empty file is an empty spec
  const errors = validateSpec(data);
  if (errors.length > 0) {
    for (const issue of describeErrors(errors, data)) problems.push(problem(parsed, issue.path, issue.message, issue.key));
    return undefined;
  }
  parsed.data = data as Obj;
  return parsed;
}

const SECTIONS = ['onboot', 'onshutdown', 'services'] as const;

/** Volume names become directories: LinuxKit's nameRE. */
export const VOLUME_NAME = /^[a-z0-9_-]*$/;

/** Paths inside the data where a string holds NUL (at most a few). */
function nulStrings(data: unknown): PathSeg[][] {
  const out: PathSeg[][] = [];
  const walk = (v: unknown, path: PathSeg[]) => {
    if (out.length >= 20) return;
    if (typeof v === 'string') {
      if (v.includes('\0')) out.push(path);
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\0')) out.push(path);
        walk(x, [...path, k]);
      }
    }
  };
  walk(data, []);
  return out;
}

/** Where each merged list item came from, so later checks can point at it. */
interface Origin {
  p: Parsed;
  path: PathSeg[];
}

interface Merged {
  raw: Obj;
  components?: Record<string, string>;
  kernelOrigin?: Origin;
  items: Record<'init' | 'onboot' | 'onshutdown' | 'services' | 'files' | 'volumes', { value: unknown; at: Origin }[]>;
  /** `package:` keys, each from the last file that set it; contents append, changelog entries of later files go first. */
  pkg?: { values: Record<string, { value: unknown; at: Origin }>; contents: { value: unknown; at: Origin }[]; changelog: { value: unknown; at: Origin }[]; first: Origin };
}

/** LinuxKit's AppendConfig: kernel fields set later win (strings only when non-empty), lists append. */
function merge(files: Parsed[]): Merged {
  const items: Merged['items'] = { init: [], onboot: [], onshutdown: [], services: [], files: [], volumes: [] };
  let kernel: Obj | undefined;
  let kernelOrigin: Origin | undefined;
  const present = new Set<string>();
  let components: Record<string, string> | undefined;
  let pkg: Merged['pkg'];
  for (const p of files) {
    const d = p.data;
    for (const k of Object.keys(d)) present.add(k);
    if (isObj(d.components)) components = { ...components, ...(d.components as Record<string, string>) };
    if (isObj(d.package)) {
      pkg ??= { values: {}, contents: [], changelog: [], first: { p, path: ['package'] } };
      for (const [k, v] of Object.entries(d.package)) {
        if (k === 'contents' && Array.isArray(v)) v.forEach((value, i) => pkg!.contents.push({ value, at: { p, path: ['package', k, i] } }));
        else if (k === 'changelog' && Array.isArray(v)) {
          // Newest first: a later file's entries (a new release) go before the earlier ones.
          pkg.changelog = [...v.map((value, i) => ({ value, at: { p, path: ['package', k, i] } })), ...pkg.changelog];
        } else if (k !== 'contents' && k !== 'changelog') pkg.values[k] = { value: v, at: { p, path: ['package'] } };
      }
    }
    if (isObj(d.kernel)) {
      kernel ??= {};
      for (const f of ['image', 'cmdline', 'binary'] as const) {
        const v = d.kernel[f];
        if (typeof v === 'string' && v !== '') kernel[f] = v;
      }
      for (const f of ['tar', 'ucode'] as const) if (typeof d.kernel[f] === 'string') kernel[f] = d.kernel[f];
      if (typeof d.kernel.image === 'string' && d.kernel.image !== '') kernelOrigin = { p, path: ['kernel'] };
      kernelOrigin ??= { p, path: ['kernel'] };
    }
    for (const k of Object.keys(items) as (keyof Merged['items'])[]) {
      const list = d[k];
      if (Array.isArray(list)) list.forEach((value, i) => items[k].push({ value, at: { p, path: [k, i] } }));
    }
  }
  const raw: Obj = {};
  if (kernel) raw.kernel = orderKeys(kernel, ['image', 'cmdline', 'binary', 'tar', 'ucode']);
  for (const k of Object.keys(items) as (keyof Merged['items'])[]) {
    if (present.has(k)) raw[k] = items[k].map((i) => i.value);
  }
  if (components) raw.components = components;
  if (pkg) {
    const rp: Obj = {};
    for (const [k, v] of Object.entries(pkg.values)) rp[k] = v.value;
    if (pkg.contents.length > 0) rp.contents = pkg.contents.map((c) => c.value);
    if (pkg.changelog.length > 0) rp.changelog = pkg.changelog.map((c) => c.value);
    raw.package = rp;
  }
  return { raw, kernelOrigin, items, components, pkg };
}

function orderKeys(o: Obj, order: string[]): Obj {
  const out: Obj = {};
  for (const k of order) if (k in o) out[k] = o[k];
  for (const k of Object.keys(o)) if (!(k in out)) out[k] = o[k];
  return out;
}

function isVolumeRef(source: string): boolean {
  return !source.startsWith('/');
}

/** LinuxKit (build/volume.go): the first of `ro`/`rw` in the options decides; neither means read-write. */
function readOnlyOptions(options: string[]): boolean {
  for (const o of options) {
    if (o === 'rw') return false;
    if (o === 'ro') return true;
  }
  return false;
}

function expandHome(p: string): string {
  return p.length > 2 && p.startsWith('~/') ? homedir() + p.slice(1) : p;
}

/** Why a spec cannot be built at all (it holds nothing), or undefined. */
export function nothingToBuild(spec: Spec): string | undefined {
  const parts = spec.init.length + spec.onboot.length + spec.onshutdown.length + spec.services.length + spec.files.length + spec.volumes.length;
  if (spec.kernel || spec.package || parts > 0) return undefined;
  return `${spec.sources.join(', ')}: nothing to build: the spec has no kernel, init, onboot, onshutdown, services, files, volumes or package`;
}

/** Merges and checks several parsed specs (later files extend earlier ones). */
export function loadSpecs(inputs: SpecInput[], opts: LoadOptions = {}): LoadResult {
  const problems: SpecProblem[] = [];
  const warnings: string[] = [];
  try {
    return loadChecked(inputs, opts, problems, warnings);
  } catch (e) {
    // A bug here must still come back as a value, never as a crash of `validate`.
    problems.push({ file: inputs[0]?.file ?? STDIN_NAME, line: 1, col: 1, path: '', message: `internal error while loading the spec: ${(e as Error).message}` });
    return { problems, warnings };
  }
}

function loadChecked(inputs: SpecInput[], opts: LoadOptions, problems: SpecProblem[], warnings: string[]): LoadResult {
  if (inputs.length === 0) {
    problems.push({ file: STDIN_NAME, line: 1, col: 1, path: '', message: 'no spec given' });
    return { problems, warnings };
  }
  const parsed: Parsed[] = [];
  for (const input of inputs) {
    const p = parseOne(input, problems);
    if (p) parsed.push(p);
    if (p && p.data.trust !== undefined) warnings.push(`${p.file}: trust is ignored (image signing is not supported)`);
  }
  if (problems.length > 0) return { problems, warnings };

  // NUL cannot stand in a name, a path, an argument or an environment variable: refused wherever it is.
  for (const p of parsed) {
    for (const path of nulStrings(p.data)) {
      problems.push(problem(p, path, `${displayPath(path)}: contains a NUL character`));
      if (problems.length >= 20) break;
    }
  }
  if (problems.length > 0) return { problems, warnings };

  const m = merge(parsed);
  const check = (at: Origin, message: string, extra: PathSeg[] = [], key?: string) => problems.push(problem(at.p, [...at.path, ...extra], message, key));

  // Container names: services run side by side, so their names must be unique
  // (LinuxKit's uniqueServices); every name is also a uid/gid a later entry may use.
  const idNames = new Set<string>();
  for (const s of SECTIONS) for (const it of m.items[s]) idNames.add(String((it.value as Obj).name));
  const serviceNames = new Map<string, Origin>();
  for (const it of m.items.services) {
    const name = String((it.value as Obj).name);
    const first = serviceNames.get(name);
    if (first) check(it.at, `duplicate service name "${name}" (first at ${first.p.file}:${positionOf(first.p, first.path).line})`, ['name']);
    else serviceNames.set(name, it.at);
  }
  for (const s of SECTIONS) {
    for (const it of m.items[s]) {
      const v = it.value as Obj;
      if (v.name === '') check(it.at, `${displayPath(it.at.path)}: name must not be empty`, ['name']);
      if (v.image === '') check(it.at, `${displayPath(it.at.path)} (${String(v.name)}): image must not be empty`, ['image']);
    }
  }

  // Volumes (LinuxKit's uniqueVolumes).
  const volumes = new Map<string, { readonly: boolean }>();
  for (const it of m.items.volumes) {
    const v = it.value as Obj;
    const name = typeof v.name === 'string' ? v.name : '';
    if (name === '') check(it.at, `${displayPath(it.at.path)}: volume name is required`);
    else if (!VOLUME_NAME.test(name)) check(it.at, `invalid volume name "${name}": use only a-z, 0-9, _ and -`, ['name']);
    else if (volumes.has(name)) check(it.at, `duplicate volume name "${name}"`, ['name']);
    else volumes.set(name, { readonly: v.readonly === true });
  }

  const idCheck = (at: Origin, field: PathSeg[], value: unknown, what: string) => {
    if (typeof value !== 'string' || value === '' || value === 'root' || idNames.has(value)) return;
    const hint = /^\d+$/.test(value) ? ' (write a numeric id without quotes)' : '';
    check(at, `${what} "${value}" is neither a number nor the name of a container${hint}`, field);
  };

  for (const s of SECTIONS) {
    for (const it of m.items[s]) {
      const v = it.value as Obj;
      const who = `${displayPath(it.at.path)} (${String(v.name)})`;
      idCheck(it.at, ['uid'], v.uid, `${who}: uid`);
      idCheck(it.at, ['gid'], v.gid, `${who}: gid`);
      if (Array.isArray(v.additionalGids)) v.additionalGids.forEach((g, i) => idCheck(it.at, ['additionalGids', i], g, `${who}: additionalGids`));
      // Binds whose source is not a path name a volume (LinuxKit build/volume.go).
      for (const field of ['binds', 'binds.add'] as const) {
        const list = v[field];
        if (!Array.isArray(list)) continue;
        list.forEach((b: string, i) => {
          const parts = b.split(':');
          if (parts.length < 2 || !isVolumeRef(parts[0])) return; // bind syntax is checked with the image config
          const vol = volumes.get(parts[0]);
          if (!vol) check(it.at, `${who}: ${field} "${b}" names volume "${parts[0]}", which is not declared under volumes`, [field, i]);
          else if (vol.readonly && parts[2] !== 'ro') check(it.at, `${who}: volume "${parts[0]}" is read-only; bind it with ":ro" ("${parts[0]}:${parts[1]}:ro")`, [field, i]);
        });
      }
      if (Array.isArray(v.mounts)) {
        v.mounts.forEach((mt: Obj, i) => {
          if (mt.type !== 'bind' || typeof mt.source !== 'string' || !isVolumeRef(mt.source)) return;
          const vol = volumes.get(mt.source);
          const opts = Array.isArray(mt.options) ? (mt.options as string[]) : [];
          if (!vol) check(it.at, `${who}: mount source "${mt.source}" names a volume that is not declared under volumes`, ['mounts', i, 'source']);
          else if (vol.readonly && !readOnlyOptions(opts)) check(it.at, `${who}: volume "${mt.source}" is read-only; add "ro" to the mount's options`, ['mounts', i]);
        });
      }
    }
  }

  // files: what LinuxKit's filesystem() rejects at build time, found before pulling.
  for (const it of m.items.files) {
    const f = it.value as Obj;
    const path = typeof f.path === 'string' ? f.path : '';
    const label = `files entry "${path}"`;
    if (path === '') {
      check(it.at, `${displayPath(it.at.path)}: path is required`);
      continue;
    }
    const parts = path.split('/').filter((x) => x !== '' && x !== '.');
    if (parts.includes('..')) {
      check(it.at, `${label}: path contains ".." (files are written inside the root)`, ['path']);
      continue;
    }
    if (parts.length === 0) {
      check(it.at, `${label}: path names the root itself`, ['path']);
      continue;
    }
    const hasContents = typeof f.contents === 'string';
    const hasSource = typeof f.source === 'string' && f.source !== '';
    const hasMetadata = typeof f.metadata === 'string' && f.metadata !== '';
    const isDir = f.directory === true;
    const isLink = typeof f.symlink === 'string' && f.symlink !== '';
    if (f.mode !== undefined && !/^[0-7]{1,7}$/.test(String(f.mode))) check(it.at, `${label}: mode "${String(f.mode)}" is not an octal number`, ['mode']);
    if (isDir && hasContents) check(it.at, `${label}: a directory cannot have contents`, ['contents']);
    if (isDir || isLink || hasContents) {
      const kind = hasContents ? 'contents' : isDir ? 'directory: true' : 'symlink';
      if (hasSource) check(it.at, `${label}: has both ${kind} and source; give only one`, ['source']);
      if (hasMetadata) check(it.at, `${label}: has both ${kind} and metadata; give only one`, ['metadata']);
    } else if (hasSource && hasMetadata) {
      check(it.at, `${label}: has both source and metadata; give only one`, ['metadata']);
    } else if (!hasSource && !hasMetadata) {
      check(it.at, `${label}: no contents: give contents, source, metadata, directory or symlink`);
    } else if (hasSource && f.optional !== true && opts.checkSources !== false) {
      const src = expandHome(f.source as string);
      const abs = isAbsolute(src) ? src : resolve(it.at.p.baseDir, src);
      let kind: string | undefined;
      try {
        // stat and access never block, not even on a FIFO.
        const st = statSync(abs);
        if (!st.isFile()) kind = kindOf(st);
        accessSync(abs, constants.R_OK);
      } catch {
        const msg = `${label}: source ${f.source as string} cannot be read (${abs})`;
        if (opts.checkSources === 'warn') warnings.push(`${it.at.p.file}: ${msg}`);
        else check(it.at, msg, ['source']);
      }
      if (kind) check(it.at, `${label}: source ${f.source as string} is ${kind}, not a regular file`, ['source']);
    }
    idCheck(it.at, ['uid'], f.uid, `${label}: uid`);
    idCheck(it.at, ['gid'], f.gid, `${label}: gid`);
  }

  const pkgSpec = m.pkg ? packageSpec(m.pkg, check) : undefined;

  if (problems.length > 0) return { problems, warnings };

  const toImage = (it: { value: unknown; at: Origin }): ImageSpec => {
    const v = it.value as ImageSpec;
    const keyPos: Record<string, SourcePosition> = {};
    for (const k of ['hostname', 'uts', 'net', 'ipc', 'sysctl'] as const) {
      if (v[k] === undefined) continue;
      const lc = positionOf(it.at.p, it.at.path, k);
      keyPos[k] = { file: it.at.p.file, ...lc };
    }
    for (const k of Object.keys(v.sysctl ?? {})) {
      const lc = positionOf(it.at.p, [...it.at.path, 'sysctl'], k);
      keyPos[`sysctl/${k}`] = { file: it.at.p.file, ...lc };
    }
    return { ...v, pos: pos(it.at.p, it.at.path), keyPos };
  };
  let kernel: KernelSpec | undefined;
  const k = m.raw.kernel as Obj | undefined;
  if (k && typeof k.image === 'string' && k.image !== '') {
    kernel = { ...(k as unknown as KernelSpec), pos: m.kernelOrigin ? pos(m.kernelOrigin.p, m.kernelOrigin.path) : undefined };
  } else if (k) {
    warnings.push('kernel has no image: the kernel section is ignored');
  }
  const spec: Spec = {
    kernel,
    init: m.items.init.map((i) => String(i.value)),
    onboot: m.items.onboot.map(toImage),
    onshutdown: m.items.onshutdown.map(toImage),
    services: m.items.services.map(toImage),
    files: m.items.files.map((it) => ({ ...(it.value as Omit<FileSpec, 'baseDir'>), baseDir: it.at.p.baseDir, pos: pos(it.at.p, it.at.path) })),
    volumes: m.items.volumes.map((it) => ({ ...(it.value as VolumeSpec), pos: pos(it.at.p, it.at.path) })),
    components: m.components,
    package: pkgSpec,
    raw: m.raw,
    sources: inputs.map((i) => i.file),
  };
  return { spec, problems, warnings };
}

/** RFC 3339 → seconds; undefined for a time JavaScript cannot read. */
function rfc3339(s: string): number | undefined {
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/** The merged `package:` section, normalised; problems (a script or source that cannot be read) through `check`. */
function packageSpec(pkg: NonNullable<Merged['pkg']>, check: (at: Origin, message: string, extra?: PathSeg[], key?: string) => void): PackageSpec | undefined {
  const v = (k: string) => pkg.values[k]?.value;
  const missing = ['name', 'version', 'maintainer'].filter((k) => v(k) === undefined);
  if (missing.length > 0) check(pkg.first, `package: missing required key${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')}`);
  const keyPos: Record<string, SourcePosition> = {};
  for (const [k, { at }] of Object.entries(pkg.values)) keyPos[k] = { file: at.p.file, ...positionOf(at.p, at.path, k) };
  const str = (k: string) => {
    const x = v(k);
    return x === undefined ? undefined : String(x);
  };
  const relations: PackageSpec['relations'] = {};
  for (const k of RELATION_KEYS) if (Array.isArray(v(k))) relations[k] = v(k) as string[];
  const scripts: PackageSpec['scripts'] = {};
  const s = pkg.values.scripts;
  if (s && isObj(s.value)) {
    for (const [k, file] of Object.entries(s.value)) {
      const abs = isAbsolute(expandHome(String(file))) ? expandHome(String(file)) : resolve(s.at.p.baseDir, String(file));
      try {
        if (!statSync(abs).isFile()) throw new Error('not a file');
        accessSync(abs, constants.R_OK);
      } catch {
        check(s.at, `package.scripts.${k}: ${String(file)} cannot be read (${abs})`, ['scripts', k]);
      }
      scripts[k as keyof PackageSpec['scripts']] = abs;
    }
  }
  const contents = pkg.contents.map(({ value, at }) => {
    const c = value as Obj;
    const info = isObj(c.file_info) ? c.file_info : {};
    const type = (c.type as PackageSpec['contents'][number]['type'] | undefined) ?? 'file';
    const where = `package.contents[${String(at.path[2])}] (${String(c.dst)})`;
    const has = (k: string) => c[k] !== undefined;
    if (type === 'symlink' || type === 'dir' || type === 'ghost') {
      if (type === 'symlink' && !has('src')) check(at, `${where}: a symlink needs src (its target)`);
      if (has('image')) check(at, `${where}: type ${type} takes nothing from an image; drop image`, ['image']);
      if (has('content')) check(at, `${where}: type ${type} has no content`, ['content']);
      if (type !== 'symlink' && has('src')) check(at, `${where}: type ${type} has no src`, ['src']);
    } else if (type === 'tree') {
      if (!has('image') || !has('src')) check(at, `${where}: type tree takes a directory (src) from an image (image)`);
    } else {
      if (has('content') && (has('src') || has('image'))) check(at, `${where}: give content, or src (with or without image), not both`, ['content']);
      else if (!has('content') && !has('src')) check(at, `${where}: no contents: give src (with image for a file of an image) or content`);
      else if (has('image') && typeof c.src === 'string' && !c.src.startsWith('/')) check(at, `${where}: src must be an absolute path inside the image`, ['src']);
    }
    if (String(c.dst).split('/').includes('..')) check(at, `${where}: dst contains ".."`, ['dst']);
    return {
      dst: String(c.dst),
      src: typeof c.src === 'string' ? (has('image') || type === 'symlink' ? c.src : resolve(at.p.baseDir, expandHome(c.src))) : undefined,
      image: typeof c.image === 'string' ? c.image : undefined,
      content: typeof c.content === 'string' ? c.content : undefined,
      type,
      packager: c.packager === undefined ? undefined : ((Array.isArray(c.packager) ? c.packager : [c.packager]) as PackagerName[]),
      mode: typeof info.mode === 'string' ? parseInt(info.mode, 8) : undefined,
      owner: typeof info.owner === 'string' ? info.owner : undefined,
      group: typeof info.group === 'string' ? info.group : undefined,
      baseDir: at.p.baseDir,
      pos: pos(at.p, at.path),
    };
  });
  const changelog = pkg.changelog.map(({ value, at }) => {
    const c = value as Obj;
    const date = typeof c.date === 'string' ? rfc3339(c.date) : undefined;
    if (typeof c.date === 'string' && date === undefined) check(at, `package.changelog[${String(at.path[2])}]: date "${c.date}" is not a valid RFC 3339 time`, ['date']);
    return { version: String(c.version), date, author: typeof c.author === 'string' ? c.author : undefined, changes: (c.changes as string[]) ?? [] };
  });
  const containers = v('containers');
  return {
    name: String(v('name')),
    version: String(v('version')),
    epoch: typeof v('epoch') === 'number' ? (v('epoch') as number) : undefined,
    release: str('release'),
    summary: str('summary'),
    description: str('description'),
    maintainer: String(v('maintainer')),
    vendor: str('vendor'),
    homepage: str('homepage'),
    license: str('license'),
    section: str('section'),
    priority: str('priority'),
    relations,
    overrides: (isObj(v('overrides')) ? v('overrides') : {}) as PackageSpec['overrides'],
    contents,
    units: (v('units') as string[] | undefined) ?? [],
    groups: (v('groups') as string[] | undefined) ?? [],
    users: (v('users') as PackageSpec['users'] | undefined) ?? [],
    scripts,
    changelog,
    containersPrefix: isObj(containers) && typeof containers.prefix === 'string' ? containers.prefix : undefined,
    sysext: isObj(v('sysext')) ? (v('sysext') as PackageSpec['sysext']) : undefined,
    pos: pos(pkg.first.p, pkg.first.path),
    keyPos,
  };
}
