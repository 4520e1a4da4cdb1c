/**
 * The normalised spec: what `load` returns after parsing, schema-checking and
 * merging one or more files. Field names follow LinuxKit's YAML keys; optional
 * fields are `undefined` when the user did not write them (LinuxKit's nil
 * pointers), which matters: an empty list written by the user clears a label's
 * value, an absent one does not.
 */
import type { SourcePosition } from '../errors.js';

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface Device {
  path: string;
  type: string;
  major: number;
  minor: number;
  mode?: string;
}

export interface Interface {
  name?: string;
  add?: string;
  peer?: string;
  createInRoot?: boolean;
}

export interface Namespaces {
  cgroup?: string;
  ipc?: string;
  mnt?: string;
  net?: string;
  pid?: string;
  user?: string;
  uts?: string;
}

export interface Runtime {
  cgroups?: string[];
  mounts?: OciMount[];
  mkdir?: string[];
  interfaces?: Interface[];
  bindNS?: Namespaces;
  namespace?: string;
}

/** The keys valid both in YAML and in an image's `org.mobyproject.config` label. */
export interface ImageConfig {
  capabilities?: string[];
  'capabilities.add'?: string[];
  ambient?: string[];
  mounts?: OciMount[];
  binds?: string[];
  'binds.add'?: string[];
  devices?: Device[];
  tmpfs?: string[];
  command?: string[];
  env?: string[];
  cwd?: string;
  net?: string;
  pid?: string;
  ipc?: string;
  uts?: string;
  userns?: string;
  hostname?: string;
  readonly?: boolean;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  uid?: number | string;
  gid?: number | string;
  additionalGids?: (number | string)[];
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  rootfsPropagation?: string;
  cgroupsPath?: string;
  /** OCI LinuxResources, passed through as written. */
  resources?: Record<string, unknown>;
  sysctl?: Record<string, string>;
  rlimits?: string[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  annotations?: Record<string, string>;
  runtime?: Runtime;
}

export interface ImageSpec extends ImageConfig {
  name: string;
  image: string;
  /** Where this entry was written, for error messages. */
  pos?: SourcePosition;
  /** Where each of its keys was written (`hostname`, `sysctl/net.ipv4.ip_forward`), for warnings. */
  keyPos?: Record<string, SourcePosition>;
}

export interface KernelSpec {
  image: string;
  cmdline?: string;
  binary?: string; // default "kernel"
  tar?: string; // default "kernel.tar"; "none" = no modules
  ucode?: string; // default "" (none)
  pos?: SourcePosition;
}

export interface FileSpec {
  path: string;
  directory?: boolean;
  symlink?: string;
  contents?: string;
  source?: string;
  optional?: boolean;
  metadata?: 'yaml' | 'json';
  mode?: string;
  uid?: number | string;
  gid?: number | string;
  /** Directory of the spec file that declared the entry: `source` is relative to it. */
  baseDir: string;
  pos?: SourcePosition;
}

export interface VolumeSpec {
  name: string;
  image?: string;
  readonly?: boolean;
  format?: string; // "oci" or "" (filesystem)
  platforms?: string[];
  pos?: SourcePosition;
}

export interface Spec {
  kernel?: KernelSpec;
  init: string[];
  onboot: ImageSpec[];
  onshutdown: ImageSpec[];
  services: ImageSpec[];
  files: FileSpec[];
  volumes: VolumeSpec[];
  /** dockyard addition: bootloader component overrides (name → image reference). */
  components?: Record<string, string>;
  /** dockyard addition: the spec as a distro package (-f deb, rpm, pacman). */
  package?: PackageSpec;
  /** The merged spec as plain data, for `--dry-run` and the `metadata` files entry. */
  raw: Record<string, unknown>;
  /** Spec files in the order given. */
  sources: string[];
}

/** Relations as the `package:` section names them. */
export const RELATION_KEYS = ['depends', 'pre-depends', 'recommends', 'suggests', 'conflicts', 'breaks', 'replaces', 'provides'] as const;
export type RelationKey = (typeof RELATION_KEYS)[number];
export type PackagerName = 'deb' | 'rpm' | 'pacman' | 'sysext';

export interface PackageContentSpec {
  dst: string;
  src?: string;
  image?: string;
  content?: string;
  type: 'file' | 'config' | 'config|noreplace' | 'dir' | 'symlink' | 'ghost' | 'tree';
  /** `packager:`: only in these formats' outputs (written as one name or a list). */
  packager?: PackagerName[];
  /** Parsed from file_info.mode. */
  mode?: number;
  owner?: string;
  group?: string;
  /** Directory of the spec file that declared the entry: a `src` without `image` is relative to it. */
  baseDir: string;
  pos?: SourcePosition;
}

export interface PackageChangeSpec {
  version: string;
  /** Seconds since the epoch, when written. */
  date?: number;
  author?: string;
  changes: string[];
}

/** The `package:` section, merged (later files set keys again; contents and changelog append). */
export interface PackageSpec {
  name: string;
  version: string;
  epoch?: number;
  release?: string;
  summary?: string;
  description?: string;
  maintainer: string;
  vendor?: string;
  homepage?: string;
  license?: string;
  section?: string;
  priority?: string;
  relations: Partial<Record<RelationKey, string[]>>;
  overrides: Partial<Record<PackagerName, Partial<Record<RelationKey, string[]>>>>;
  contents: PackageContentSpec[];
  units: string[];
  groups: string[];
  users: { name: string; group?: string; home?: string; shell?: string }[];
  /** Script files, resolved against the declaring spec's directory. */
  scripts: Partial<Record<'preinstall' | 'postinstall' | 'preremove' | 'postremove', string>>;
  changelog: PackageChangeSpec[];
  containersPrefix?: string;
  /** `-f sysext`: its extension-release fields and file system (schema: package.sysext). */
  sysext?: { id?: string; version_id?: string; sysext_level?: string; filesystem?: 'squashfs' | 'erofs' };
  /** Where the section and each of its keys were written (`name`, `version`…), for errors. */
  pos?: SourcePosition;
  keyPos: Record<string, SourcePosition>;
}
