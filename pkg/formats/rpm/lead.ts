/**
 * The lead: the first 96 bytes of an rpm package ("RPM File Format", "Lead";
 * LSB Core "Package File Format" §22.2.1 "Lead Section"; rpm 4.18
 * lib/rpmlead.c). rpm itself reads only the magic, the major version and the
 * signature type; everything else in it is for file(1) and is duplicated by
 * the header. rpmbuild's lead is reproduced byte for byte:
 *
 *   0  magic[4]         ed ab ee db
 *   4  major, minor     03 00            (format 3.0; v4 packages still say 3)
 *   6  type             int16 BE: 0 binary, 1 source
 *   8  archnum          int16 BE: rpmrc's arch_canon number (x86_64 1, aarch64 19)
 *  10  name[66]         NUL-terminated NEVR (`name-[epoch:]version-release`), cut to 65 bytes, zero-filled
 *  76  osnum            int16 BE: rpmrc's os_canon number (Linux 1)
 *  78  signature_type   int16 BE: 5, RPMSIGTYPE_HEADERSIG (a header-structure signature follows)
 *  80  reserved[16]     zeros
 */
import { DockyardError } from '../../errors.js';

export const LEAD_SIZE = 96;
const MAGIC = [0xed, 0xab, 0xee, 0xdb];
const RPMSIGTYPE_HEADERSIG = 5;
const OS_LINUX = 1;
/** rpmrc.in arch_canon: the lead's architecture numbers. */
const ARCHNUM: Record<string, number> = { x86_64: 1, aarch64: 19 };

export function encodeLead(o: { nevr: string; arch: string; source?: boolean }): Buffer {
  const archnum = ARCHNUM[o.arch];
  if (archnum === undefined) throw new DockyardError('E_INTERNAL', `rpm lead: no arch number for ${o.arch}`);
  const b = Buffer.alloc(LEAD_SIZE);
  Buffer.from(MAGIC).copy(b, 0);
  b[4] = 3;
  b[5] = 0;
  b.writeUInt16BE(o.source ? 1 : 0, 6);
  b.writeUInt16BE(archnum, 8);
  // rstrlcpy into name[66]: at most 65 bytes and a NUL. A cut inside a UTF-8 sequence is harmless: rpm ignores the name.
  Buffer.from(o.nevr, 'utf8').copy(b, 10, 0, 65);
  b.writeUInt16BE(OS_LINUX, 76);
  b.writeUInt16BE(RPMSIGTYPE_HEADERSIG, 78);
  return b;
}
