/** `dockyard run` flag values as LinuxKit's `run` spells them. */
import { DockyardError } from '../errors.js';

export interface DiskSpec {
  /** Absent: a scratch disk in the run's temp dir. */
  path?: string;
  /** Create the disk with this size if it does not exist. */
  sizeMiB?: number;
  /** qemu block format; default: detected for existing files, qcow2 for new ones. */
  format?: string;
}

export interface Publish {
  host: number;
  guest: number;
  protocol: 'tcp' | 'udp';
}

const usage = (msg: string): never => {
  throw new DockyardError('E_USAGE', msg);
};

/** LinuxKit's sizes: `NM` MiB, `NG` or `N` GiB. */
export function parseDiskSize(s: string): number {
  const m = /^(\d+)([MG]?)$/.exec(s.trim());
  if (!m || Number(m[1]) === 0) return usage(`disk size wants N, NM or NG (N GiB / MiB), got "${s}"`);
  return m[2] === 'M' ? Number(m[1]) : Number(m[1]) * 1024;
}

/** `--disk [file=]PATH[,size=S][,format=F]`. */
export function parseDisk(value: string): DiskSpec {
  const d: DiskSpec = {};
  for (const part of value.split(',')) {
    if (part === '') continue;
    const i = part.indexOf('=');
    if (i < 0) {
      d.path = part;
      continue;
    }
    const k = part.slice(0, i);
    const v = part.slice(i + 1);
    if (k === 'file') d.path = v;
    else if (k === 'size') d.sizeMiB = parseDiskSize(v);
    else if (k === 'format') d.format = v;
    else usage(`--disk: unknown key "${k}" in "${value}" (file=, size=, format=)`);
  }
  if (d.path === undefined && d.sizeMiB === undefined) usage(`--disk "${value}" has neither a file nor a size`);
  if (d.format !== undefined && !/^[a-z0-9]+$/.test(d.format)) usage(`--disk: bad format "${d.format}"`);
  return d;
}

/** `--publish HOST:GUEST[/tcp|udp]`. */
export function parsePublish(value: string): Publish {
  const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/i.exec(value.trim());
  if (!m) return usage(`--publish takes HOST:GUEST[/tcp|udp], got "${value}"`);
  const host = Number(m[1]);
  const guest = Number(m[2]);
  for (const p of [host, guest]) if (p < 1 || p > 65535) usage(`--publish: port ${p} out of range in "${value}"`);
  return { host, guest, protocol: (m[3]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp' };
}

export function parsePositiveInt(flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) usage(`${flag} wants a positive integer, got "${value}"`);
  return Number(value);
}

/** `--arch`: ours (amd64, arm64) or qemu's/LinuxKit's (x86_64, aarch64). */
export function parseArch(value: string): 'amd64' | 'arm64' {
  const v = value.toLowerCase();
  if (v === 'amd64' || v === 'x86_64') return 'amd64';
  if (v === 'arm64' || v === 'aarch64') return 'arm64';
  return usage(`--arch wants amd64 or arm64, got "${value}"`);
}
