/** Run the compiled CLI (npm test compiles first) the way a user does. */
import { execa, type Result } from 'execa';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { existsSync } from 'node:fs';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const cliPath = resolve(repoRoot, 'dist/cmd/dockyard.js');
/** Test data kept in the repository: the LinuxKit conformance corpus and LinuxKit's example specs. */
export const dataDir = resolve(repoRoot, 'test/data');

export function assertBuilt(): void {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} missing: run "npm run build" (npm test does) first`);
}

export async function dockyard(args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string; timeout?: number } = {}): Promise<Result> {
  assertBuilt();
  return execa('node', [cliPath, ...args], {
    cwd: opts.cwd,
    env: { SOURCE_DATE_EPOCH: '', ...opts.env },
    input: opts.input,
    reject: false,
    timeout: opts.timeout ?? 120_000,
    stripFinalNewline: false,
  });
}
