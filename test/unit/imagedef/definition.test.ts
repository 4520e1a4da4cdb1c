/**
 * Image definitions (schemas/image.schema.json): the repository's example
 * is valid, defaults are filled, and each problem is reported at its
 * file:line:col.
 */
import { describe, it, expect } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDefinition } from '../../../pkg/imagedef/definition.js';
import { repoRoot } from '../../harness/cli.js';

const BASE = 'repositories:\n  - uri: http://deb.debian.org/debian/\n    suites: [bookworm]\n    components: [main]\nkeyring: [keys/debian.gpg]\n';

describe('image definitions', () => {
  it('examples/init-image.yml is valid', async () => {
    const f = join(repoRoot, 'examples/init-image.yml');
    const { def, problems } = parseDefinition(await readFile(f, 'utf8'), f);
    expect(problems).toEqual([]);
    expect(def?.name).toBe('init-image');
    expect(def?.packages).toEqual([{ name: 'runc' }, { name: 'busybox-static' }]);
  });

  it('defaults: name from the file, both archs, keyring paths from the definition\'s folder, the URI without its trailing /', () => {
    const { def } = parseDefinition(`${BASE}packages: ["libc6 (>= 2.36)", runc]\narchs: [arm64, amd64]\n`, '/d/x/engine.yaml');
    expect(def).toMatchObject({
      name: 'engine',
      archs: ['amd64', 'arm64'],
      keyring: ['/d/x/keys/debian.gpg'],
      essential: false,
      exclude: [],
      layout: 'rootfs',
      packages: [{ name: 'libc6', op: '>=', version: '2.36' }, { name: 'runc' }],
    });
    expect(def?.repositories[0].uri).toBe('http://deb.debian.org/debian');
  });

  it('problems at their line and column', () => {
    const at = (text: string) => parseDefinition(text, 'd.yml').problems.map((p) => `${p.line}:${p.col}: ${p.message}`);
    expect(at(`${BASE}packages: [runc, kmod, runc]\n`)).toEqual(['6:24: packages: runc is listed twice (first as item 1)']);
    expect(at(`${BASE}packages: [runc]\nexclude: [runc]\n`)).toEqual(['7:11: exclude: runc is also in packages']);
    expect(at(`${BASE}packages: [runc]\ncolour: red\n`)).toEqual(['7:1: unknown key "colour"']);
    expect(at(`${BASE}packages: []\n`)).toEqual(['6:1: packages: must list at least 1 item']);
    expect(at(`${BASE}packages: [runc]\narchs: [riscv64]\n`)[0]).toMatch(/^7:9: archs\[0\]: must be one of "amd64", "arm64"/);
    expect(at(`${BASE}packages: [runc\n`)[0]).toMatch(/^\d+:\d+: invalid YAML: \[ opened here is never closed/);
    expect(at('repositories: []\n')[0]).toMatch(/missing required key "keyring"|repositories: /);
  });
});
