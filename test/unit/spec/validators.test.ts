/**
 * The validators the build writes as code (dist/pkg/spec/validators/*.cjs,
 * Ajv's standalone mode) judge exactly as the schemas compiled at run time:
 * the same errors, in the same order, for LinuxKit's examples, the
 * fixture image definitions and broken variants of them. A schema file that
 * differs from the one the code was made from is compiled instead.
 */
import { describe, it, expect } from 'vitest';
import { cp, mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import * as source from '../../../pkg/spec/schema.js';

const root = resolve(import.meta.dirname, '../../..');
type SchemaModule = typeof source;
const built = async (dir = join(root, 'dist/pkg/spec')) => (await import(pathToFileURL(join(dir, 'schema.js')).href)) as SchemaModule;

async function documents(dir: string): Promise<{ name: string; doc: unknown }[]> {
  const out = [];
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.yml')).sort()) {
    try {
      out.push({ name: f, doc: parse(await readFile(join(dir, f), 'utf8')) as unknown });
    } catch {
      /* not YAML (a deliberately broken example) */
    }
  }
  return out;
}

/** A document and broken variants of it: a key nobody knows, a number where a string goes, an array emptied. */
function variants(doc: unknown): unknown[] {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return [doc];
  const d = doc as Record<string, unknown>;
  const out: unknown[] = [d, { ...d, bogus: 1 }];
  for (const [k, v] of Object.entries(d)) {
    if (typeof v === 'string') out.push({ ...d, [k]: 3 });
    if (Array.isArray(v)) out.push({ ...d, [k]: [{ nonsense: true }] });
    if (v && typeof v === 'object' && !Array.isArray(v)) out.push({ ...d, [k]: { ...(v as object), extra: [1] } });
  }
  return out;
}

describe('validators written by the build', () => {
  it('are what the compiled CLI uses; the TypeScript sources compile the schemas', async () => {
    const b = await built();
    expect(b.validateSpec({ bogus: 1 })).not.toEqual([]);
    expect(b.validatorKind('spec')).toBe('precompiled');
    expect(b.validateImageDefinition({})).not.toEqual([]);
    expect(b.validatorKind('imageDefinition')).toBe('precompiled');
    source.validateSpec({});
    expect(source.validatorKind('spec')).toBe('compiled');
  });

  it('give the same errors as the compiled schemas: LinuxKit examples, image definitions, broken variants', async () => {
    const b = await built();
    let checked = 0;
    let failing = 0;
    for (const { name, doc } of await documents(join(root, 'test/data/linuxkit-examples'))) {
      for (const v of variants(doc)) {
        const want = source.validateSpec(v);
        expect(b.validateSpec(v), name).toEqual(want);
        checked++;
        if (want.length) failing++;
      }
    }
    for (const { name, doc } of await documents(join(root, 'test/fixtures/images'))) {
      for (const v of variants(doc)) {
        const want = source.validateImageDefinition(v);
        expect(b.validateImageDefinition(v), name).toEqual(want);
        checked++;
        if (want.length) failing++;
      }
    }
    // The corpus is big enough to mean something, with both verdicts in it.
    expect(checked).toBeGreaterThan(200);
    expect(failing).toBeGreaterThan(100);
    expect(checked - failing).toBeGreaterThan(20);
  });

  it('a schema that is not the one the code was made from is compiled instead', async () => {
    const t = await mkdtemp(join(tmpdir(), 'dy-validators-'));
    await mkdir(join(t, 'dist/pkg/spec'), { recursive: true });
    await cp(join(root, 'dist/pkg/spec'), join(t, 'dist/pkg/spec'), { recursive: true });
    await symlink(join(root, 'node_modules'), join(t, 'node_modules'));
    await mkdir(join(t, 'schemas'));
    // The image schema now forbids what the built code allows: a name of one letter.
    const image = JSON.parse(await readFile(join(root, 'schemas/image.schema.json'), 'utf8')) as { properties: { name: { minLength?: number } } };
    image.properties.name.minLength = 2;
    await writeFile(join(t, 'schemas/image.schema.json'), JSON.stringify(image));
    await cp(join(root, 'schemas/spec.schema.json'), join(t, 'schemas/spec.schema.json'));
    const b = await built(join(t, 'dist/pkg/spec'));
    const doc = parse(await readFile(join(root, 'test/fixtures/images/busybox.yml'), 'utf8')) as Record<string, unknown>;
    expect(b.validateImageDefinition({ ...doc, name: 'b' }).map((e) => e.keyword)).toContain('minLength');
    expect(b.validatorKind('imageDefinition')).toBe('compiled');
    // The spec schema is unchanged there: its code is used.
    b.validateSpec({});
    expect(b.validatorKind('spec')).toBe('precompiled');
  });
});
