/**
 * The JSON Schema in schemas/spec.schema.json is the single source of
 * validation: the spec and `org.mobyproject.config` labels are checked against
 * it, compiled once per process.
 *
 * The build (`npm run build`) also writes each schema's validator as code
 * (Ajv's standalone mode, dist/pkg/spec/validators/*.cjs, stamped with the
 * SHA-256 of the schema it was made from): a command loads that instead of
 * loading Ajv and compiling, about a tenth of a second off every start.
 * Run from the TypeScript sources, or should a schema file differ from the
 * one its code was made from, the schema is compiled as before.
 */
import { readFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv2020 as Ajv2020Type, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';

/** A schema of schemas/ (next to `pkg/` in the source, next to `dist/` in the published package). */
export function schemaPath(name = 'spec.schema.json'): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'schemas', name);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error(`schemas/${name} not found next to the dockyard package`);
}

type Which = 'spec' | 'imageConfig' | 'imageDefinition';

const SPEC_ID = 'https://dockyard.dev/schemas/spec.schema.json';
const IMAGE_ID = 'https://dockyard.dev/schemas/image.schema.json';
const require = createRequire(import.meta.url);

/** The validators' code files and what each holds, by schema file. */
const FILES = {
  spec: { schema: 'spec.schema.json', exports: ['spec', 'imageConfig'] as Which[] },
  image: { schema: 'image.schema.json', exports: ['imageDefinition'] as Which[] },
} as const;
const fileOf = (which: Which): keyof typeof FILES => (which === 'imageDefinition' ? 'image' : 'spec');

/** A schema file's text, and how it is compiled (the definition's config.runtime is left to the spec schema's imageConfig). */
function schemaOf(file: keyof typeof FILES): { text: string; schema: object } {
  const text = readFileSync(schemaPath(FILES[file].schema), 'utf8');
  const schema = JSON.parse(text) as object;
  if (file === 'image') {
    // config.runtime refers into the spec schema (its imageConfig): checked by that
    // validator, only when a definition has a runtime (validateImageDefinition).
    (schema as ImageSchema).properties.config.properties.runtime = { type: 'object' };
  }
  return { text, schema };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function newAjv(source = false): Ajv2020Type {
  const { Ajv2020 } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  return new Ajv2020({ allErrors: true, strict: false, validateSchema: false, ...(source ? { code: { source: true } } : {}) });
}

/** An Ajv holding the schemas of `file` under their ids. */
function ajvFor(file: keyof typeof FILES, source = false): Ajv2020Type {
  const ajv = newAjv(source);
  ajv.addSchema(schemaOf(file).schema, file === 'spec' ? SPEC_ID : IMAGE_ID);
  return ajv;
}

const idOf = (which: Which) => (which === 'spec' ? SPEC_ID : which === 'imageConfig' ? `${SPEC_ID}#/$defs/imageConfig` : IMAGE_ID);

/**
 * The validators' code for the build to write to dist/pkg/spec/validators/
 * (NAME.cjs: CommonJS, as Ajv's standalone mode writes it, with the schema's SHA-256).
 */
export function validatorSources(): { name: string; code: string }[] {
  const standalone = (require('ajv/dist/standalone/index.js') as { default: (ajv: Ajv2020Type, refs: Record<string, string>) => string }).default;
  return (Object.keys(FILES) as (keyof typeof FILES)[]).map((file) => {
    const ajv = ajvFor(file, true);
    const code = standalone(ajv, Object.fromEntries(FILES[file].exports.map((w) => [w, idOf(w)])));
    const stamp = `module.exports.schemaSha256 = ${JSON.stringify(sha256(schemaOf(file).text))};\n`;
    return { name: `${file}.cjs`, code: `${code}\n${stamp}` };
  });
}

/** Writes the validators' code beside this module (the build runs it from dist/; written whole, then renamed). */
export function writeValidators(): string[] {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'validators');
  mkdirSync(dir, { recursive: true });
  return validatorSources().map(({ name, code }) => {
    const path = join(dir, name);
    writeFileSync(`${path}.tmp`, code);
    renameSync(`${path}.tmp`, path);
    return path;
  });
}

const compiled = new Map<Which, ValidateFunction>();
const ajvs = new Map<keyof typeof FILES, Ajv2020Type>();
const how = new Map<Which, 'precompiled' | 'compiled'>();

/** The build's code for `which`, if it is there and made from the schema file as it is now. */
function precompiled(which: Which): ValidateFunction | undefined {
  const file = fileOf(which);
  let mod: Record<string, unknown>;
  try {
    mod = require(`./validators/${file}.cjs`) as Record<string, unknown>;
  } catch {
    return undefined; // run from the sources: not built
  }
  if (mod.schemaSha256 !== sha256(readFileSync(schemaPath(FILES[file].schema), 'utf8'))) return undefined;
  return typeof mod[which] === 'function' ? (mod[which] as ValidateFunction) : undefined;
}

/**
 * Each validator is made the first time it is asked for (a command pays
 * only for the schemas it uses: `pkg build` does not load the spec
 * schema's). The schemas are not checked against JSON Schema's meta-schema
 * at run time (a unit test does that once).
 */
function validator(which: Which): ValidateFunction {
  let v = compiled.get(which);
  if (!v) {
    v = precompiled(which);
    how.set(which, v ? 'precompiled' : 'compiled');
    if (!v) {
      const file = fileOf(which);
      let ajv = ajvs.get(file);
      if (!ajv) ajvs.set(file, (ajv = ajvFor(file)));
      v = ajv.getSchema(idOf(which));
      if (!v) throw new Error(`the schema ${idOf(which)} did not compile`);
    }
    compiled.set(which, v);
  }
  return v;
}

/** Whether `which` was checked with the build's code or compiled here (for tests). */
export function validatorKind(which: Which): 'precompiled' | 'compiled' | undefined {
  return how.get(which);
}

interface ImageSchema {
  properties: { config: { properties: { runtime: unknown } } };
}

export function validateSpec(data: unknown): ErrorObject[] {
  const v = validator('spec');
  return v(data) ? [] : [...(v.errors ?? [])];
}

export function validateImageConfig(data: unknown): ErrorObject[] {
  const v = validator('imageConfig');
  return v(data) ? [] : [...(v.errors ?? [])];
}

/** An image definition of `dockyard pkg` (schemas/image.schema.json). */
export function validateImageDefinition(data: unknown): ErrorObject[] {
  const v = validator('imageDefinition');
  const errors = v(data) ? [] : [...(v.errors ?? [])];
  const runtime = (data as { config?: { runtime?: unknown } } | null)?.config?.runtime;
  if (runtime !== null && typeof runtime === 'object') {
    for (const e of validateImageConfig(runtime)) errors.push({ ...e, instancePath: `/config/runtime${e.instancePath}` });
  }
  return errors;
}

export type PathSeg = string | number;

/** `/onboot/0/readonly` → ['onboot', 0, 'readonly'] (JSON pointer, RFC 6901 escapes). */
export function pointerToPath(ptr: string, data: unknown): PathSeg[] {
  if (ptr === '') return [];
  const out: PathSeg[] = [];
  let cur: unknown = data;
  for (const raw of ptr.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const n = Number(seg);
      out.push(n);
      cur = cur[n];
    } else {
      out.push(seg);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

/** `['onboot', 0, 'readonly']` → `onboot[0].readonly`. */
export function displayPath(path: PathSeg[]): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s === '' ? seg : /^[A-Za-z_][\w.-]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`;
  }
  return s;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'number':
      return Number.isInteger(v) ? 'an integer' : 'a number';
    case 'object':
      return 'a map';
    default:
      return typeof v;
  }
}

function wanted(t: string): string {
  switch (t) {
    case 'array':
      return 'a list';
    case 'object':
      return 'a map';
    case 'integer':
      return 'an integer';
    default:
      return `a ${t}`;
  }
}

function at(data: unknown, path: PathSeg[]): unknown {
  let cur = data;
  for (const seg of path) cur = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[seg] : undefined;
  return cur;
}

/** A container entry is named in messages: `onboot[0] (dhcpcd)`. */
function describe(data: unknown, path: PathSeg[]): string {
  const where = displayPath(path);
  const v = at(data, path);
  const name = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>).name : undefined;
  return typeof name === 'string' && name !== '' ? `${where} (${name})` : where;
}

/** What the schema's patterns ask for, in words. */
const PATTERN_HINTS: Record<string, string> = {
  '^(?!\\.{1,2}$)[^/]+$': 'a plain name (no "/", not "." or "..": it names the container\'s directory)',
  '[^./]': 'a path below the root (not "." or "/")',
  // Image definitions (schemas/image.schema.json).
  '^[a-z0-9][a-z0-9+.-]*(\\s*\\((<<|<=|=|>=|>>)\\s*[A-Za-z0-9.+~:-]+\\))?(\\s*\\[\\s*!?(amd64|arm64)(\\s+!?(amd64|arm64))*\\s*\\])?$':
    'a Debian package name, optionally with a version and architectures: runc, "libc6 (>= 2.36)", "linux-image-amd64 [amd64]"',
  '^[A-Za-z0-9_-]+$': 'a module name (letters, digits, _ and -): overlay, virtio_blk',
  '^[a-z0-9][a-z0-9+.-]*$': 'a Debian package name (lower case letters, digits, + - .)',
  '^https?://[^\\s?#]+$': 'an http:// or https:// URL without query or fragment',
};

function rangeMessage(where: string, value: unknown, e: ErrorObject): string {
  const limit = (e.params as { limit: number }).limit;
  return `${where}: ${String(value)} is out of range (${e.keyword === 'maximum' ? 'at most' : 'at least'} ${limit})`;
}

export interface SchemaIssue {
  path: PathSeg[];
  /** The message points at this key of the object at `path` (unknown keys). */
  key?: string;
  message: string;
}

/**
 * ajv errors → one issue each, worded for a user. The branch errors of an
 * `anyOf` are dropped in favour of the `anyOf` error itself.
 */
export function describeErrors(errors: ErrorObject[], data: unknown, root = 'spec'): SchemaIssue[] {
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const out: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && anyOfPaths.has(e.instancePath) && e.schemaPath.includes('/anyOf/')) continue;
    const path = pointerToPath(e.instancePath, data);
    const where = path.length === 0 ? root : displayPath(path);
    const value = at(data, path);
    let issue: SchemaIssue;
    switch (e.keyword) {
      case 'additionalProperties':
      case 'unevaluatedProperties': {
        const key = String((e.params as { additionalProperty?: string; unevaluatedProperty?: string }).additionalProperty ?? (e.params as { unevaluatedProperty?: string }).unevaluatedProperty);
        const message = path.length === 0 ? (root === 'spec' ? `unknown top-level key "${key}"` : `unknown key "${key}"`) : `unknown key "${key}" in ${describe(data, path)}`;
        issue = { path, key, message };
        break;
      }
      case 'required': {
        const key = String((e.params as { missingProperty: string }).missingProperty);
        issue = { path, message: `${path.length === 0 ? root : describe(data, path)}: missing required key "${key}"` };
        break;
      }
      case 'type': {
        const t = String((e.params as { type: string | string[] }).type);
        issue = { path, message: `${where}: must be ${t.split(',').map(wanted).join(' or ')}, not ${typeName(value)}` };
        break;
      }
      case 'anyOf': {
        // An integer that failed every branch failed on its range: say which.
        const range = errors.find((x) => x.instancePath === e.instancePath && (x.keyword === 'minimum' || x.keyword === 'maximum'));
        issue = range ? { path, message: rangeMessage(where, value, range) } : { path, message: `${where}: must be a string or an integer, not ${typeName(value)}` };
        break;
      }
      case 'minimum':
      case 'maximum':
        issue = { path, message: rangeMessage(where, value, e) };
        break;
      case 'pattern':
        issue = { path, message: `${where}: "${String(value)}" is not ${PATTERN_HINTS[(e.params as { pattern: string }).pattern] ?? `of the form ${(e.params as { pattern: string }).pattern}`}` };
        break;
      case 'minItems': {
        const limit = (e.params as { limit: number }).limit;
        issue = { path, message: `${where}: must list at least ${limit} item${limit === 1 ? '' : 's'}` };
        break;
      }
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
        issue = { path, message: `${where}: must be one of ${allowed}, not ${JSON.stringify(value)}` };
        break;
      }
      default:
        issue = { path, message: `${where}: ${e.message ?? 'is invalid'}` };
    }
    const k = `${issue.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(issue);
  }
  return out;
}
