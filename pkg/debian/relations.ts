/**
 * Relationship fields of binary packages (Debian Policy 7.1): Depends,
 * Pre-Depends, Recommends, Conflicts, Breaks, Provides.
 *
 *   Depends: libc6 (>= 2.34), default-mta | mail-transport-agent, perl:any
 *
 * Clauses are separated by `,`, alternatives by `|`; each names a package,
 * optionally an architecture qualifier (`:any`, `:native`, `:amd64`) and a
 * version restriction (`<<`, `<=`, `=`, `>=`, `>>`; the obsolete `<` and `>`
 * mean `<=` and `>=`). Architecture lists (`[amd64]`) and build profiles
 * (`<!nocheck>`) belong to source packages; they are accepted and dropped.
 */
import { DockyardError } from '../errors.js';
import type { Relation } from './version.js';

export interface Alt {
  name: string;
  archQual?: string;
  op?: Relation;
  version?: string;
}

/** One clause: the alternatives of which one must hold. */
export type Clause = Alt[];

const ALT = /^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^\s)]+)\s*\))?\s*(?:\[[^\]]*\]\s*)?(?:<[^>]*>\s*)*$/;

function parseAlt(s: string, what: string): Alt {
  const m = ALT.exec(s.trim());
  if (!m) throw new DockyardError('E_ARCHIVE_FORMAT', `${what}: "${s.trim()}" is not a package relation`);
  const a: Alt = { name: m[1] };
  if (m[2]) a.archQual = m[2];
  if (m[3]) {
    a.op = m[3] === '<' ? '<=' : m[3] === '>' ? '>=' : (m[3] as Relation);
    a.version = m[4];
  }
  return a;
}

/** Depends-style field: clauses of alternatives. */
export function parseClauses(field: string | undefined, what: string): Clause[] {
  if (!field) return [];
  const out: Clause[] = [];
  for (const c of field.split(',')) {
    if (c.trim() === '') continue;
    out.push(c.split('|').map((a) => parseAlt(a, what)));
  }
  return out;
}

/** Conflicts/Breaks-style field: a list without alternatives. */
export function parseList(field: string | undefined, what: string): Alt[] {
  return parseClauses(field, what).map((c) => {
    if (c.length !== 1) throw new DockyardError('E_ARCHIVE_FORMAT', `${what}: alternatives ("|") are not allowed here`);
    return c[0];
  });
}

/** Provides: names with an optional `(= version)`. */
export function parseProvides(field: string | undefined, what: string): Alt[] {
  const list = parseList(field, what);
  for (const p of list) if (p.op && p.op !== '=') throw new DockyardError('E_ARCHIVE_FORMAT', `${what}: Provides: ${p.name} (${p.op} ${p.version}) — only "=" is allowed`);
  return list;
}

export function formatAlt(a: Alt): string {
  return `${a.name}${a.archQual ? `:${a.archQual}` : ''}${a.op ? ` (${a.op} ${a.version})` : ''}`;
}

export function formatClause(c: Clause): string {
  return c.map(formatAlt).join(' | ');
}
