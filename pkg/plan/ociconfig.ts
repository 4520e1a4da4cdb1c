/**
 * A container entry (YAML) + its image's config + the image's
 * `org.mobyproject.config` label → the bundle's config.json (OCI runtime
 * spec) and runtime.json, as LinuxKit writes them: moby/config.go
 * ConfigToOCI, build/volume.go (volume binds) and build/image.go
 * ImageBundle (the rootfs mounts prepended to runtime.json).
 *
 * Precedence everywhere: image config < label < YAML. A key the YAML sets
 * to an empty list or map replaces (clears) the label's value; an empty
 * string does not (cwd, hostname, net, … keep the label's).
 *
 * The objects built here hold keys in Go's struct order and leave out what
 * Go's `omitempty` leaves out, so `encodeJson` writes what LinuxKit writes.
 */
import type { Spec, ImageSpec, ImageConfig, OciMount, Device, Interface, Runtime } from '../spec/types.js';
import type { ImageConfigFile } from '../oci/types.js';
import { DockyardError } from '../errors.js';

type Obj = Record<string, unknown>;

/** LinuxKit's idMap: every container name → 100, 101, … in order onboot, onshutdown, services. */
export function containerIds(spec: Spec): Map<string, number> {
  const ids = new Map<string, number>();
  let id = 100;
  for (const list of [spec.onboot, spec.onshutdown, spec.services]) {
    for (const entry of list) ids.set(entry.name, id++);
  }
  return ids;
}

/** The capabilities `all` stands for, in kernel number order (moby/sys/capability ListKnown). */
export const ALL_CAPABILITIES: readonly string[] = [
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'linux_immutable', 'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner',
  'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct', 'sys_admin', 'sys_boot', 'sys_nice',
  'sys_resource', 'sys_time', 'sys_tty_config', 'mknod', 'lease', 'audit_write', 'audit_control', 'setfcap',
  'mac_override', 'mac_admin', 'syslog', 'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf',
  'checkpoint_restore',
].map((c) => `CAP_${c.toUpperCase()}`);
const KNOWN_CAPS = new Set(ALL_CAPABILITIES);

const RLIMITS = new Set(
  ['CPU', 'FSIZE', 'DATA', 'STACK', 'CORE', 'RSS', 'NPROC', 'NOFILE', 'MEMLOCK', 'AS', 'LOCKS', 'SIGPENDING', 'MSGQUEUE', 'NICE', 'RTPRIO', 'RTTIME'].map(
    (n) => `RLIMIT_${n}`,
  ),
);

const VOLUMES_DIR = '/containers/volumes';
const UINT64_MAX = 18446744073709551615n;

/** A problem in one container's configuration; the caller prefixes the container name. */
class ConfigProblem extends Error {}

function fail(message: string): never {
  throw new ConfigProblem(message);
}

// ---------------------------------------------------------------------------
// Go's decoding of the embedded OCI types. LinuxKit decodes the YAML (and the
// label) with yaml.v3 straight into runtime-spec structs that have no yaml
// tags, so a field is read from its lower-cased Go name (`kernelTCP` is never
// read, `blockio` is), and written back with its JSON tag and omitempty.

type GoType =
  | { k: 'string' | 'int' | 'bool' }
  | { k: 'ptr'; of: GoType }
  | { k: 'slice'; of: GoType }
  | { k: 'map'; of: GoType }
  | { k: 'struct'; fields: GoField[] };

interface GoField {
  /** Key yaml.v3 reads (lower-cased Go field name unless tagged). */
  y: string;
  /** Key encoding/json writes. */
  j: string;
  t: GoType;
  omitempty: boolean;
}

const str: GoType = { k: 'string' };
const int: GoType = { k: 'int' };
const bool: GoType = { k: 'bool' };
const ptr = (of: GoType): GoType => ({ k: 'ptr', of });
const slice = (of: GoType): GoType => ({ k: 'slice', of });
const map = (of: GoType): GoType => ({ k: 'map', of });
/** Fields given as [GoName or yaml key, json key, type, omitempty]; an untagged Go name is read lower-cased. */
const struct = (fields: [string, string, GoType, boolean][]): GoType => ({
  k: 'struct',
  fields: fields.map(([y, j, t, omitempty]) => ({ y: y.toLowerCase(), j, t, omitempty })),
});

const IdMappingT = struct([
  ['ContainerID', 'containerID', int, false],
  ['HostID', 'hostID', int, false],
  ['Size', 'size', int, false],
]);
const MountT = struct([
  ['Destination', 'destination', str, false],
  ['Type', 'type', str, true],
  ['Source', 'source', str, true],
  ['Options', 'options', slice(str), true],
  ['UIDMappings', 'uidMappings', slice(IdMappingT), true],
  ['GIDMappings', 'gidMappings', slice(IdMappingT), true],
]);
const DeviceCgroupT = struct([
  ['Allow', 'allow', bool, false],
  ['Type', 'type', str, true],
  ['Major', 'major', ptr(int), true],
  ['Minor', 'minor', ptr(int), true],
  ['Access', 'access', str, true],
]);
// LinuxWeightDevice/LinuxThrottleDevice embed LinuxBlockIODevice; yaml.v3 does not inline it.
const BlockIODeviceT = struct([
  ['Major', 'major', int, false],
  ['Minor', 'minor', int, false],
]);
const WeightDeviceT = struct([
  ['LinuxBlockIODevice', '', BlockIODeviceT, false],
  ['Weight', 'weight', ptr(int), true],
  ['LeafWeight', 'leafWeight', ptr(int), true],
]);
const ThrottleDeviceT = struct([
  ['LinuxBlockIODevice', '', BlockIODeviceT, false],
  ['Rate', 'rate', int, false],
]);
const ResourcesT = struct([
  ['Devices', 'devices', slice(DeviceCgroupT), true],
  [
    'Memory',
    'memory',
    ptr(
      struct([
        ['Limit', 'limit', ptr(int), true],
        ['Reservation', 'reservation', ptr(int), true],
        ['Swap', 'swap', ptr(int), true],
        ['Kernel', 'kernel', ptr(int), true],
        ['KernelTCP', 'kernelTCP', ptr(int), true],
        ['Swappiness', 'swappiness', ptr(int), true],
        ['DisableOOMKiller', 'disableOOMKiller', ptr(bool), true],
        ['UseHierarchy', 'useHierarchy', ptr(bool), true],
        ['CheckBeforeUpdate', 'checkBeforeUpdate', ptr(bool), true],
      ]),
    ),
    true,
  ],
  [
    'CPU',
    'cpu',
    ptr(
      struct([
        ['Shares', 'shares', ptr(int), true],
        ['Quota', 'quota', ptr(int), true],
        ['Burst', 'burst', ptr(int), true],
        ['Period', 'period', ptr(int), true],
        ['RealtimeRuntime', 'realtimeRuntime', ptr(int), true],
        ['RealtimePeriod', 'realtimePeriod', ptr(int), true],
        ['Cpus', 'cpus', str, true],
        ['Mems', 'mems', str, true],
        ['Idle', 'idle', ptr(int), true],
      ]),
    ),
    true,
  ],
  ['Pids', 'pids', ptr(struct([['Limit', 'limit', int, false]])), true],
  [
    'BlockIO',
    'blockIO',
    ptr(
      struct([
        ['Weight', 'weight', ptr(int), true],
        ['LeafWeight', 'leafWeight', ptr(int), true],
        ['WeightDevice', 'weightDevice', slice(WeightDeviceT), true],
        ['ThrottleReadBpsDevice', 'throttleReadBpsDevice', slice(ThrottleDeviceT), true],
        ['ThrottleWriteBpsDevice', 'throttleWriteBpsDevice', slice(ThrottleDeviceT), true],
        ['ThrottleReadIOPSDevice', 'throttleReadIOPSDevice', slice(ThrottleDeviceT), true],
        ['ThrottleWriteIOPSDevice', 'throttleWriteIOPSDevice', slice(ThrottleDeviceT), true],
      ]),
    ),
    true,
  ],
  [
    'HugepageLimits',
    'hugepageLimits',
    slice(
      struct([
        ['Pagesize', 'pageSize', str, false],
        ['Limit', 'limit', int, false],
      ]),
    ),
    true,
  ],
  [
    'Network',
    'network',
    ptr(
      struct([
        ['ClassID', 'classID', ptr(int), true],
        [
          'Priorities',
          'priorities',
          slice(
            struct([
              ['Name', 'name', str, false],
              ['Priority', 'priority', int, false],
            ]),
          ),
          true,
        ],
      ]),
    ),
    true,
  ],
  [
    'Rdma',
    'rdma',
    map(
      struct([
        ['HcaHandles', 'hcaHandles', ptr(int), true],
        ['HcaObjects', 'hcaObjects', ptr(int), true],
      ]),
    ),
    true,
  ],
  ['Unified', 'unified', map(str), true],
]);

/** Decoded Go value: `undefined` is Go's nil (or a zero scalar when the type is not nilable). */
function decode(v: unknown, t: GoType): unknown {
  const absent = v === undefined || v === null;
  switch (t.k) {
    case 'string':
      return absent ? '' : String(v);
    case 'int':
      return absent ? 0 : (v as number);
    case 'bool':
      return absent ? false : v === true;
    case 'ptr':
      return absent ? undefined : decode(v, t.of);
    case 'slice':
      return absent || !Array.isArray(v) ? undefined : v.map((e) => decode(e, t.of));
    case 'map': {
      if (absent || typeof v !== 'object' || Array.isArray(v)) return undefined;
      const out: Obj = {};
      for (const [k, e] of Object.entries(v as Obj)) out[k] = decode(e, t.of);
      return out;
    }
    case 'struct': {
      const src = (absent || typeof v !== 'object' ? {} : v) as Obj;
      const out: Obj = {};
      for (const f of t.fields) out[f.y] = decode(src[f.y], f.t);
      return out;
    }
  }
}

function isEmpty(v: unknown, t: GoType): boolean {
  switch (t.k) {
    case 'string':
      return v === '';
    case 'int':
      return v === 0;
    case 'bool':
      return v === false;
    case 'ptr':
      return v === undefined;
    case 'slice':
      return v === undefined || (v as unknown[]).length === 0;
    case 'map':
      return v === undefined || Object.keys(v as Obj).length === 0;
    case 'struct':
      return false;
  }
}

/** A decoded Go value as encoding/json writes it (map keys sorted as Go sorts them). */
function encode(v: unknown, t: GoType): unknown {
  switch (t.k) {
    case 'string':
    case 'int':
    case 'bool':
      return v;
    case 'ptr':
      return v === undefined ? null : encode(v, t.of);
    case 'slice':
      return v === undefined ? null : (v as unknown[]).map((e) => encode(e, t.of));
    case 'map': {
      if (v === undefined) return null;
      const out: Obj = {};
      for (const k of Object.keys(v as Obj).sort(byteOrder)) out[k] = encode((v as Obj)[k], t.of);
      return out;
    }
    case 'struct': {
      const out: Obj = {};
      for (const f of t.fields) {
        const fv = (v as Obj)[f.y];
        if (f.omitempty && isEmpty(fv, f.t)) continue;
        const ev = encode(fv, f.t);
        // An embedded struct's fields are promoted into the outer object.
        if (f.j === '' && f.t.k === 'struct') Object.assign(out, ev);
        else out[f.j] = ev;
      }
      return out;
    }
  }
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

// ---------------------------------------------------------------------------
// LinuxKit's ordered overrides (config.go assign*).

/** First defined of yaml, label (LinuxKit's pointer fields). */
function pick<T>(label: T | undefined, yaml: T | undefined): T | undefined {
  return yaml !== undefined && yaml !== null ? yaml : label !== undefined && label !== null ? label : undefined;
}

/** First non-empty of yaml, label, …, else the default (assignStringEmpty*). */
function pickNonEmpty(...vals: (string | undefined)[]): string {
  for (let i = vals.length - 1; i >= 0; i--) {
    const v = vals[i];
    if (v !== undefined && v !== null && v !== '') return v;
  }
  return '';
}

/** mergeStrings: label list + yaml `.add` list, appended (LinuxKit does not drop duplicates). */
function mergeAdd(label: string[] | undefined, add: string[] | undefined): string[] {
  if (add === undefined || add === null) return label ?? [];
  if (label === undefined || label === null) return add;
  return [...label, ...add];
}

// ---------------------------------------------------------------------------
// The pieces of ConfigToOCI, each usable without the image (checkImageEntry).

interface GoMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

function parseTmpfs(t: string): GoMount {
  const parts = t.split(':');
  if (parts.length > 2) fail(`tmpfs "${t}": too many ':' (want DEST[:OPTIONS])`);
  const dest = parts[0];
  return { destination: dest, type: 'tmpfs', source: 'tmpfs', options: parts.length === 2 ? parts[1].split(',') : undefined };
}

function parseBind(b: string): GoMount {
  const parts = b.split(':');
  if (parts.length < 2) fail(`bind "${b}": missing ':' (want SOURCE:DEST[:OPTIONS])`);
  if (parts.length > 3) fail(`bind "${b}": too many ':' (want SOURCE:DEST[:OPTIONS])`);
  const options = parts.length === 3 ? [...parts[2].split(','), 'rbind'] : ['rw', 'rbind', 'rshared'];
  return { destination: parts[1], type: 'bind', source: parts[0], options };
}

function defaultMountpoint(type: string): string {
  switch (type) {
    case 'proc':
      return '/proc';
    case 'devpts':
      return '/dev/pts';
    case 'sysfs':
      return '/sys';
    case 'cgroup':
      return '/sys/fs/cgroup';
    case 'mqueue':
      return '/dev/mqueue';
    default:
      return '';
  }
}

function parseMount(m: OciMount): GoMount {
  const d = decode(m, MountT) as { destination: string; type: string; source: string; options?: string[] };
  let type = d.type;
  let source = d.source;
  let dest = d.destination;
  if (type === '' && ['mqueue', 'devpts', 'proc', 'sysfs', 'cgroup'].includes(source)) type = source;
  if (type === '' && dest === '/dev') type = 'tmpfs';
  if (type === '') fail(`mount ${dest === '' ? '(no destination)' : `on ${dest}`} is missing type`);
  if (source === '') source = type;
  if (dest === '') dest = defaultMountpoint(type);
  if (dest === '') fail(`mount of type ${type} is missing destination`);
  return { destination: dest, type, source, options: d.options };
}

/** Resolves a capability list: a lone `none`/`all` (any case) is no/every capability. */
function capabilityList(caps: string[], key: string): string[] {
  let out = caps;
  if (caps.length === 1) {
    const c = caps[0].toLowerCase();
    if (c === 'none') out = [];
    else if (c === 'all') out = [...ALL_CAPABILITIES];
  }
  for (const c of out) {
    if (!KNOWN_CAPS.has(c)) {
      const hint = KNOWN_CAPS.has(`CAP_${c.toUpperCase()}`) ? ` (did you mean CAP_${c.toUpperCase()}?)` : '';
      fail(`${key}: unknown capability "${c}"${hint}`);
    }
  }
  return out;
}

type Uint64 = number | bigint;

function parseUint64(s: string, what: string): Uint64 {
  if (s.toLowerCase() === 'unlimited') return UINT64_MAX;
  if (!/^[0-9]+$/.test(s)) fail(`${what}: "${s}" is not a number or "unlimited"`);
  const n = BigInt(s);
  if (n > UINT64_MAX) fail(`${what}: ${s} is out of range`);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

interface Rlimit {
  type: string;
  hard: Uint64;
  soft: Uint64;
}

function parseRlimit(s: string): Rlimit {
  const rs = splitN(s, ',', 3);
  if (rs.length !== 3) fail(`rlimit "${s}": want NAME,SOFT,HARD`);
  let limit = rs[0].trim().toUpperCase();
  if (!limit.startsWith('RLIMIT_')) limit = `RLIMIT_${limit}`;
  const soft = parseUint64(rs[1].trim(), `rlimit "${s}": soft limit`);
  const hard = parseUint64(rs[2].trim(), `rlimit "${s}": hard limit`);
  if (!RLIMITS.has(limit)) fail(`rlimit "${s}": unknown limit ${limit} (known: ${[...RLIMITS].map((r) => r.slice(7).toLowerCase()).join(', ')})`);
  return { type: limit, hard, soft };
}

/** Go's strings.SplitN. */
function splitN(s: string, sep: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(sep);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

/** strconv.ParseInt(mode, 8, 32), then os.FileMode (uint32). */
function parseDeviceMode(dev: Device): number {
  const mode = dev.mode ?? '';
  const m = /^([+-]?)([0-7]+)$/.exec(mode);
  const what = `device ${dev.path}: mode "${mode}"`;
  if (!m) fail(`${what} is not an octal number`);
  const n = parseInt(m[2], 8) * (m[1] === '-' ? -1 : 1);
  if (n > 0x7fffffff || n < -0x80000000) fail(`${what} is out of range`);
  return n >>> 0;
}

function idNumeric(v: unknown, ids: Map<string, number> | undefined, key: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v)) return v >>> 0;
  if (typeof v === 'string') {
    if (v === '' || v === 'root') return 0;
    if (ids === undefined) return 0; // unknown without the spec: checked elsewhere
    const id = ids.get(v);
    if (id === undefined) {
      const hint = /^\d+$/.test(v) ? ' (write a numeric id without quotes)' : '';
      fail(`${key} "${v}" is neither a number nor the name of a container${hint}`);
    }
    return id;
  }
  return fail(`${key}: bad type for a uid or gid: ${JSON.stringify(v)}`);
}

/** build/volume.go: YAML binds (not the label's) whose source is not a path name a volume → its merged dir. */
function volumeBinds(list: string[] | undefined, key: string, volumes: Map<string, { readonly: boolean }>): string[] | undefined {
  if (list === undefined || list === null) return undefined;
  return list.map((bind) => {
    const parts = bind.split(':');
    if (parts[0].startsWith('/')) return bind;
    const vol = volumes.get(parts[0]);
    if (!vol) fail(`${key} "${bind}": volume "${parts[0]}" is not declared under volumes`);
    if (vol.readonly && (parts.length < 3 || parts[2] !== 'ro')) {
      fail(`${key} "${bind}": volume "${parts[0]}" is read-only; bind it with ":ro" ("${parts[0]}:${parts[1] ?? '/dest'}:ro")`);
    }
    parts[0] = `${VOLUMES_DIR}/${parts[0]}/merged`;
    return parts.join(':');
  });
}

/** build/volume.go for `mounts`: a bind of a volume must name a declared volume (the source is kept as written). */
function checkVolumeMounts(mounts: OciMount[] | undefined, volumes: Map<string, { readonly: boolean }>): void {
  for (const m of mounts ?? []) {
    if (m.type !== 'bind') continue;
    const source = m.source ?? '';
    if (source.startsWith('/')) continue;
    const vol = volumes.get(source);
    if (!vol) fail(`mount on ${m.destination ?? '?'}: source "${source}" is not a path and not a volume declared under volumes`);
    if (vol.readonly) {
      let ro = false;
      for (const o of m.options ?? []) {
        if (o === 'rw') break;
        if (o === 'ro') {
          ro = true;
          break;
        }
      }
      if (!ro) fail(`mount on ${m.destination ?? '?'}: volume "${source}" is read-only; add "ro" to the mount's options`);
    }
  }
}

// ---------------------------------------------------------------------------

export interface ConvertInput {
  image: ImageSpec;
  imageConfig: ImageConfigFile;
  label?: ImageConfig;
  ids: Map<string, number>;
  /** `dir`: the bundle, relative to the output root; `sharedWith`: root of an earlier unpacking of the same image. */
  placement: { dir: string; sharedWith?: string };
  volumes: Map<string, { readonly: boolean }>;
}

export interface Converted {
  config: object;
  runtime: object;
  readonly: boolean;
  /** What runc will refuse at boot in the final (label + YAML) configuration. */
  refusals: Refusal[];
}

/** A setting runc refuses when it starts the container; `key` is its path in the entry (`hostname`, `sysctl`/NAME). */
export interface Refusal {
  key: string[];
  message: string;
}

/** The namespace settings and values runc checks against each other. */
export interface NamespaceView {
  hostname?: string;
  uts?: string;
  net?: string;
  ipc?: string;
  sysctl?: Record<string, string>;
}

/** `file:line:col: onboot[0] (name): message`, at the key that asks for it (else at the entry). */
export function describeRefusal(entry: ImageSpec, where: string, r: Refusal): string {
  const p = entry.keyPos?.[r.key.join('/')] ?? entry.keyPos?.[r.key[0]] ?? entry.pos;
  return `${p ? `${p.file}:${p.line}:${p.col}: ` : ''}${where} (${entry.name}): ${r.message}`;
}

/** sysctls of the IPC namespace (runc libcontainer/configs/validate: sysctl). */
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/**
 * Settings LinuxKit writes without complaint and runc refuses at boot
 * (libcontainer/configs/validate): a hostname without a UTS namespace of its
 * own, sysctls of a namespace the container shares with the host, sysctls
 * that no namespace holds. A namespace is shared for `host` and `root`, and,
 * with `defaults`, when unset (LinuxKit's default for net, ipc and uts is
 * the root namespace); without `defaults` an unset one is unknown (an
 * image's label may set it) and nothing is said about it.
 */
export function runtimeRefusals(v: NamespaceView, defaults: boolean): Refusal[] {
  const shared = (ns: string | undefined): boolean => (ns === undefined || ns === '' ? defaults : ns === 'host' || ns === 'root');
  const out: Refusal[] = [];
  if (v.hostname && shared(v.uts)) {
    out.push({ key: ['hostname'], message: `hostname "${v.hostname}" needs a UTS namespace of its own (uts: new), but the container shares the host's: runc refuses to start it` });
  }
  for (const k of Object.keys(v.sysctl ?? {})) {
    const need = (ns: string, key: string) =>
      out.push({ key: ['sysctl', k], message: `sysctl ${k} needs a ${ns} namespace of its own (${key}: new), but the container shares the host's: runc refuses to start it` });
    if (k.startsWith('net.')) {
      if (shared(v.net)) need('network', 'net');
    } else if (IPC_SYSCTLS.has(k) || k.startsWith('fs.mqueue.')) {
      if (shared(v.ipc)) need('IPC', 'ipc');
    } else if (k === 'kernel.hostname' || k === 'kernel.domainname') {
      if (shared(v.uts)) need('UTS', 'uts');
    } else {
      out.push({ key: ['sysctl', k], message: `sysctl ${k} belongs to no namespace: runc refuses to set it in a container (set it on the host, e.g. with the linuxkit/sysctl onboot image)` });
    }
  }
  return out;
}

/** The OCI runtime-spec version written to config.json (LinuxKit v1.5.3's). */
export const OCI_VERSION = '1.1.0';

export function convertConfig(opts: ConvertInput): Converted {
  try {
    return convert(opts);
  } catch (e) {
    if (e instanceof ConfigProblem) throw new DockyardError('E_SPEC_INVALID', `${opts.image.name}: ${e.message}`, { position: opts.image.pos });
    throw e;
  }
}

function convert({ image: yamlEntry, imageConfig, label: labelIn, ids, placement, volumes }: ConvertInput): Converted {
  const label: ImageConfig = labelIn ?? {};
  checkVolumeMounts(yamlEntry.mounts, volumes);
  const yaml: ImageConfig = {
    ...yamlEntry,
    binds: volumeBinds(yamlEntry.binds, 'binds', volumes),
    'binds.add': volumeBinds(yamlEntry['binds.add'], 'binds.add', volumes),
  };
  const img = imageConfig.config ?? {};

  const inspectCommand = [...(img.Entrypoint ?? []), ...(img.Cmd ?? [])];
  const args = pick(label.command, yaml.command) ?? inspectCommand;
  const env = pick(label.env, yaml.env) ?? img.Env ?? undefined;
  const cwd = pickNonEmpty('/', img.WorkingDir, label.cwd, yaml.cwd);
  const readonly = pick(label.readonly, yaml.readonly) ?? false;

  const devOptions = ['nosuid', 'strictatime', 'mode=755', 'size=65536k'];
  const sysOptions = ['nosuid', 'noexec', 'nodev'];
  if (readonly) {
    devOptions.push('ro');
    sysOptions.push('ro');
  }
  const mounts = new Map<string, GoMount>([
    ['/proc', { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'nodev', 'noexec', 'relatime'] }],
    ['/dev', { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: devOptions }],
    ['/dev/pts', { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] }],
    ['/sys', { destination: '/sys', type: 'sysfs', source: 'sysfs', options: sysOptions }],
    ['/sys/fs/cgroup', { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] }],
  ]);
  for (const t of pick(label.tmpfs, yaml.tmpfs) ?? []) {
    const m = parseTmpfs(t);
    mounts.set(m.destination, m);
  }
  for (const b of pick(mergeAdd(label.binds, yaml['binds.add']), yaml.binds) ?? []) {
    const m = parseBind(b);
    mounts.set(m.destination, m);
  }
  for (const mt of pick(label.mounts, yaml.mounts) ?? []) {
    const m = parseMount(mt);
    mounts.set(m.destination, m);
  }
  const mountList = [...mounts.values()].sort((a, b) => byteOrder(a.destination, b.destination));

  const namespaces: { type: string; path?: string }[] = [];
  const ns = (type: string, value: string, none: boolean) => {
    if (value === 'host' || value === 'root') return;
    const path = value === 'new' || (none && value === 'none') ? '' : value;
    namespaces.push(path === '' ? { type } : { type, path });
  };
  ns('network', pickNonEmpty('root', label.net, yaml.net), true);
  ns('ipc', pickNonEmpty('root', label.ipc, yaml.ipc), false);
  ns('uts', pickNonEmpty('root', label.uts, yaml.uts), false);
  ns('pid', pickNonEmpty(label.pid, yaml.pid), false);
  ns('user', pickNonEmpty('root', label.userns, yaml.userns), false);
  namespaces.push({ type: 'mount' });

  const capsKey = yaml.capabilities !== undefined ? 'capabilities' : yaml['capabilities.add'] !== undefined ? 'capabilities.add' : 'capabilities (from the image label)';
  const caps = capabilityList(pick(mergeAdd(label.capabilities, yaml['capabilities.add']), yaml.capabilities) ?? [], capsKey);
  const ambient = capabilityList(pick(label.ambient, yaml.ambient) ?? [], yaml.ambient !== undefined ? 'ambient' : 'ambient (from the image label)');
  const bounding = [...new Set([...caps, ...ambient])].sort(byteOrder);

  const rlimits = (pick(label.rlimits, yaml.rlimits) ?? []).map(parseRlimit);

  const uid = idNumeric(pick(label.uid, yaml.uid), ids, 'uid');
  const gid = idNumeric(pick(label.gid, yaml.gid), ids, 'gid');
  const additionalGids = (pick(label.additionalGids, yaml.additionalGids) ?? []).map((g) => idNumeric(g, ids, 'additionalGids'));

  const resources = decode(pick(label.resources, yaml.resources), ResourcesT) as Obj;
  const cgroupDevices = ((resources.devices as Obj[] | undefined) ?? []).slice();
  const linuxDevices: Obj[] = [];
  for (const dev of pick(label.devices, yaml.devices) ?? []) {
    const type = dev.type ?? '';
    if (dev.path === 'all') {
      cgroupDevices.push({ allow: true, type, major: undefined, minor: undefined, access: 'rwm' });
      continue;
    }
    const fileMode = parseDeviceMode(dev);
    const major = dev.major ?? 0;
    const minor = dev.minor ?? 0;
    linuxDevices.push({ path: dev.path ?? '', type, major, minor, fileMode });
    cgroupDevices.push({ allow: true, type, major, minor, access: 'rwm' });
  }
  if (cgroupDevices.length > 0) resources.devices = cgroupDevices;

  const oomScoreAdj = pick(label.oomScoreAdj, yaml.oomScoreAdj);
  const noNewPrivileges = pick(label.noNewPrivileges, yaml.noNewPrivileges) ?? false;
  const hostname = pickNonEmpty(label.hostname, yaml.hostname);
  const annotations = sortedMap(pick(label.annotations, yaml.annotations));
  const sysctl = sortedMap(pick(label.sysctl, yaml.sysctl));
  const uidMappings = (pick(label.uidMappings, yaml.uidMappings) ?? []).map((m) => encode(decode(m, IdMappingT), IdMappingT));
  const gidMappings = (pick(label.gidMappings, yaml.gidMappings) ?? []).map((m) => encode(decode(m, IdMappingT), IdMappingT));
  const cgroupsPath = pick(label.cgroupsPath, yaml.cgroupsPath) ?? '';
  const rootfsPropagation = pick(label.rootfsPropagation, yaml.rootfsPropagation) ?? '';
  const maskedPaths = pick(label.maskedPaths, yaml.maskedPaths) ?? [];
  const readonlyPaths = pick(label.readonlyPaths, yaml.readonlyPaths) ?? [];

  // config.json, keys in runtime-spec struct order, omitempty applied.
  const process: Obj = {};
  const user: Obj = { uid, gid };
  if (additionalGids.length > 0) user.additionalGids = additionalGids;
  process.user = user;
  if (args.length > 0) process.args = args;
  if (env && env.length > 0) process.env = env;
  process.cwd = cwd;
  const capabilities: Obj = {};
  if (bounding.length > 0) capabilities.bounding = bounding;
  if (caps.length > 0) capabilities.effective = caps;
  if (bounding.length > 0) capabilities.inheritable = bounding;
  if (bounding.length > 0) capabilities.permitted = bounding;
  if (ambient.length > 0) capabilities.ambient = ambient;
  process.capabilities = capabilities;
  if (rlimits.length > 0) process.rlimits = rlimits;
  if (noNewPrivileges) process.noNewPrivileges = true;
  if (oomScoreAdj !== undefined) process.oomScoreAdj = oomScoreAdj;

  const config: Obj = { ociVersion: OCI_VERSION, process };
  config.root = readonly ? { path: 'rootfs', readonly: true } : { path: 'rootfs' };
  if (hostname !== '') config.hostname = hostname;
  config.mounts = mountList.map((m) => {
    const o: Obj = { destination: m.destination };
    if (m.type !== '') o.type = m.type;
    if (m.source !== '') o.source = m.source;
    if (m.options && m.options.length > 0) o.options = m.options;
    return o;
  });
  if (annotations) config.annotations = annotations;

  const linux: Obj = {};
  if (uidMappings.length > 0) linux.uidMappings = uidMappings;
  if (gidMappings.length > 0) linux.gidMappings = gidMappings;
  if (sysctl) linux.sysctl = sysctl;
  linux.resources = encode(resources, ResourcesT);
  if (cgroupsPath !== '') linux.cgroupsPath = cgroupsPath;
  linux.namespaces = namespaces;
  if (linuxDevices.length > 0) linux.devices = linuxDevices;
  if (rootfsPropagation !== '') linux.rootfsPropagation = rootfsPropagation;
  if (maskedPaths.length > 0) linux.maskedPaths = maskedPaths;
  if (readonlyPaths.length > 0) linux.readonlyPaths = readonlyPaths;
  config.linux = linux;

  const refusals = runtimeRefusals(
    { hostname, uts: pickNonEmpty(label.uts, yaml.uts), net: pickNonEmpty(label.net, yaml.net), ipc: pickNonEmpty(label.ipc, yaml.ipc), sysctl: sysctl ?? undefined },
    true,
  );
  return { config, runtime: runtimeJson(label.runtime, yaml.runtime, placement, readonly), readonly, refusals };
}

function sortedMap(m: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!m || Object.keys(m).length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const k of Object.keys(m).sort(byteOrder)) out[k] = m[k];
  return out;
}

/** assignRuntime + ImageBundle's rootfs mounts (overlay for writable, bind for readonly). */
function runtimeJson(label: Runtime | undefined, yaml: Runtime | undefined, placement: ConvertInput['placement'], readonly: boolean): Obj {
  const l = label ?? {};
  const y = yaml ?? {};
  const prefix = placement.dir.replace(/\/+$/, '');
  const root = placement.sharedWith ?? `${prefix}/${readonly ? 'rootfs' : 'lower'}`;
  const rootfsMounts: Obj[] = readonly
    ? [{ destination: `/${prefix}/rootfs`, source: `/${root}`, options: ['bind'] }]
    : [
        { destination: `/${prefix}/tmp`, type: 'tmpfs', source: 'tmpfs' },
        { destination: `/${prefix}/tmp`, options: ['remount', 'private'] },
        {
          destination: `/${prefix}/rootfs`,
          type: 'overlay',
          source: 'overlay',
          options: [`lowerdir=/${root}`, `upperdir=/${prefix}/tmp/upper`, `workdir=/${prefix}/tmp/work`],
        },
      ];
  const userMounts = (pick(l.mounts, y.mounts) ?? []).map((m) => encode(decode(m, MountT), MountT));
  const interfaces = (pick(l.interfaces, y.interfaces) ?? []).map((i: Interface) => {
    const o: Obj = {};
    if (i.name) o.name = i.name;
    if (i.add) o.add = i.add;
    if (i.peer) o.peer = i.peer;
    o.createInRoot = i.createInRoot === true;
    return o;
  });
  const lb = l.bindNS ?? {};
  const yb = y.bindNS ?? {};
  const bindNS: Obj = {};
  for (const k of ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'] as const) bindNS[k] = pick(lb[k], yb[k]) ?? '';
  return {
    cgroups: pick(l.cgroups, y.cgroups) ?? [],
    mounts: [...rootfsMounts, ...userMounts],
    mkdir: pick(l.mkdir, y.mkdir) ?? [],
    interfaces,
    bindNS,
    namespace: pick(l.namespace, y.namespace) ?? '',
  };
}

/**
 * What can be said about a container entry without its image: problems that
 * make the build fail whatever the image's label holds. Messages name the
 * container. Volume names and uid/gid names are checked by the spec loader.
 */
export function checkImageEntry(entry: ImageSpec): string[] {
  const out: string[] = [];
  const check = (f: () => void) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof ConfigProblem)) throw e;
      out.push(`${entry.name}: ${e.message}`);
    }
  };
  for (const t of entry.tmpfs ?? []) check(() => parseTmpfs(t));
  // binds.add is ignored when binds is set; a volume name as source (no '/') is fine with a ':'.
  const binds = entry.binds ?? entry['binds.add'] ?? [];
  for (const b of binds) check(() => parseBind(b));
  for (const m of entry.mounts ?? []) check(() => parseMount(m));
  if (entry.capabilities !== undefined) {
    check(() => capabilityList(entry.capabilities ?? [], 'capabilities'));
  } else if (entry['capabilities.add'] !== undefined) {
    // Merged with the label's list: a lone `all`/`none` may be fine, anything else unknown is not.
    const add = entry['capabilities.add'];
    for (const c of add) {
      const special = ['all', 'none'].includes(c.toLowerCase());
      if (special && add.length === 1) continue;
      if (special || !KNOWN_CAPS.has(c)) check(() => fail(`capabilities.add: unknown capability "${c}"${special ? ' (all/none only work alone)' : ''}`));
    }
  }
  if (entry.ambient !== undefined) check(() => capabilityList(entry.ambient ?? [], 'ambient'));
  for (const r of entry.rlimits ?? []) check(() => parseRlimit(r));
  for (const d of entry.devices ?? []) if (d.path !== 'all') check(() => parseDeviceMode(d));
  for (const [key, v] of [
    ['uid', entry.uid],
    ['gid', entry.gid],
    ...(entry.additionalGids ?? []).map((g) => ['additionalGids', g] as const),
  ] as const) {
    check(() => idNumeric(v, undefined, key));
  }
  return out;
}

/**
 * config.json / runtime.json bytes as Go's json.MarshalIndent(v, "", "    ")
 * writes them: 4-space indent, no trailing newline, `<`, `>`, `&`, U+2028 and
 * U+2029 escaped; bigint written as its digits (rlimit "unlimited" is 2^64-1).
 */
export function encodeJson(v: unknown): Buffer {
  return Buffer.from(write(v, ''), 'utf8');
}

function quote(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function write(v: unknown, indent: string): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new DockyardError('E_INTERNAL', `cannot encode ${v} as JSON`);
    return JSON.stringify(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return quote(v);
  const inner = indent + '    ';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((e) => inner + write(e, inner)).join(',\n')}\n${indent}]`;
  }
  if (typeof v === 'object') {
    const entries = Object.entries(v as Obj).filter(([, e]) => e !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, e]) => `${inner}${quote(k)}: ${write(e, inner)}`).join(',\n')}\n${indent}}`;
  }
  throw new DockyardError('E_INTERNAL', `cannot encode a ${typeof v} as JSON`);
}
