/**
 * Debian control data (deb822(5)): paragraphs of `Field: value` lines,
 * separated by blank lines; a line starting with a space or tab continues
 * the field before it. Used for Release/InRelease, Packages indices and
 * dpkg's status file.
 *
 * Field names are matched case-insensitively (deb822(5)): keys are stored
 * lower-cased. A value keeps its continuation lines joined by "\n", each
 * with its leading white space removed (a lone "." line, deb822's empty
 * line in descriptions, stays "."); the first line is trimmed.
 */
import { DockyardError, type ErrorCode } from '../errors.js';

export type Paragraph = Record<string, string>;

/**
 * Every paragraph of `text`. `what` names the source in errors (a file or
 * URL); `code` is the error's code. Lines starting with `#` are comments
 * (allowed by deb822 in hand-written files, never in archive indices).
 */
export function parseDeb822(text: string, what: string, code: ErrorCode = 'E_ARCHIVE_FORMAT'): Paragraph[] {
  const out: Paragraph[] = [];
  let cur: Paragraph | undefined;
  let last: string | undefined;
  let lineNo = 0;
  let start = 0;
  const n = text.length;
  while (start <= n) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    let line = text.slice(start, end);
    start = end + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '') {
      if (cur) out.push(cur);
      cur = undefined;
      last = undefined;
      if (end === n) break;
      continue;
    }
    const c = line.charCodeAt(0);
    if (c === 0x23 /* # */) continue;
    if (c === 0x20 || c === 0x09) {
      if (!cur || last === undefined) throw new DockyardError(code, `${what}:${lineNo}: a continuation line with no field before it`);
      cur[last] += `\n${line.trimStart()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new DockyardError(code, `${what}:${lineNo}: not a "Field: value" line`);
    const name = line.slice(0, colon).toLowerCase();
    cur ??= {};
    cur[name] = line.slice(colon + 1).trim();
    last = name;
    if (end === n) break;
  }
  if (cur) out.push(cur);
  return out;
}

/** The lines of a multi-line field (empty first line dropped), split on white space. */
export function fieldRows(value: string | undefined): string[][] {
  if (!value) return [];
  return value
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => l.split(/\s+/));
}
