/**
 * PE/COFF images (Microsoft "PE Format" specification): just enough to read
 * an EFI application's headers and append sections to it, as systemd's
 * ukify does when it turns the systemd-boot stub into a unified kernel image.
 *
 * Layout (offsets from the PE spec, section numbers in brackets):
 *   0x00      MS-DOS stub, "MZ"; 0x3c: u32 offset of the PE signature  [2 Overview]
 *   sig       "PE\0\0"                                                 [3.2 Signature]
 *   sig+4     COFF file header, 20 bytes                               [3.3 COFF File Header]
 *   sig+24    optional header (PE32 0x10b / PE32+ 0x20b)               [3.4 Optional Header]
 *   after     section table, 40 bytes per section                      [4 Section Table]
 */
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';

export const PE32 = 0x10b;
export const PE32_PLUS = 0x20b;

/** Section characteristics [4.1 Section Flags]. */
export const SCN_CNT_CODE = 0x00000020;
export const SCN_CNT_INITIALIZED_DATA = 0x00000040;
export const SCN_MEM_EXECUTE = 0x20000000;
export const SCN_MEM_READ = 0x40000000;
export const SCN_MEM_WRITE = 0x80000000;

/** COFF characteristics [3.3.2]: IMAGE_FILE_LOCAL_SYMS_STRIPPED. */
const FILE_LOCAL_SYMS_STRIPPED = 0x0008;

/** Data directory index of the certificate table [3.4.3]. */
const DIR_SECURITY = 4;

export interface PeSection {
  name: string;
  virtualSize: number;
  virtualAddress: number;
  sizeOfRawData: number;
  pointerToRawData: number;
  characteristics: number;
}

export interface PeImage {
  /** Offset of "PE\0\0". */
  peOffset: number;
  machine: number;
  timeDateStamp: number;
  pointerToSymbolTable: number;
  numberOfSymbols: number;
  sizeOfOptionalHeader: number;
  characteristics: number;
  /** PE32 or PE32_PLUS. */
  magic: number;
  sizeOfCode: number;
  sizeOfInitializedData: number;
  addressOfEntryPoint: number;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  checkSum: number;
  subsystem: number;
  dataDirectories: { virtualAddress: number; size: number }[];
  sections: PeSection[];
  /** Offset of the section table. */
  sectionTableOffset: number;
}

// Offsets inside the optional header [3.4.1 standard fields, 3.4.2 Windows-specific fields].
const OPT = {
  magic: 0,
  sizeOfCode: 4,
  sizeOfInitializedData: 8,
  addressOfEntryPoint: 16,
  sectionAlignment: 32,
  fileAlignment: 36,
  sizeOfImage: 56,
  sizeOfHeaders: 60,
  checkSum: 64,
  subsystem: 68,
  /** NumberOfRvaAndSizes: 92 in PE32, 108 in PE32+; the directories follow it. */
  numberOfRvaAndSizes: (magic: number) => (magic === PE32_PLUS ? 108 : 92),
} as const;

function bad(label: string, why: string): never {
  throw new DockyardError('E_IMAGE_NOT_FOUND', `${label}: not a usable PE/COFF image (${why})`);
}

/** Parse the headers of a PE image. */
export function parsePe(b: Buffer, label = 'PE image'): PeImage {
  if (b.length < 0x40 || b.toString('latin1', 0, 2) !== 'MZ') bad(label, 'no MZ header');
  const peOffset = b.readUInt32LE(0x3c);
  if (peOffset + 24 > b.length || b.toString('latin1', peOffset, peOffset + 4) !== 'PE\0\0') bad(label, 'no PE signature');
  // COFF file header [3.3]
  const coff = peOffset + 4;
  const machine = b.readUInt16LE(coff + 0);
  const numberOfSections = b.readUInt16LE(coff + 2);
  const timeDateStamp = b.readUInt32LE(coff + 4);
  const pointerToSymbolTable = b.readUInt32LE(coff + 8);
  const numberOfSymbols = b.readUInt32LE(coff + 12);
  const sizeOfOptionalHeader = b.readUInt16LE(coff + 16);
  const characteristics = b.readUInt16LE(coff + 18);
  const opt = coff + 20;
  const sectionTableOffset = opt + sizeOfOptionalHeader;
  if (sectionTableOffset + 40 * numberOfSections > b.length) bad(label, 'section table past the end');
  const magic = b.readUInt16LE(opt + OPT.magic);
  if (magic !== PE32 && magic !== PE32_PLUS) bad(label, `optional header magic 0x${magic.toString(16)}`);
  const nDirAt = OPT.numberOfRvaAndSizes(magic);
  if (nDirAt + 4 > sizeOfOptionalHeader) bad(label, 'optional header too short');
  const nDir = b.readUInt32LE(opt + nDirAt);
  if (nDirAt + 4 + 8 * nDir > sizeOfOptionalHeader) bad(label, 'data directories past the optional header');
  const dataDirectories = [];
  for (let i = 0; i < nDir; i++) {
    const at = opt + nDirAt + 4 + 8 * i;
    dataDirectories.push({ virtualAddress: b.readUInt32LE(at), size: b.readUInt32LE(at + 4) });
  }
  const sections: PeSection[] = [];
  for (let i = 0; i < numberOfSections; i++) {
    // Section header [4]: Name[8], VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData,
    // PointerToRelocations, PointerToLinenumbers, NumberOfRelocations(2), NumberOfLinenumbers(2), Characteristics.
    const at = sectionTableOffset + 40 * i;
    const raw = b.subarray(at, at + 8);
    const nul = raw.indexOf(0);
    sections.push({
      name: raw.toString('latin1', 0, nul < 0 ? 8 : nul),
      virtualSize: b.readUInt32LE(at + 8),
      virtualAddress: b.readUInt32LE(at + 12),
      sizeOfRawData: b.readUInt32LE(at + 16),
      pointerToRawData: b.readUInt32LE(at + 20),
      characteristics: b.readUInt32LE(at + 36),
    });
  }
  return {
    peOffset,
    machine,
    timeDateStamp,
    pointerToSymbolTable,
    numberOfSymbols,
    sizeOfOptionalHeader,
    characteristics,
    magic,
    sizeOfCode: b.readUInt32LE(opt + OPT.sizeOfCode),
    sizeOfInitializedData: b.readUInt32LE(opt + OPT.sizeOfInitializedData),
    addressOfEntryPoint: b.readUInt32LE(opt + OPT.addressOfEntryPoint),
    sectionAlignment: b.readUInt32LE(opt + OPT.sectionAlignment),
    fileAlignment: b.readUInt32LE(opt + OPT.fileAlignment),
    sizeOfImage: b.readUInt32LE(opt + OPT.sizeOfImage),
    sizeOfHeaders: b.readUInt32LE(opt + OPT.sizeOfHeaders),
    checkSum: b.readUInt32LE(opt + OPT.checkSum),
    subsystem: b.readUInt16LE(opt + OPT.subsystem),
    dataDirectories,
    sections,
    sectionTableOffset,
  };
}

export const roundUp = (x: number, a: number): number => Math.ceil(x / a) * a;

/** A section to append: its bytes come from `write`, exactly `size` of them. */
export interface NewSection {
  /** At most 8 bytes (the stub looks sections up by their short name). */
  name: string;
  size: number;
  /** VirtualSize when larger than `size` (the loader zero-fills the rest). */
  virtualSize?: number;
  characteristics: number;
  write(sink: ByteSink): Promise<void>;
}

export interface PlannedPe {
  size: number;
  /** The rewritten base image (headers updated), written first. */
  head: Buffer;
  /** Where each new section lands. */
  sections: PeSection[];
  write(sink: ByteSink): Promise<void>;
}

const ZERO = Buffer.alloc(64 * 1024);

async function zeros(sink: ByteSink, n: number): Promise<void> {
  while (n > 0) {
    const k = Math.min(n, ZERO.length);
    await sink.write(ZERO.subarray(0, k));
    n -= k;
  }
}

/**
 * Append sections to a PE image, the way ukify's pe_add_sections does it:
 * - a COFF symbol table left at the end of the file (old stubs) is dropped;
 * - raw data of the existing sections is realigned to FileAlignment if needed;
 * - SizeOfHeaders is rounded up to FileAlignment, and the new section headers
 *   must fit below it;
 * - each new section's raw data starts at the (aligned) end of the file, its
 *   VirtualAddress follows the previous section's at SectionAlignment;
 * - NumberOfSections, SizeOfInitializedData and SizeOfImage are updated and
 *   CheckSum is set to 0 (as ukify does; UEFI firmware does not check it).
 * A signed image (certificate table present) is refused.
 */
export function planAddSections(base: Buffer, add: NewSection[], label = 'PE image'): PlannedPe {
  let img = Buffer.from(base);
  let pe = parsePe(img, label);
  if ((pe.dataDirectories[DIR_SECURITY]?.virtualAddress ?? 0) !== 0) bad(label, 'it is signed; refusing to modify it');
  const coff = pe.peOffset + 4;
  const opt = coff + 20;

  // Drop a trailing COFF symbol + string table [5.4, 5.6].
  if (pe.pointerToSymbolTable !== 0) {
    const symEnd = pe.pointerToSymbolTable + 18 * pe.numberOfSymbols;
    const strSize = symEnd + 4 <= img.length ? img.readUInt32LE(symEnd) : 0;
    if (symEnd + strSize === img.length || symEnd === img.length) {
      img = img.subarray(0, pe.pointerToSymbolTable);
      img.writeUInt32LE(0, coff + 8);
      img.writeUInt32LE(0, coff + 12);
      img.writeUInt16LE(pe.characteristics | FILE_LOCAL_SYMS_STRIPPED, coff + 18);
    }
  }

  // Realign existing sections' raw data to FileAlignment.
  const fa = pe.fileAlignment;
  const sa = pe.sectionAlignment;
  if (fa === 0 || sa === 0 || (fa & (fa - 1)) !== 0) bad(label, `alignment FileAlignment=${fa} SectionAlignment=${sa}`);
  for (let i = 0; i < pe.sections.length; i++) {
    const s = pe.sections[i];
    if (s.pointerToRawData === 0 && s.sizeOfRawData === 0) continue;
    const p = roundUp(s.pointerToRawData, fa);
    const z = roundUp(s.sizeOfRawData, fa);
    if (p === s.pointerToRawData && z === s.sizeOfRawData) continue;
    const padp = p - s.pointerToRawData;
    const padz = z - s.sizeOfRawData;
    img = Buffer.concat([
      img.subarray(0, s.pointerToRawData),
      Buffer.alloc(padp),
      img.subarray(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData),
      Buffer.alloc(padz),
      img.subarray(s.pointerToRawData + s.sizeOfRawData),
    ]);
    const hdr = pe.sectionTableOffset + 40 * i;
    img.writeUInt32LE(z, hdr + 16);
    img.writeUInt32LE(p, hdr + 20);
    for (let j = i + 1; j < pe.sections.length; j++) {
      const h = pe.sectionTableOffset + 40 * j;
      img.writeUInt32LE(img.readUInt32LE(h + 20) + padp + padz, h + 20);
    }
    pe = parsePe(img, label);
  }

  img.writeUInt32LE(roundUp(pe.sizeOfHeaders, fa), opt + OPT.sizeOfHeaders);
  pe = parsePe(img, label);
  const tableEnd = pe.sectionTableOffset + 40 * (pe.sections.length + add.length);
  if (tableEnd > pe.sizeOfHeaders) bad(label, `no room in its headers for ${add.length} more section headers`);
  for (const s of pe.sections) {
    if (s.pointerToRawData !== 0 && s.pointerToRawData < tableEnd) bad(label, `section ${s.name} data overlaps the section table`);
  }

  let fileEnd = img.length;
  let last = pe.sections[pe.sections.length - 1];
  let prevEnd = last ? last.virtualAddress + last.virtualSize : pe.sizeOfHeaders;
  let initData = pe.sizeOfInitializedData;
  const placed: PeSection[] = [];
  for (let i = 0; i < add.length; i++) {
    const n = add[i];
    const nameBytes = Buffer.from(n.name, 'latin1');
    if (nameBytes.length > 8) throw new DockyardError('E_INTERNAL', `PE section name "${n.name}" is longer than 8 bytes`);
    const s: PeSection = {
      name: n.name,
      virtualSize: Math.max(n.size, n.virtualSize ?? 0),
      virtualAddress: roundUp(prevEnd, sa),
      sizeOfRawData: roundUp(n.size, fa),
      pointerToRawData: roundUp(fileEnd, fa),
      characteristics: n.characteristics,
    };
    if (s.virtualAddress + s.virtualSize > 0xffffffff || s.pointerToRawData + s.sizeOfRawData > 0xffffffff)
      throw new DockyardError('E_OUTPUT', `${label}: section ${n.name} (${n.size} bytes) does not fit a PE image (4 GiB)`);
    // Section header [4]; relocation and line-number fields stay 0.
    const h = pe.sectionTableOffset + 40 * (pe.sections.length + i);
    img.fill(0, h, h + 40);
    nameBytes.copy(img, h);
    img.writeUInt32LE(s.virtualSize, h + 8);
    img.writeUInt32LE(s.virtualAddress, h + 12);
    img.writeUInt32LE(s.sizeOfRawData, h + 16);
    img.writeUInt32LE(s.pointerToRawData, h + 20);
    img.writeUInt32LE(s.characteristics, h + 36);
    placed.push(s);
    initData += s.virtualSize;
    fileEnd = s.pointerToRawData + s.sizeOfRawData;
    prevEnd = s.virtualAddress + s.virtualSize;
  }
  img.writeUInt16LE(pe.sections.length + add.length, coff + 2);
  img.writeUInt32LE(initData >>> 0, opt + OPT.sizeOfInitializedData);
  img.writeUInt32LE(0, opt + OPT.checkSum);
  img.writeUInt32LE(roundUp(prevEnd, sa), opt + OPT.sizeOfImage);

  const head = img;
  return {
    size: fileEnd,
    head,
    sections: placed,
    async write(sink: ByteSink): Promise<void> {
      await sink.write(head);
      let at = head.length;
      for (let i = 0; i < add.length; i++) {
        const s = placed[i];
        await zeros(sink, s.pointerToRawData - at);
        let got = 0;
        await add[i].write({
          write: async (b: Buffer) => {
            got += b.length;
            if (got > add[i].size) throw new DockyardError('E_INTERNAL', `PE section ${s.name} got more than its ${add[i].size} bytes`);
            await sink.write(b);
          },
        });
        if (got !== add[i].size) throw new DockyardError('E_INTERNAL', `PE section ${s.name} got ${got} bytes, planned ${add[i].size}`);
        await zeros(sink, s.sizeOfRawData - add[i].size);
        at = s.pointerToRawData + s.sizeOfRawData;
      }
    },
  };
}

/** The PE image checksum [3.4.2 CheckSum], as computed by imagehlp's CheckSumMappedFile. */
export function peChecksum(b: Buffer): number {
  const pe = parsePe(b);
  const at = pe.peOffset + 4 + 20 + OPT.checkSum;
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) {
    if (i === at || i === at + 2) continue;
    const w = i + 1 < b.length ? b.readUInt16LE(i) : b[i];
    sum += w;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum + b.length) >>> 0;
}
