/**
 * Release/InRelease handling against this machine's real Debian data: the
 * InRelease files apt keeps in /var/lib/apt/lists, the archive keyring,
 * and one small index downloaded from deb.debian.org. gpgv and gpg are the
 * independent judges: of every signature verdict (exit status, VALIDSIG /
 * NO_PUBKEY status lines), of the signed text (`gpgv -o`) and of the
 * keyring's fingerprints; tampered files are written out for gpgv too.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { checkFresh, checkIndex, parseRelease, readKeyring, verifyInRelease, type Keyring, type Release } from '../../../pkg/debian/release.js';
import { DockyardError, type ErrorCode } from '../../../pkg/errors.js';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const LISTS = '/var/lib/apt/lists';
const BOOKWORM = join(LISTS, 'deb.debian.org_debian_dists_bookworm_InRelease');
const SECURITY = join(LISTS, 'deb.debian.org_debian-security_dists_bookworm-security_InRelease');
const ARCHIVE = 'http://deb.debian.org/debian/dists/bookworm';

let tmp: string;
let gnupghome: string;
let keyring: Keyring;

function tool(name: string): void {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${name} is not installed (apt-get install ${name === 'gpgv' ? 'gpgv' : 'gnupg'}): these tests use it as the independent judge`);
}

function need(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: these tests need this machine's Debian archive keyring and apt lists (apt-get update)`);
}

/** gpgv's verdict on `file`: its exit status, the signed text it writes, its status lines. */
function gpgv(file: string, keyringFile = KEYRING): { status: number; text: string; validsig: { by: string; primary: string }[]; noPubkey: string[] } {
  const out = join(tmp, `gpgv-${Math.random().toString(36).slice(2)}.out`);
  const r = spawnSync('gpgv', ['--status-fd', '1', '--keyring', keyringFile, '--output', out, file], { encoding: 'utf8', env: { ...process.env, GNUPGHOME: gnupghome } });
  if (r.error) throw r.error;
  const lines = r.stdout.split('\n');
  const validsig = lines.filter((l) => l.startsWith('[GNUPG:] VALIDSIG ')).map((l) => l.split(' ')).map((f) => ({ by: f[2], primary: f[11] }));
  const noPubkey = lines.filter((l) => l.startsWith('[GNUPG:] NO_PUBKEY ')).map((l) => l.split(' ')[2]);
  const text = existsSync(out) ? readFileSync(out, 'utf8') : '';
  rmSync(out, { force: true });
  return { status: r.status ?? -1, text, validsig, noPubkey };
}

/** `gpg` on the archive keyring, in a throwaway GNUPGHOME. */
function gpg(args: string[], encoding: 'utf8' | 'buffer' = 'utf8'): string | Buffer {
  const r = spawnSync('gpg', ['--batch', '--no-default-keyring', '--keyring', KEYRING, ...args], { encoding: encoding === 'utf8' ? 'utf8' : 'buffer', env: { ...process.env, GNUPGHOME: gnupghome } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`gpg ${args.join(' ')} failed: ${String(r.stderr)}`);
  return r.stdout;
}

function write(name: string, data: string | Uint8Array): string {
  const p = join(tmp, name);
  writeFileSync(p, data);
  return p;
}

async function rejection(p: Promise<unknown>, code: ErrorCode): Promise<DockyardError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DockyardError);
  expect((err as DockyardError).code).toBe(code);
  expect((err as DockyardError).message).not.toContain('\n');
  return err as DockyardError;
}

function thrown(f: () => unknown, code: ErrorCode): DockyardError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DockyardError);
  expect((err as DockyardError).code).toBe(code);
  expect((err as DockyardError).message).not.toContain('\n');
  return err as DockyardError;
}

/** A field of the signed text, read with a regular expression (not our parser). */
function field(text: string, name: string): string | undefined {
  return new RegExp(`^${name}: *(.*)$`, 'm').exec(text)?.[1];
}

/** GET with one retry; the archive is reachable from this machine. */
async function download(url: string): Promise<Uint8Array> {
  let last: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`${url} could not be downloaded twice: ${String(last)}`);
}

beforeAll(async () => {
  tool('gpgv');
  tool('gpg');
  need(KEYRING);
  need(BOOKWORM);
  tmp = mkdtempSync(join(tmpdir(), 'dockyard-release-'));
  gnupghome = join(tmp, 'gnupg');
  spawnSync('mkdir', ['-m', '700', gnupghome]);
  keyring = await readKeyring(readFileSync(KEYRING), KEYRING);
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('readKeyring', () => {
  it('reads every key of the Debian archive keyring: the primary fingerprints gpg lists, in order', () => {
    const lines = (gpg(['--with-colons', '--list-keys']) as string).split('\n');
    const primary = lines.flatMap((l, i) => (l.startsWith('pub:') ? [lines.slice(i + 1).find((f) => f.startsWith('fpr:'))!.split(':')[9]] : []));
    expect(primary.length).toBeGreaterThan(1);
    expect(keyring.fingerprints).toEqual(primary);
    expect(keyring.keys).toHaveLength(primary.length);
  });

  it('reads an armored export of one key', async () => {
    const fpr = keyring.fingerprints[keyring.fingerprints.length - 1];
    const armored = gpg(['--armor', '--export', fpr]) as string;
    expect(armored).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    const one = await readKeyring(new TextEncoder().encode(armored), 'one.asc');
    expect(one.fingerprints).toEqual([fpr]);
  });

  it('garbage, an empty file and an armored text with no key block are E_ARCHIVE_SIGNATURE naming the file', async () => {
    const garbage = new Uint8Array(256).map((_, i) => (i * 37 + 11) & 0xff);
    expect((await rejection(readKeyring(garbage, 'garbage.gpg'), 'E_ARCHIVE_SIGNATURE')).message).toMatch(/^garbage\.gpg: /);
    expect((await rejection(readKeyring(new Uint8Array(0), 'empty.gpg'), 'E_ARCHIVE_SIGNATURE')).message).toMatch(/^empty\.gpg: /);
    const noBlock = new TextEncoder().encode('-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n');
    await rejection(readKeyring(noBlock, 'sig.asc'), 'E_ARCHIVE_SIGNATURE');
  });
});

describe('verifyInRelease on real InRelease files', () => {
  it('each InRelease in /var/lib/apt/lists verifies as gpgv says: by a key gpgv saw sign, giving the text gpgv outputs', async () => {
    const files = readdirSync(LISTS).filter((f) => f.endsWith('_InRelease'));
    expect(files).toContain('deb.debian.org_debian_dists_bookworm_InRelease');
    for (const f of files) {
      const path = join(LISTS, f);
      const judge = gpgv(path);
      expect(judge.status, `gpgv on ${f}`).toBe(0);
      const v = await verifyInRelease(readFileSync(path, 'utf8'), keyring, path);
      expect(keyring.fingerprints).toContain(v.fingerprint);
      expect(judge.validsig.map((s) => s.primary)).toContain(v.fingerprint);
      // gpgv writes the line end before "-----BEGIN PGP SIGNATURE-----", which the signature does not cover.
      expect(v.text + '\n').toBe(judge.text);
    }
  });

  it('one valid signature is enough: a keyring of any single signer (armored) verifies, naming that key, the one gpgv finds valid', async () => {
    const signers = gpgv(BOOKWORM).validsig;
    expect(signers.length).toBeGreaterThan(1); // Debian signs with several keys
    const text = readFileSync(BOOKWORM, 'utf8');
    for (const s of signers) {
      const one = await readKeyring(new TextEncoder().encode(gpg(['--armor', '--export', s.primary]) as string), `${s.primary}.asc`);
      expect((await verifyInRelease(text, one, BOOKWORM)).fingerprint).toBe(s.primary);
      // gpgv exits 2 when any signature's key is missing; apt (and we) go by its status lines: one VALIDSIG is enough.
      const judge = gpgv(BOOKWORM, write(`${s.primary}.gpg`, gpg(['--export', s.primary], 'buffer') as Buffer));
      expect(judge.validsig.map((v) => v.primary)).toEqual([s.primary]);
      expect(judge.noPubkey).toHaveLength(signers.length - 1);
    }
  });

  it('a keyring holding none of the signers: E_ARCHIVE_SIGNATURE naming the key IDs gpgv reports missing', async () => {
    const signers = new Set(gpgv(BOOKWORM).validsig.map((s) => s.primary));
    const other = keyring.fingerprints.find((f) => !signers.has(f))!;
    const file = write('other.gpg', gpg(['--export', other], 'buffer') as Buffer);
    const judge = gpgv(BOOKWORM, file);
    expect(judge.status).not.toBe(0);
    expect(judge.noPubkey.length).toBe(signers.size);
    const err = await rejection(verifyInRelease(readFileSync(BOOKWORM, 'utf8'), await readKeyring(readFileSync(file), file), BOOKWORM), 'E_ARCHIVE_SIGNATURE');
    expect(err.message.startsWith(`${BOOKWORM}: `)).toBe(true);
    for (const id of judge.noPubkey) expect(err.message).toContain(id);
    expect(err.message).toContain('none of which is in the keyring');
  });
});

describe('verifyInRelease on tampered files (gpgv must refuse each too)', () => {
  it('one character changed in the signed text: the signature does not verify', async () => {
    const text = readFileSync(BOOKWORM, 'utf8');
    const line = /^ ([0-9a-f])[0-9a-f]{63} +\d+ main\/binary-amd64\/Packages\.xz$/m.exec(text)!;
    expect(line).not.toBeNull();
    const at = line.index + 1;
    const tampered = text.slice(0, at) + (line[1] === '0' ? '1' : '0') + text.slice(at + 1);
    expect(gpgv(write('altered_InRelease', tampered)).status).not.toBe(0);
    const err = await rejection(verifyInRelease(tampered, keyring, 'altered'), 'E_ARCHIVE_SIGNATURE');
    expect(err.message).toMatch(/^altered: the signature by key ID [0-9A-F]{16} does not verify \(the text was altered\)/);
  });

  it('signed by a throwaway key: E_ARCHIVE_SIGNATURE naming its key ID, the one gpgv cannot find', async () => {
    const { text } = await verifyInRelease(readFileSync(BOOKWORM, 'utf8'), keyring, BOOKWORM);
    const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: 'Not Debian', email: 'mallory@example.org' }], format: 'object' });
    const forged = await openpgp.sign({ message: await openpgp.createCleartextMessage({ text }), signingKeys: privateKey });
    const judge = gpgv(write('forged_InRelease', forged));
    expect(judge.status).not.toBe(0);
    const keyID = privateKey.getKeyID().toHex().toUpperCase();
    expect(judge.noPubkey).toEqual([keyID]);
    const err = await rejection(verifyInRelease(forged, keyring, 'forged'), 'E_ARCHIVE_SIGNATURE');
    expect(err.message).toBe(`forged: signed by key ID ${keyID}, which is not in the keyring`);
  });

  it('a plain, unsigned Release text is not a signed message', async () => {
    const { text } = await verifyInRelease(readFileSync(BOOKWORM, 'utf8'), keyring, BOOKWORM);
    expect(gpgv(write('Release', text)).status).not.toBe(0);
    const err = await rejection(verifyInRelease(text, keyring, 'Release'), 'E_ARCHIVE_SIGNATURE');
    expect(err.message).toMatch(/^Release: not an OpenPGP signed message/);
    await rejection(verifyInRelease('<html>captive portal</html>\n', keyring, 'portal'), 'E_ARCHIVE_SIGNATURE');
  });

  it('text outside the signed block is refused, as apt does (gpgv passes it: the exception to "gpgv must refuse")', async () => {
    const real = readFileSync(BOOKWORM, 'utf8');
    const prefixed = `Origin: Mallory\n\n${real}`;
    const suffixed = `${real}\nSHA256:\n 00 1 x\n`;
    expect(gpgv(write('prefixed_InRelease', prefixed)).status).toBe(0);
    expect(gpgv(write('suffixed_InRelease', suffixed)).status).toBe(0);
    const before = await rejection(verifyInRelease(prefixed, keyring, 'before'), 'E_ARCHIVE_SIGNATURE');
    expect(before.message).toMatch(/^before: not an OpenPGP signed message/);
    const after = await rejection(verifyInRelease(suffixed, keyring, 'after'), 'E_ARCHIVE_SIGNATURE');
    expect(after.message).toBe('after: unsigned text after the signature block');
    const twice = await rejection(verifyInRelease(`${real}\n${real}`, keyring, 'twice'), 'E_ARCHIVE_SIGNATURE');
    expect(twice.message).toBe('twice: more than one signed message or signature block');
  });

  it('a key that has since expired still verifies what it signed while valid, as gpgv judges', async () => {
    const day = 86_400_000;
    const created = new Date(Date.now() - 10 * day);
    const { privateKey, publicKey } = await openpgp.generateKey({ userIDs: [{ name: 'Expired' }], date: created, keyExpirationTime: 86_400, format: 'object' });
    const signed = await openpgp.sign({ message: await openpgp.createCleartextMessage({ text: 'Origin: Test\nSHA256:\n' }), signingKeys: privateKey, date: new Date(created.getTime() + 3_600_000) });
    const file = write('expired.gpg', publicKey.write());
    expect(gpgv(write('expired_InRelease', signed), file).status).toBe(0);
    const v = await verifyInRelease(signed, await readKeyring(readFileSync(file), file), 'expired');
    expect(v.fingerprint).toBe(publicKey.getFingerprint().toUpperCase());
  });
});

describe('parseRelease, checkIndex, checkFresh', () => {
  let text: string;
  let release: Release;
  beforeAll(async () => {
    text = (await verifyInRelease(readFileSync(BOOKWORM, 'utf8'), keyring, BOOKWORM)).text;
    release = parseRelease(text, BOOKWORM);
  });

  it('the real bookworm Release: its fields, architectures, components and SHA256 entries', () => {
    expect(release.codename).toBe('bookworm');
    expect(release.suite).toBe(field(text, 'Suite'));
    expect(release.origin).toBe('Debian');
    expect(release.version).toBe(field(text, 'Version'));
    expect(release.date!.getTime()).toBe(Date.parse(field(text, 'Date')!));
    expect(release.validUntil).toBeUndefined();
    expect(release.acquireByHash).toBe(field(text, 'Acquire-By-Hash') === 'yes');
    expect(release.architectures).toEqual(expect.arrayContaining(['amd64', 'arm64']));
    expect(release.components).toContain('main');
    const e = release.files.get('main/binary-amd64/Packages.xz')!;
    expect(e).toBeDefined();
    expect(text).toMatch(new RegExp(`^ ${e.sha256} +${e.size} main/binary-amd64/Packages\\.xz$`, 'm'));
    // Every SHA256 line became one entry.
    const section = text.slice(text.indexOf('\nSHA256:\n') + 9).split('\n');
    const end = section.findIndex((l) => !l.startsWith(' '));
    expect(release.files.size).toBe(end < 0 ? section.length : end);
  });

  it("checkIndex accepts the archive's bytes of the smallest index under main/, refuses one flipped byte and unlisted paths", async () => {
    const smallest = (r: Release) =>
      [...r.files].filter(([p, e]) => p.startsWith('main/') && e.size > 0).sort((a, b) => a[1].size - b[1].size || a[0].localeCompare(b[0]))[0][0];
    let rel = release;
    let path = smallest(rel);
    let bytes: Uint8Array;
    try {
      bytes = await download(`${ARCHIVE}/${path}`);
      checkIndex(rel, path, bytes, ARCHIVE);
    } catch {
      // apt's copy of InRelease is older than the archive (the index changed or is gone): use the live pair.
      const live = await verifyInRelease(new TextDecoder().decode(await download(`${ARCHIVE}/InRelease`)), keyring, `${ARCHIVE}/InRelease`);
      rel = parseRelease(live.text, `${ARCHIVE}/InRelease`);
      path = smallest(rel);
      bytes = await download(`${ARCHIVE}/${path}`);
    }
    checkIndex(rel, path, bytes, ARCHIVE);
    const flipped = Uint8Array.from(bytes);
    flipped[flipped.length >> 1] ^= 0x01;
    const e = rel.files.get(path)!;
    const err = thrown(() => checkIndex(rel, path, flipped, ARCHIVE), 'E_ARCHIVE_CHECKSUM');
    expect(err.message).toMatch(new RegExp(`^${ARCHIVE}: ${path} is ${bytes.length} bytes with sha256 [0-9a-f]{64}, the Release file says ${e.size} bytes with sha256 ${e.sha256}$`));
    const shorter = thrown(() => checkIndex(rel, path, bytes.subarray(1), ARCHIVE), 'E_ARCHIVE_CHECKSUM');
    expect(shorter.message).toContain(`is ${bytes.length - 1} bytes`);
    expect(thrown(() => checkIndex(rel, 'main/binary-amd64/Packages.zst', bytes, ARCHIVE), 'E_ARCHIVE_CHECKSUM').message).toBe(
      `${ARCHIVE}: main/binary-amd64/Packages.zst is not listed in the Release file`,
    );
  });

  it('the live bookworm-backports InRelease verifies as gpgv says; NotAutomatic and ButAutomaticUpgrades as its fields say', async () => {
    const url = 'http://deb.debian.org/debian/dists/bookworm-backports/InRelease';
    const raw = new TextDecoder().decode(await download(url));
    const judge = gpgv(write('backports_InRelease', raw));
    expect(judge.status).toBe(0);
    const v = await verifyInRelease(raw, keyring, url);
    expect(judge.validsig.map((s) => s.primary)).toContain(v.fingerprint);
    const r = parseRelease(v.text, url);
    expect(r.codename).toBe('bookworm-backports');
    expect(r.notAutomatic).toBe(field(v.text, 'NotAutomatic') === 'yes');
    expect(r.butAutomaticUpgrades).toBe(field(v.text, 'ButAutomaticUpgrades') === 'yes');
    expect(r.notAutomatic).toBe(true); // Debian's backports are opt-in
    expect(release.notAutomatic).toBeUndefined();
  });

  it('checkFresh: the security Release is fresh before its Valid-Until and expired after it; no Valid-Until never expires', async () => {
    need(SECURITY);
    const sec = await verifyInRelease(readFileSync(SECURITY, 'utf8'), keyring, SECURITY);
    const r = parseRelease(sec.text, SECURITY);
    const until = Date.parse(field(sec.text, 'Valid-Until')!);
    expect(r.validUntil!.getTime()).toBe(until);
    checkFresh(r, new Date(until - 86_400_000), SECURITY);
    checkFresh(r, new Date(until), SECURITY);
    const err = thrown(() => checkFresh(r, new Date(until + 1000), SECURITY), 'E_ARCHIVE_SIGNATURE');
    expect(err.message).toMatch(new RegExp(`^${SECURITY}: the Release file expired on ${new Date(until).toISOString()}`));
    checkFresh(release, new Date(Date.now() + 100 * 365 * 86_400_000), BOOKWORM);
  });

  it('a malformed Release is E_ARCHIVE_FORMAT naming the file: garbage in SHA256, no SHA256, bad size, bad Valid-Until', () => {
    const good = ` ${'ab'.repeat(32)} 12 main/binary-amd64/Release`;
    const base = `Origin: Test\nCodename: test\nSHA256:\n${good}\n`;
    expect(parseRelease(base, 'ok').files.get('main/binary-amd64/Release')).toEqual({ size: 12, sha256: 'ab'.repeat(32) });
    const bad = (t: string) => thrown(() => parseRelease(t, 'R'), 'E_ARCHIVE_FORMAT').message;
    expect(bad(`${base} this is not a checksum line\n`)).toMatch(/^R: SHA256 line "this is not a checksum line"/);
    expect(bad(`${base} ${'zz'.repeat(32)} 12 main/x\n`)).toMatch(/is not a sha256 digest/);
    expect(bad(`${base} ${'ab'.repeat(32)} -1 main/x\n`)).toMatch(/"-1" is not a size/);
    expect(bad(`${base} ${'ab'.repeat(32)} 99999999999999999999 main/x\n`)).toMatch(/is not a size/);
    expect(bad(`${base} ${'ab'.repeat(32)} 1 ../../etc/passwd\n`)).toMatch(/is not a path under the suite/);
    expect(bad(`${base}${good}\n`)).toMatch(/lists main\/binary-amd64\/Release twice/);
    expect(bad('Origin: Test\nMD5Sum:\n d41d8cd98f00b204e9800998ecf8427e 0 x\n')).toBe('R: the Release file has no SHA256 section');
    expect(bad(`Valid-Until: soon\n${base}`)).toMatch(/^R: Valid-Until "soon" is not an RFC 2822 date/);
    expect(bad(`Date: Sat, 31 Feb 2026 10:00:00 UTC\n${base}`)).toMatch(/is not a valid date/);
    expect(bad('')).toBe('R: the Release file is empty');
  });
});
