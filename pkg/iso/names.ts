/**
 * Plain ISO 9660 identifiers (ECMA-119 7.5, 7.6) for names that Rock Ridge
 * carries in full: d-characters only, interchange level 2 lengths (file
 * name + "." + extension ≤ 30, then ";1"; directory ≤ 31), unique within a
 * directory, and the record order of 9.3.
 */
import { dChars } from './encode.js';

export interface IsoName {
  /** Bytes of the File Identifier (9.1.11): `NAME.EXT;1` for files, `NAME` for directories. */
  id: string;
  /** For 9.3 ordering: name part and extension part. */
  name: string;
  ext: string;
}

const MAX_FILE = 30; // 7.5.1, level 2: name + ext, not counting the separators
const MAX_DIR = 31; // 7.6.3, level 2

function split(orig: string, isDir: boolean): { name: string; ext: string } {
  if (isDir) return { name: dChars(orig).slice(0, MAX_DIR) || '_', ext: '' };
  const dot = orig.lastIndexOf('.');
  let name = dot > 0 ? orig.slice(0, dot) : orig;
  let ext = dot > 0 ? orig.slice(dot + 1) : '';
  name = dChars(name);
  ext = dChars(ext).slice(0, 8);
  name = name.slice(0, MAX_FILE - ext.length) || '_';
  return { name, ext };
}

function make(name: string, ext: string, isDir: boolean): IsoName {
  return { id: isDir ? name : `${name}.${ext};1`, name, ext };
}

/**
 * Identifiers for the children of one directory, in the given (stable)
 * order: the first child to want an identifier gets it, later ones get a
 * numbered variant (`NAME_1`, `NAME_2`, … cut to fit).
 */
export function assignNames(children: { name: string; isDir: boolean }[]): IsoName[] {
  const used = new Set<string>();
  return children.map((c) => {
    const { name, ext } = split(c.name, c.isDir);
    let n = make(name, ext, c.isDir);
    for (let i = 1; used.has(n.id.toUpperCase()); i++) {
      const suffix = `_${i}`;
      const room = (c.isDir ? MAX_DIR : MAX_FILE - ext.length) - suffix.length;
      n = make(name.slice(0, room) + suffix, ext, c.isDir);
    }
    used.add(n.id);
    return n;
  });
}

function padCmp(a: string, b: string): number {
  const len = Math.max(a.length, b.length);
  const pa = a.padEnd(len, ' ');
  const pb = b.padEnd(len, ' ');
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/**
 * 9.3: records ordered by File Name, the shorter padded with SPACEs, then
 * by File Name Extension likewise (versions are all 1). d-characters are
 * ASCII, so string comparison is byte comparison.
 */
export function compareIsoNames(a: IsoName, b: IsoName): number {
  return padCmp(a.name, b.name) || padCmp(a.ext, b.ext);
}
