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
  /** The merged spec as plain data, for `--dry-run` and the `metadata` files entry. */
  raw: Record<string, unknown>;
  /** Spec files in the order given. */
  sources: string[];
}
