/**
 * Reading a binary package (deb(5)), streamed: an ar archive
 * ("!<arch>\n", 60-byte member headers, bodies padded to even length) of
 *
 *   debian-binary     "2.0\n" (the format version; a newer minor is fine)
 *   control.tar[.gz|.xz]   control, md5sums, conffiles, maintainer scripts
 *   data.tar[.gz|.xz]      the files, relative to /
 *
 * in that order (dpkg-deb refuses others; members starting with "_" are
 * allowed in between and skipped). The control archive is small and read
 * whole; the data archive's entries are yielded as they are decompressed,
 * checked as image layers are (pkg/rootfs/layers.ts: paths cleaned, ids and
 * sizes bounded), their bodies windows into the stream.
 */
import { createGunzip } from 'node:zlib';
import { Readable, pipeline } from 'node:stream';
import { DockyardError } from '../errors.js';
import { ByteReader } from '../archive/reader.js';
import { readTar } from '../archive/tarread.js';
import { collectBody } from '../archive/sink.js';
import { xzChunks } from '../archive/xz.js';
import { tarEntries } from '../rootfs/layers.js';
import type { Entry } from '../rootfs/entry.js';
import { parseDeb822, type Paragraph } from './deb822.js';

export interface DebControl {
  /** The control file's fields (lower-cased names). */
  fields: Paragraph;
  /** The control archive's files by name (control, md5sums, conffiles, postinst, triggers...). */
  files: Map<string, Buffer>;
}

export interface DebReader {
  control: DebControl;
  /** The data archive's entries, once. */
  data: AsyncIterable<Entry>;
}

/** Largest control archive, uncompressed (dpkg's own limit is far above any real one). */
const MAX_CONTROL = 64 * 1024 * 1024;
/** Largest file of the control archive kept. */
const MAX_CONTROL_FILE = 16 * 1024 * 1024;

const bad = (what: string, why: string) => new DockyardError('E_ARCHIVE_FORMAT', `${what}: ${why}`);

interface Member {
  name: string;
  size: number;
}

async function nextMember(r: ByteReader, what: string): Promise<Member | undefined> {
  const h = await r.read(60);
  if (!h) return undefined;
  // 58 fmag "`\n"
  if (h[58] !== 0x60 || h[59] !== 0x0a) throw bad(what, 'not a .deb (a damaged ar member header)');
  const name = h.subarray(0, 16).toString('latin1').trimEnd().replace(/\/$/, '');
  const sizeText = h.subarray(48, 58).toString('latin1').trim();
  if (!/^\d+$/.test(sizeText)) throw bad(what, `ar member ${name} has a bad size "${sizeText}"`);
  return { name, size: Number(sizeText) };
}

async function skip(r: ByteReader, n: number): Promise<void> {
  for await (const _ of r.window(n)) void _;
}

/** The body of a member, decompressed by its name's suffix, as chunks. */
function decompressed(name: string, body: AsyncIterable<Buffer>, size: number, what: string): AsyncIterable<Buffer> {
  const label = `${what}: ${name}`;
  if (name.endsWith('.tar')) return body;
  if (name.endsWith('.tar.xz')) return xzChunks(body, label, 'E_ARCHIVE_FORMAT', size);
  if (name.endsWith('.tar.gz')) {
    const gz = createGunzip();
    // pipeline: a failure of the source (a truncated download) ends gz with it, and reaches the loop below.
    pipeline(Readable.from(body), gz, () => {});
    return (async function* () {
      try {
        for await (const c of gz) yield c as Buffer;
      } catch (e) {
        throw bad(label, `not a valid gzip stream (${(e as Error).message})`);
      }
    })();
  }
  throw bad(what, `${name}: ${name.replace(/^.*\.tar\.?/, '') || 'its'} compression is not supported (xz and gzip are)`);
}

async function readControl(r: ByteReader, m: Member, what: string): Promise<DebControl> {
  if (m.size > MAX_CONTROL) throw bad(what, `${m.name} is ${m.size} bytes, more than a control archive holds`);
  const files = new Map<string, Buffer>();
  let total = 0;
  for await (const { header, body } of readTar(decompressed(m.name, r.window(m.size), m.size, what), `${what}: ${m.name}`)) {
    const name = header.name.replace(/^\.?\/+/, '');
    if (header.type !== 'file' || name === '' || name.includes('/')) {
      for await (const _ of body) void _;
      continue;
    }
    total += header.size;
    if (total > MAX_CONTROL) throw bad(what, `${m.name} unpacks to more than ${MAX_CONTROL} bytes`);
    files.set(name, await collectBody(body, MAX_CONTROL_FILE, `${what}: ${m.name}: ${name}`));
  }
  const control = files.get('control');
  if (!control) throw bad(what, `${m.name} has no control file`);
  const paras = parseDeb822(control.toString('utf8'), `${what}: control`);
  if (paras.length !== 1 || !paras[0].package || !paras[0].version) throw bad(what, 'its control file is not one paragraph with Package and Version');
  return { fields: paras[0], files };
}

/**
 * Opens a .deb stream: reads up to the data member and returns the control
 * part and an iterable of the data entries (consume it once, to the end,
 * or abandon the source).
 */
export async function readDeb(source: AsyncIterable<Buffer>, what: string): Promise<DebReader> {
  const r = new ByteReader(source);
  const magic = await r.read(8);
  if (!magic || magic.toString('latin1') !== '!<arch>\n') throw bad(what, 'not a .deb (no ar archive signature)');
  const truncated = () => bad(what, 'truncated .deb');
  let m = await nextMember(r, what);
  if (!m || m.name !== 'debian-binary') throw bad(what, `not a .deb (the first member is ${m ? m.name : 'missing'}, not debian-binary)`);
  const version = (await r.read(m.size))?.toString('latin1') ?? '';
  if (!/^2\.\d+\n/.test(version)) throw bad(what, `a .deb of format ${JSON.stringify(version.trim())}, not 2.x`);
  if (m.size % 2) await skip(r, 1);
  let control: DebControl | undefined;
  for (;;) {
    m = await nextMember(r, what);
    if (!m) throw control ? bad(what, 'no data.tar member') : truncated();
    if (m.name.startsWith('_')) {
      await skip(r, m.size + (m.size % 2));
      continue;
    }
    if (!control) {
      if (!m.name.startsWith('control.tar')) throw bad(what, `${m.name} where control.tar was expected`);
      try {
        control = await readControl(r, m, what);
      } catch (e) {
        if (e instanceof RangeError) throw truncated();
        throw e;
      }
      if (m.size % 2) await skip(r, 1);
      continue;
    }
    if (!m.name.startsWith('data.tar')) throw bad(what, `${m.name} where data.tar was expected`);
    const member = m;
    const data = (async function* () {
      try {
        for await (const { entry } of tarEntries(decompressed(member.name, r.window(member.size), member.size, what), `${what}: ${member.name}`)) yield entry;
      } catch (e) {
        if (e instanceof RangeError) throw truncated();
        throw e;
      }
    })();
    return { control, data };
  }
}
