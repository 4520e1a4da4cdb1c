/**
 * A Debian archive's Release file, as apt trusts it (Debian wiki
 * DebianRepository/Format): dists/SUITE/InRelease is one deb822 paragraph
 * wrapped in an OpenPGP cleartext signature (RFC 4880 section 7, RFC 9580
 * section 7, "Cleartext Signature Framework"):
 *
 *   -----BEGIN PGP SIGNED MESSAGE-----
 *   Hash: SHA256                          armor headers, then an empty line
 *
 *   Origin: Debian                        the signed text; a line starting
 *   Suite: oldstable                      with "-" is escaped as "- -"
 *   ...
 *   SHA256:
 *    <64 hex> <size> main/binary-amd64/Packages.xz
 *   -----BEGIN PGP SIGNATURE-----
 *   <one or more signature packets, base64>
 *   -----END PGP SIGNATURE-----
 *
 * Debian signs with several keys at once (the archive keys of this and the
 * next release, and for a point release the stable release key); one valid
 * signature by a keyring key is enough, as for apt. The SHA256 field lists
 * every index under dists/SUITE/ (paths relative to it) with its size;
 * indices are trusted only through it. Valid-Until, when present, bounds how
 * long a mirror may serve the same Release (replay protection).
 *
 * Signature checks are openpgp's (never our own crypto). Time: a signature
 * must not be created in the future nor be expired now; the key's validity
 * (expiry, revocation, subkey binding) is judged at the signature's creation
 * time, which is gpgv's verdict (exit status 0) too: a Release signed while
 * its key was valid stays verifiable after the key expires (snapshots).
 * apt goes further and refuses EXPKEYSIG; freshness is checkFresh's job.
 */
import { createHash } from 'node:crypto';
import type * as OpenPgp from 'openpgp';

/** openpgp, loaded when a key or a signature is first read: a build from an up-to-date lock never needs it. */
const pgp = (): Promise<typeof OpenPgp> => import('openpgp');
import { DockyardError } from '../errors.js';
import { fieldRows, parseDeb822 } from './deb822.js';

export interface ReleaseEntry {
  size: number;
  /** Lowercase hex. */
  sha256: string;
}

export interface Release {
  origin?: string;
  label?: string;
  suite?: string;
  codename?: string;
  version?: string;
  date?: Date;
  validUntil?: Date;
  architectures: string[];
  /** As the file lists them (the security archive says `updates/main` for the `main/` directory). */
  components: string[];
  acquireByHash: boolean;
  /** NotAutomatic / ButAutomaticUpgrades ("yes"), apt's pin 1 / 100 (experimental, backports); absent when the field is. */
  notAutomatic?: boolean;
  butAutomaticUpgrades?: boolean;
  /** The SHA256 section: path relative to dists/SUITE/ -> size and digest. */
  files: Map<string, ReleaseEntry>;
}

export interface Keyring {
  /** opaque to callers (openpgp PublicKey objects) */
  keys: unknown[];
  /** The primary keys' fingerprints, uppercase hex, in keyring order. */
  fingerprints: string[];
}

const ARMOR_KEY = /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g;

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();

/**
 * Public keys from a keyring file's bytes: a binary keyring (one or more
 * concatenated transferable public keys, as
 * /usr/share/keyrings/debian-archive-keyring.gpg) or ASCII-armored (.asc,
 * one or more armor blocks). `what` names the file in errors. Two copies of
 * one key are merged (the later may carry a renewed expiry).
 */
export async function readKeyring(bytes: Uint8Array, what: string): Promise<Keyring> {
  const fail = (why: string, cause?: unknown): never => {
    throw new DockyardError('E_ARCHIVE_SIGNATURE', `${what}: no OpenPGP public key could be read (${why})`, { cause });
  };
  // A GnuPG keybox (pubring.kbx) starts with a 32-byte header record whose type is 1, magic "KBXf" at 8.
  if (bytes.length >= 12 && Buffer.from(bytes.subarray(8, 12)).toString('latin1') === 'KBXf') {
    fail('it is a GnuPG keybox; export the keys with `gpg --export`');
  }
  const head = Buffer.from(bytes.subarray(0, 4096)).toString('latin1');
  let read: OpenPgp.Key[] = [];
  try {
    const openpgp = await pgp();
    if (head.includes('-----BEGIN PGP')) {
      const blocks = Buffer.from(bytes).toString('utf8').match(ARMOR_KEY) ?? fail('no PUBLIC KEY BLOCK in the armored text');
      for (const armoredKeys of blocks) read.push(...(await openpgp.readKeys({ armoredKeys })));
    } else {
      read = await openpgp.readKeys({ binaryKeys: bytes });
    }
  } catch (e) {
    if (e instanceof DockyardError) throw e;
    fail(oneLine(e), e);
  }
  const byFpr = new Map<string, OpenPgp.PublicKey>();
  for (const k of read) {
    const pub = k.isPrivate() ? k.toPublic() : (k as OpenPgp.PublicKey);
    const fpr = pub.getFingerprint().toUpperCase();
    const seen = byFpr.get(fpr);
    byFpr.set(fpr, seen ? ((await seen.update(pub)) as OpenPgp.PublicKey) : pub);
  }
  if (byFpr.size === 0) fail('the file holds no key');
  return { keys: [...byFpr.values()], fingerprints: [...byFpr.keys()] };
}

const CLEAR_BEGIN = '-----BEGIN PGP SIGNED MESSAGE-----';
const SIG_BEGIN = '-----BEGIN PGP SIGNATURE-----';
const SIG_END = '-----END PGP SIGNATURE-----';

/** How often `marker` starts a line of `text`. */
function linesStarting(text: string, marker: string): number {
  let n = 0;
  for (let i = text.indexOf(marker); i >= 0; i = text.indexOf(marker, i + 1)) if (i === 0 || text[i - 1] === '\n') n++;
  return n;
}

/**
 * Verifies an InRelease (an OpenPGP cleartext-signed message). Returns the
 * signed text (as the signature covers it: dash-escaping and trailing white
 * space removed, "\n" line ends) and the fingerprint (uppercase hex) of the
 * keyring key, the primary key even when a subkey signed, that made a valid
 * signature. As apt does, nothing but white space may surround the signed
 * block (a captive portal's page, a second message), so the text returned
 * is all the file says.
 */
export async function verifyInRelease(text: string, keyring: Keyring, what: string): Promise<{ text: string; fingerprint: string }> {
  const fail = (why: string, cause?: unknown): never => {
    throw new DockyardError('E_ARCHIVE_SIGNATURE', `${what}: ${why}`, { cause });
  };
  const begin = text.indexOf(CLEAR_BEGIN);
  if (begin < 0 || text.slice(0, begin).trim() !== '') fail('not an OpenPGP signed message (no "-----BEGIN PGP SIGNED MESSAGE-----" first)');
  const end = text.lastIndexOf(SIG_END);
  if (end < 0) fail('not an OpenPGP signed message (no signature block)');
  if (text.slice(end + SIG_END.length).trim() !== '') fail('unsigned text after the signature block');
  if (linesStarting(text, CLEAR_BEGIN) !== 1 || linesStarting(text, SIG_BEGIN) !== 1) fail('more than one signed message or signature block');

  const openpgp = await pgp();
  let message: OpenPgp.CleartextMessage;
  try {
    message = await openpgp.readCleartextMessage({ cleartextMessage: text });
  } catch (e) {
    return fail(`not a valid OpenPGP signed message (${oneLine(e)})`, e);
  }
  const keys = keyring.keys as OpenPgp.PublicKey[];
  let result: OpenPgp.VerifyMessageResult<string>;
  try {
    result = await openpgp.verify({ message, verificationKeys: keys });
  } catch (e) {
    return fail(`the signature cannot be checked (${oneLine(e)})`, e);
  }
  if (result.signatures.length === 0) fail('the signed message carries no signature');

  const unknown: string[] = [];
  const bad: string[] = [];
  let firstError: unknown;
  for (const sig of result.signatures) {
    const keyID = sig.keyID.toHex().toUpperCase();
    const owner = keys.find((k) => k.getKeys(sig.keyID).length > 0);
    if (!owner) {
      unknown.push(keyID);
      continue;
    }
    try {
      await sig.verified;
      return { text: result.data, fingerprint: owner.getFingerprint().toUpperCase() };
    } catch (e) {
      firstError ??= e;
      const why = oneLine(e);
      bad.push(`by key ID ${keyID} ${/digest did not match|verification failed/i.test(why) ? 'does not verify (the text was altered)' : `is not valid (${why})`}`);
    }
  }
  if (bad.length > 0) fail(`the signature ${bad.join('; the signature ')}`, firstError);
  return fail(
    unknown.length === 1
      ? `signed by key ID ${unknown[0]}, which is not in the keyring`
      : `signed by key IDs ${unknown.join(', ')}, none of which is in the keyring`,
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** RFC 2822 as dak writes it ("Sat, 11 Jul 2026 10:16:37 UTC"); apt also takes GMT and numeric zones. */
const RFC2822 = /^(?:[A-Z][a-z]{2}, +)?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) (UTC|GMT|Z|[+-]\d{4})$/;

function parseDate(value: string, field: string, what: string): Date {
  const m = RFC2822.exec(value);
  const month = m ? MONTHS.indexOf(m[2]) : -1;
  if (!m || month < 0) throw new DockyardError('E_ARCHIVE_FORMAT', `${what}: ${field} "${value}" is not an RFC 2822 date`);
  const [day, year, h, min, s] = [m[1], m[3], m[4], m[5], m[6]].map(Number);
  const zone = m[7];
  const offset = /^[+-]/.test(zone) ? (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3))) : 0;
  const t = Date.UTC(year, month, day, h, min, s) - offset * 60_000;
  const d = new Date(t);
  // Date.UTC rolls over (31 Feb -> 3 Mar); a real date survives the round trip.
  if (new Date(Date.UTC(year, month, day)).getUTCDate() !== day || h > 23 || min > 59 || s > 60) {
    throw new DockyardError('E_ARCHIVE_FORMAT', `${what}: ${field} "${value}" is not a valid date`);
  }
  return d;
}

/**
 * Parses a Release text (the verified InRelease content): its single
 * paragraph's fields and the SHA256 section, each line "<sha256> <size>
 * <path>". Paths must stay under dists/SUITE/ (relative, no ".." part).
 */
export function parseRelease(text: string, what: string): Release {
  const fail = (why: string): never => {
    throw new DockyardError('E_ARCHIVE_FORMAT', `${what}: ${why}`);
  };
  const paragraphs = parseDeb822(text, what, 'E_ARCHIVE_FORMAT');
  if (paragraphs.length !== 1) fail(paragraphs.length === 0 ? 'the Release file is empty' : `the Release file has ${paragraphs.length} paragraphs, not one`);
  const p = paragraphs[0];
  if (p.sha256 === undefined) fail('the Release file has no SHA256 section');

  const files = new Map<string, ReleaseEntry>();
  for (const row of fieldRows(p.sha256)) {
    const line = row.join(' ');
    if (row.length !== 3) fail(`SHA256 line "${line}" is not "<sha256> <size> <path>"`);
    const [digest, size, path] = row;
    if (!/^[0-9a-fA-F]{64}$/.test(digest)) fail(`SHA256 line "${line}": "${digest}" is not a sha256 digest`);
    if (!/^[0-9]+$/.test(size) || !Number.isSafeInteger(Number(size))) fail(`SHA256 line "${line}": "${size}" is not a size`);
    if (path.startsWith('/') || path.split('/').some((s) => s === '' || s === '.' || s === '..')) fail(`SHA256 line "${line}": "${path}" is not a path under the suite`);
    if (files.has(path)) fail(`SHA256 lists ${path} twice`);
    files.set(path, { size: Number(size), sha256: digest.toLowerCase() });
  }
  if (files.size === 0) fail('the SHA256 section is empty');

  const words = (v: string | undefined) => (v ?? '').split(/\s+/).filter((w) => w !== '');
  const release: Release = {
    architectures: words(p.architectures),
    components: words(p.components),
    acquireByHash: p['acquire-by-hash']?.toLowerCase() === 'yes',
    files,
  };
  if (p.origin !== undefined) release.origin = p.origin;
  if (p.label !== undefined) release.label = p.label;
  if (p.suite !== undefined) release.suite = p.suite;
  if (p.codename !== undefined) release.codename = p.codename;
  if (p.version !== undefined) release.version = p.version;
  if (p.notautomatic !== undefined) release.notAutomatic = p.notautomatic.toLowerCase() === 'yes';
  if (p.butautomaticupgrades !== undefined) release.butAutomaticUpgrades = p.butautomaticupgrades.toLowerCase() === 'yes';
  if (p.date !== undefined) release.date = parseDate(p.date, 'Date', what);
  if (p['valid-until'] !== undefined) release.validUntil = parseDate(p['valid-until'], 'Valid-Until', what);
  return release;
}

/** Checks index bytes against the Release entry for `path`. */
export function checkIndex(release: Release, path: string, bytes: Uint8Array, what: string): void {
  const want = release.files.get(path);
  if (!want) throw new DockyardError('E_ARCHIVE_CHECKSUM', `${what}: ${path} is not listed in the Release file`);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== want.size || sha256 !== want.sha256) {
    throw new DockyardError(
      'E_ARCHIVE_CHECKSUM',
      `${what}: ${path} is ${bytes.length} bytes with sha256 ${sha256}, the Release file says ${want.size} bytes with sha256 ${want.sha256}`,
    );
  }
}

/** A Release whose Valid-Until is before `now` is refused (a replayed or stale mirror); one without Valid-Until is fine. */
export function checkFresh(release: Release, now: Date, what: string): void {
  const until = release.validUntil;
  if (until && until.getTime() < now.getTime()) {
    throw new DockyardError('E_ARCHIVE_SIGNATURE', `${what}: the Release file expired on ${until.toISOString()} (Valid-Until), it is now ${now.toISOString()}`);
  }
}
