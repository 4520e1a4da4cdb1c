/**
 * The example system boots: the fixture images (built from Debian packages),
 * imported into a cache, examples/hello.yml built to kernel+initrd for amd64
 * and arm64 in one invocation, each booted under qemu (TCG); the markers its onboot
 * containers print (one read-only, one on an overlay over the shared copy of
 * the image) are read from the serial console.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dockyard, repoRoot } from '../harness/cli.js';
import { bootKernel } from '../harness/qemu.js';
import { fixtureCache } from '../harness/fixtures.js';

let work: string;
let cache: string;

beforeAll(async () => {
  ({ work, cache } = await fixtureCache('dockyard-boot-'));
  // Both architectures in one invocation: outputs in DIR/amd64 and DIR/arm64.
  const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', 'amd64,arm64', '-f', 'kernel+initrd', '--dir', join(work, 'out'), join(repoRoot, 'examples/hello.yml')]);
  expect(b.exitCode, b.stderr).toBe(0);
}, 900_000);

describe('examples/hello.yml boots', () => {
  for (const arch of ['amd64', 'arm64'] as const) {
    it(`${arch}: kernel+initrd under qemu prints the onboot markers`, async () => {
      const out = join(work, 'out', arch);
      const cmdline = await readFile(join(out, 'hello-cmdline'), 'utf8');
      const res = await bootKernel({
        arch,
        kernel: join(out, 'hello-kernel'),
        initrd: join(out, 'hello-initrd.img'),
        cmdline,
        timeoutMs: 240_000,
        until: /dockyard-init: onboot done/,
      });
      const c = res.console;
      expect(c, c).toMatch(new RegExp(`dockyard-marker: hello from a read-only container on ${arch === 'amd64' ? 'x86_64' : 'aarch64'}`));
      expect(c, c).toMatch(/built by dockyard/);
      expect(c, c).toMatch(/dockyard-marker: overlay root is writable: written/);
      expect(c, c).toMatch(/onboot hello exited 0/);
      expect(c, c).toMatch(/onboot writer exited 0/);
      expect(res.reason, c).toBe('until');
    }, 300_000);
  }
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
