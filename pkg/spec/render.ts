/**
 * What LinuxKit writes for a `files:` entry with `metadata:` (build.go
 * metadata(): `yaml.v2` Marshal or `json.MarshalIndent(m, "", "    ")` of the
 * merged moby.Moby struct), and the merged spec for `--dry-run`.
 *
 * The Go structs decide which keys appear: struct field order, `omitempty`
 * (nil pointers, empty strings, false bools omitted; pointers to empty lists
 * kept), yaml.v2 writing nil lists as `[]` where JSON writes `null`, and the
 * OCI types (specs.Mount, specs.LinuxIDMapping) keyed by lower-cased field
 * names in YAML.
 */
import { stringify } from 'yaml';
import type { Spec } from './types.js';

type Obj = Record<string, unknown>;
type Mode = 'yaml' | 'json';

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A nil Go slice without omitempty: `[]` in yaml.v2, `null` in encoding/json. */
function nilList(mode: Mode): unknown {
  return mode === 'yaml' ? [] : null;
}

function idMapping(v: unknown, mode: Mode): Obj {
  const m = isObj(v) ? v : {};
  const n = (k: string) => (typeof m[k] === 'number' ? m[k] : 0);
  return mode === 'yaml'
    ? { containerid: n('containerID'), hostid: n('hostID'), size: n('size') }
    : { containerID: n('containerID'), hostID: n('hostID'), size: n('size') };
}

/** specs.Mount: yaml.v2 has no tags to honour (all keys, lower-cased); JSON omits empties. */
function mount(v: unknown, mode: Mode): Obj {
  const m = isObj(v) ? v : {};
  const str = (k: string) => (typeof m[k] === 'string' ? (m[k] as string) : '');
  const list = (k: string) => (Array.isArray(m[k]) ? (m[k] as unknown[]) : []);
  if (mode === 'yaml') {
    return {
      destination: str('destination'),
      type: str('type'),
      source: str('source'),
      options: list('options'),
      uidmappings: list('uidmappings').map((x) => idMapping(x, mode)),
      gidmappings: list('gidmappings').map((x) => idMapping(x, mode)),
    };
  }
  const out: Obj = { destination: str('destination') };
  if (str('type')) out.type = str('type');
  if (str('source')) out.source = str('source');
  if (list('options').length) out.options = list('options');
  if (list('uidmappings').length) out.uidMappings = list('uidmappings').map((x) => idMapping(x, mode));
  if (list('gidmappings').length) out.gidMappings = list('gidmappings').map((x) => idMapping(x, mode));
  return out;
}

function device(v: unknown): Obj {
  const d = isObj(v) ? v : {};
  const out: Obj = { path: d.path ?? '', type: d.type ?? '', major: d.major ?? 0, minor: d.minor ?? 0 };
  if (typeof d.mode === 'string' && d.mode !== '') out.mode = d.mode;
  return out;
}

function runtime(v: Obj, mode: Mode): Obj {
  const out: Obj = {};
  if (v.cgroups !== undefined) out.cgroups = v.cgroups;
  if (Array.isArray(v.mounts)) out.mounts = v.mounts.map((m) => mount(m, mode));
  if (v.mkdir !== undefined) out.mkdir = v.mkdir;
  if (Array.isArray(v.interfaces)) {
    out.interfaces = v.interfaces.map((i: Obj) => {
      const o: Obj = {};
      for (const k of ['name', 'add', 'peer']) if (typeof i[k] === 'string' && i[k] !== '') o[k] = i[k];
      o.createInRoot = i.createInRoot === true;
      return o;
    });
  }
  const ns = isObj(v.bindNS) ? v.bindNS : {};
  const bind: Obj = {};
  for (const k of ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts']) if (typeof ns[k] === 'string') bind[k] = ns[k];
  // A struct with omitempty: yaml.v2 drops it when all fields are nil, encoding/json never does.
  if (mode === 'json' || Object.keys(bind).length > 0) out.bindNS = bind;
  if (typeof v.namespace === 'string') out.namespace = v.namespace;
  return out;
}

/** ImageConfig fields in struct order; pointer fields appear when written, plain strings when non-empty. */
const IMAGE_FIELDS: [string, 'ptr' | 'str' | 'mounts' | 'devices' | 'mappings' | 'runtime'][] = [
  ['capabilities', 'ptr'],
  ['capabilities.add', 'ptr'],
  ['ambient', 'ptr'],
  ['mounts', 'mounts'],
  ['binds', 'ptr'],
  ['binds.add', 'ptr'],
  ['devices', 'devices'],
  ['tmpfs', 'ptr'],
  ['command', 'ptr'],
  ['env', 'ptr'],
  ['cwd', 'str'],
  ['net', 'str'],
  ['pid', 'str'],
  ['ipc', 'str'],
  ['uts', 'str'],
  ['userns', 'str'],
  ['hostname', 'str'],
  ['readonly', 'ptr'],
  ['maskedPaths', 'ptr'],
  ['readonlyPaths', 'ptr'],
  ['uid', 'ptr'],
  ['gid', 'ptr'],
  ['additionalGids', 'ptr'],
  ['noNewPrivileges', 'ptr'],
  ['oomScoreAdj', 'ptr'],
  ['rootfsPropagation', 'ptr'],
  ['cgroupsPath', 'ptr'],
  ['resources', 'ptr'],
  ['sysctl', 'ptr'],
  ['rlimits', 'ptr'],
  ['uidMappings', 'mappings'],
  ['gidMappings', 'mappings'],
  ['annotations', 'ptr'],
  ['runtime', 'runtime'],
];

function image(v: Obj, mode: Mode): Obj {
  const out: Obj = { name: v.name ?? '', image: v.image ?? '' };
  for (const [k, kind] of IMAGE_FIELDS) {
    const x = v[k];
    if (x === undefined || x === null) continue;
    switch (kind) {
      case 'str':
        if (x !== '') out[k] = x;
        break;
      case 'mounts':
        out[k] = (x as unknown[]).map((m) => mount(m, mode));
        break;
      case 'devices':
        out[k] = (x as unknown[]).map(device);
        break;
      case 'mappings':
        out[k] = (x as unknown[]).map((m) => idMapping(m, mode));
        break;
      case 'runtime':
        out[k] = runtime(x as Obj, mode);
        break;
      default:
        out[k] = x;
    }
  }
  return out;
}

function file(v: Obj): Obj {
  const out: Obj = { path: v.path ?? '', directory: v.directory === true };
  if (typeof v.symlink === 'string' && v.symlink !== '') out.symlink = v.symlink;
  if (typeof v.contents === 'string') out.contents = v.contents;
  if (typeof v.source === 'string' && v.source !== '') out.source = v.source;
  if (typeof v.metadata === 'string' && v.metadata !== '') out.metadata = v.metadata;
  out.optional = v.optional === true;
  if (typeof v.mode === 'string' && v.mode !== '') out.mode = v.mode;
  if (v.uid !== undefined && v.uid !== null) out.uid = v.uid;
  if (v.gid !== undefined && v.gid !== null) out.gid = v.gid;
  return out;
}

function volume(v: Obj): Obj {
  const out: Obj = { name: v.name ?? '' };
  if (typeof v.image === 'string' && v.image !== '') out.image = v.image;
  if (v.readonly === true) out.readonly = true;
  if (typeof v.format === 'string' && v.format !== '') out.format = v.format;
  if (Array.isArray(v.platforms) && v.platforms.length > 0) out.platforms = v.platforms;
  return out;
}

/** The merged config as LinuxKit's moby.Moby marshals it. */
export function metadataValue(spec: Spec, mode: Mode): Obj {
  const raw = spec.raw;
  const k = isObj(raw.kernel) ? raw.kernel : {};
  const kernel: Obj = { image: k.image ?? '' };
  if (typeof k.cmdline === 'string' && k.cmdline !== '') kernel.cmdline = k.cmdline;
  if (typeof k.binary === 'string' && k.binary !== '') kernel.binary = k.binary;
  if (typeof k.tar === 'string') kernel.tar = k.tar;
  if (typeof k.ucode === 'string') kernel.ucode = k.ucode;
  const list = (key: string, f: (v: Obj) => Obj): unknown => {
    const v = raw[key];
    // yaml.v3 decodes an empty list as an empty (non-nil) slice: `[]` in JSON too.
    return Array.isArray(v) ? v.map((x) => f(x as Obj)) : nilList(mode);
  };
  const out: Obj = {
    kernel,
    init: Array.isArray(raw.init) ? raw.init : nilList(mode),
    onboot: list('onboot', (v) => image(v, mode)),
    onshutdown: list('onshutdown', (v) => image(v, mode)),
    services: list('services', (v) => image(v, mode)),
    files: list('files', file),
  };
  // LinuxKit v1.2 had no volumes key (the recorded corpus); v1.5 writes it always.
  // Written only when the spec has volumes, so both agree where it matters.
  if (Array.isArray(raw.volumes) && raw.volumes.length > 0) out.volumes = raw.volumes.map((v) => volume(v as Obj));
  return out;
}

export function renderMetadata(spec: Spec, format: 'yaml' | 'json'): string {
  const value = metadataValue(spec, format);
  if (format === 'json') return JSON.stringify(value, null, 4);
  // yaml.v2 style: sequences flush with their key, two-space maps.
  return stringify(value, { indent: 2, indentSeq: false, lineWidth: 0 });
}

/** The merged spec as YAML (for --dry-run): what the user wrote, files concatenated as LinuxKit merges them. */
export function renderSpecYaml(spec: Spec): string {
  return stringify(spec.raw, { indent: 2, indentSeq: true, lineWidth: 0 });
}
