/**
 * test/data/conformance: what LinuxKit wrote for small specs. Every valid case
 * must build to a tar matching LinuxKit's (per the corpus README's comparison
 * rules), every invalid case must fail with one clear line and leave nothing.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { dockyard, repoRoot, dataDir } from '../harness/cli.js';

const casesDir = join(dataDir, 'conformance/cases');
const imagesDir = join(dataDir, 'conformance/images');
// The corpus is part of the repository: missing, it fails here rather than skipping.
const cases = (await readdir(casesDir)).sort();
const valid = cases.filter((c) => Number(c.slice(0, 2)) < 60);
const invalid = cases.filter((c) => Number(c.slice(0, 2)) >= 60);

/** What each invalid case's one-line message must mention (LinuxKit's wording is not required). */
const mentions: Record<string, RegExp> = {
  '60-invalid-unknown-top-key': /extras/,
  '62-invalid-wrong-type-bool': /readonly/,
  '64-invalid-duplicate-service': /duplicate.*web|web.*duplicate/i,
  '65-invalid-bad-volume-name': /Bad\.Name/,
  '66-invalid-files-contents-and-source': /etc\/both/,
  // The unclosed [ is on line 4 (Go's yaml counts from 0 and says "line 3").
  '68-invalid-yaml-syntax': /spec\.yml:4:\d+: .*\[/,
  '69-invalid-missing-name': /name/,
  '70-invalid-unknown-capability': /CAP_NOT_A_THING/,
  '72-invalid-uid-unknown-name': /nobody-here/,
  '74-invalid-bind-no-colon': /\/var\/lib\/data/,
  '75-invalid-files-missing-source': /not-there\.txt/,
  '77-invalid-mount-missing-type': /\/data/,
  '78-invalid-rlimit': /nofiles/,
  '79-invalid-files-no-contents': /etc\/nothing/,
};

interface Row {
  path: string;
  type: string;
  mode: string;
  uid: string;
  gid: string;
  size: string;
  linkname: string;
  sha256: string;
}

function parseListing(text: string): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [path, type, mode, uid, gid, size, linkname, sha256] = line.split('\t');
    rows.set(path, { path, type, mode, uid, gid, size, linkname, sha256 }); // the last entry counts
  }
  return rows;
}

async function listTar(file: string): Promise<Map<string, Row>> {
  const { stdout } = await execa('python3', [join(repoRoot, 'test/harness/tarlist.py'), file]);
  return parseListing(stdout);
}

async function extractMember(tar: string, member: string): Promise<string> {
  const { stdout } = await execa('tar', ['-xOf', tar, member], { reject: false });
  if (stdout !== '') return stdout;
  return (await execa('tar', ['-xOf', tar, './' + member])).stdout;
}

function withoutOciVersion(v: unknown): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const { ociVersion: _drop, ...rest } = v as Record<string, unknown>;
    return rest;
  }
  return v;
}

async function expectedFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await expectedFiles(dir, rel)));
    else if (prefix !== '') out.push(rel);
  }
  return out;
}

let cache: string;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-conf-'));
  cache = join(work, 'cache');
  const r = await dockyard(['cache', '--cache', cache, 'import', imagesDir]);
  expect(r.exitCode, r.stderr).toBe(0);
});

async function specArgs(caseDir: string): Promise<string[]> {
  const args = join(caseDir, 'build-args');
  if (existsSync(args)) return (await readFile(args, 'utf8')).trim().split(/\s+/);
  return ['spec.yml'];
}

describe('conformance: valid cases', () => {
  it.each(valid)('%s', async (name) => {
    const caseDir = join(casesDir, name);
    const out = join(work, `${name}.tar`);
    const r = await dockyard(['build', '--cache', cache, '--offline', '--no-sbom', '--format', 'tar', '--o', out, ...(await specArgs(caseDir))], { cwd: caseDir });
    expect(r.exitCode, r.stderr).toBe(0);
    const got = await listTar(out);
    const want = parseListing(await readFile(join(caseDir, 'expected/listing.tsv'), 'utf8'));
    const semantic = new Set(await expectedFiles(join(caseDir, 'expected')));

    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [path, w] of want) {
      const g = got.get(path)!;
      const fields = semantic.has(path) ? (['type', 'mode', 'uid', 'gid', 'linkname'] as const) : (['type', 'mode', 'uid', 'gid', 'size', 'linkname', 'sha256'] as const);
      for (const f of fields) expect(`${path} ${f}=${g[f]}`).toBe(`${path} ${f}=${w[f]}`);
    }
    for (const rel of semantic) {
      const want = await readFile(join(caseDir, 'expected', rel), 'utf8');
      const got = await extractMember(out, rel);
      if (rel.endsWith('.json')) expect(withoutOciVersion(JSON.parse(got)), rel).toEqual(withoutOciVersion(JSON.parse(want)));
      else expect(parseYaml(got), rel).toEqual(parseYaml(want));
    }
  });
});

describe('conformance: invalid cases', () => {
  it.each(invalid)('%s', async (name) => {
    const caseDir = join(casesDir, name);
    const out = join(work, `${name}.tar`);
    const r = await dockyard(['build', '--cache', cache, '--offline', '--no-sbom', '--format', 'tar', '--o', out, ...(await specArgs(caseDir))], { cwd: caseDir });
    expect(r.exitCode).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length, r.stderr).toBeGreaterThanOrEqual(1);
    expect(r.stderr).toMatch(/^dockyard: /);
    expect(r.stderr).toMatch(mentions[name] ?? /./);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(existsSync(out), 'no partial output').toBe(false);
  });
});

export async function cleanup(): Promise<void> {
  await rm(work, { recursive: true, force: true });
}
