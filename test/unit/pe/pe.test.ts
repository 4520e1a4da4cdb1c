/**
 * PE section appending and the UKI layout, on hand-made PE images: what we
 * write parses back, and binutils' objdump (an independent PE reader) lists
 * the same sections at the same addresses and offsets. Also: a trailing
 * symbol table is dropped, unaligned raw data realigned, a signed image and
 * a full header refused; planUki embeds the initrd and the (gunzipped)
 * kernel byte for byte and takes .uname from the kernel's banner.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import {
  parsePe,
  peChecksum,
  planAddSections,
  PE32_PLUS,
  SCN_CNT_CODE,
  SCN_CNT_INITIALIZED_DATA,
  SCN_MEM_READ,
  type NewSection,
} from '../../../pkg/pe/pe.js';
import { planUki } from '../../../pkg/pe/uki.js';
import { fixturesCacheDir } from '../../fixtures/build.js';

interface MkSection {
  name: string;
  data: Buffer;
  va: number;
  characteristics: number;
  /** Raw size as written (default: data rounded up to the file alignment). */
  rawSize?: number;
  rawPtr?: number;
}

/**
 * A PE32+ EFI application with the given sections, data directories zeroed
 * (except `security`), optionally followed by a COFF symbol table.
 */
function mkPe(o: {
  machine?: number;
  sections: MkSection[];
  fileAlignment?: number;
  sectionAlignment?: number;
  sizeOfHeaders?: number;
  symbols?: number;
  security?: boolean;
}): Buffer {
  const fa = o.fileAlignment ?? 0x200;
  const sa = o.sectionAlignment ?? 0x1000;
  const peOff = 0x80;
  const optSize = 112 + 16 * 8;
  const table = peOff + 24 + optSize;
  const hdrs = o.sizeOfHeaders ?? 0x400;
  let at = hdrs;
  const placed = o.sections.map((s) => {
    const rawSize = s.rawSize ?? Math.ceil(s.data.length / fa) * fa;
    const ptr = s.rawPtr ?? at;
    at = ptr + rawSize;
    return { ...s, rawSize, ptr };
  });
  const symAt = at;
  const symBytes = o.symbols ? 18 * o.symbols + 4 + 8 : 0;
  const b = Buffer.alloc(at + symBytes);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(peOff, 0x3c);
  b.write('PE\0\0', peOff, 'latin1');
  const coff = peOff + 4;
  b.writeUInt16LE(o.machine ?? 0x8664, coff);
  b.writeUInt16LE(placed.length, coff + 2);
  if (o.symbols) {
    b.writeUInt32LE(symAt, coff + 8);
    b.writeUInt32LE(o.symbols, coff + 12);
    b.writeUInt32LE(12, symAt + 18 * o.symbols); // string table: size field + "abcdefg\0"
    b.write('abcdefg\0', symAt + 18 * o.symbols + 4, 'latin1');
  }
  b.writeUInt16LE(optSize, coff + 16);
  b.writeUInt16LE(0x0206, coff + 18);
  const opt = coff + 20;
  b.writeUInt16LE(PE32_PLUS, opt);
  b.writeUInt32LE(placed[0]?.va ?? 0, opt + 16); // AddressOfEntryPoint
  b.writeUInt32LE(sa, opt + 32);
  b.writeUInt32LE(fa, opt + 36);
  const last = placed[placed.length - 1];
  b.writeUInt32LE(Math.ceil((last.va + last.data.length) / sa) * sa, opt + 56);
  b.writeUInt32LE(hdrs, opt + 60);
  b.writeUInt16LE(10, opt + 68); // EFI application
  b.writeUInt32LE(16, opt + 108);
  if (o.security) {
    b.writeUInt32LE(0x1000, opt + 112 + 4 * 8);
    b.writeUInt32LE(0x10, opt + 112 + 4 * 8 + 4);
  }
  placed.forEach((s, i) => {
    const h = table + 40 * i;
    b.write(s.name, h, 'latin1');
    b.writeUInt32LE(s.data.length, h + 8);
    b.writeUInt32LE(s.va, h + 12);
    b.writeUInt32LE(s.rawSize, h + 16);
    b.writeUInt32LE(s.ptr, h + 20);
    b.writeUInt32LE(s.characteristics, h + 36);
    s.data.copy(b, s.ptr);
  });
  return b;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x >>> 16;
  }
  return b;
}

async function render(p: { size: number; write(s: { write(b: Buffer): Promise<void> }): Promise<void> }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await p.write({ write: async (b) => void chunks.push(Buffer.from(b)) });
  const out = Buffer.concat(chunks);
  expect(out.length).toBe(p.size);
  return out;
}

const bufSection = (name: string, data: Buffer, characteristics = SCN_MEM_READ | SCN_CNT_INITIALIZED_DATA, virtualSize?: number): NewSection => ({
  name,
  size: data.length,
  virtualSize,
  characteristics,
  write: (s) => s.write(data),
});

/** objdump -h: name, size, VMA, file offset of each section. */
async function objdumpSections(file: string): Promise<{ name: string; size: number; vma: number; off: number }[]> {
  const r = await execa('objdump', ['-h', file]);
  const out: { name: string; size: number; vma: number; off: number }[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s/.exec(line);
    if (m) out.push({ name: m[1], size: parseInt(m[2], 16), vma: parseInt(m[3], 16), off: parseInt(m[4], 16) });
  }
  return out;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-pe-'));
});

const baseSections = (): MkSection[] => [
  { name: '.text', data: pattern(0x1234, 1), va: 0x1000, characteristics: 0x60000020 },
  { name: '.data', data: pattern(0x345, 2), va: 0x3000, characteristics: 0xc0000040 },
];

describe('planAddSections', () => {
  it('appends sections as ukify does; parses back; objdump agrees', async () => {
    const base = mkPe({ sections: baseSections() });
    const osrel = Buffer.from('NAME=test\n');
    const big = pattern(100_000, 3);
    const plan = planAddSections(base, [bufSection('.osrel', osrel), bufSection('.linux', big, SCN_MEM_READ | SCN_CNT_CODE, 0x30000)]);
    const out = await render(plan);
    expect(out.subarray(0, 0x400).equals(plan.head.subarray(0, 0x400))).toBe(true);
    const pe = parsePe(out);
    expect(pe.sections.map((s) => s.name)).toEqual(['.text', '.data', '.osrel', '.linux']);
    const [, data, os, lx] = pe.sections;
    // VirtualAddress follows the previous section at SectionAlignment; raw data at FileAlignment.
    expect(os.virtualAddress).toBe(Math.ceil((data.virtualAddress + data.virtualSize) / 0x1000) * 0x1000);
    expect(os.virtualSize).toBe(osrel.length);
    expect(os.pointerToRawData % 0x200).toBe(0);
    expect(os.sizeOfRawData).toBe(0x200);
    expect(lx.virtualAddress).toBe(os.virtualAddress + 0x1000);
    expect(lx.virtualSize).toBe(0x30000);
    expect(lx.sizeOfRawData).toBe(Math.ceil(big.length / 0x200) * 0x200);
    expect(lx.characteristics).toBe(SCN_MEM_READ | SCN_CNT_CODE);
    expect(os.characteristics).toBe(SCN_MEM_READ | SCN_CNT_INITIALIZED_DATA);
    expect(out.subarray(os.pointerToRawData, os.pointerToRawData + osrel.length).equals(osrel)).toBe(true);
    expect(out.subarray(lx.pointerToRawData, lx.pointerToRawData + big.length).equals(big)).toBe(true);
    expect(out.length).toBe(lx.pointerToRawData + lx.sizeOfRawData);
    expect(pe.sizeOfImage).toBe(Math.ceil((lx.virtualAddress + lx.virtualSize) / 0x1000) * 0x1000);
    expect(pe.checkSum).toBe(0);
    expect(pe.sizeOfInitializedData).toBe(osrel.length + 0x30000);
    // The original sections are untouched.
    expect(out.subarray(0x400, 0x400 + 0x1234).equals(base.subarray(0x400, 0x400 + 0x1234))).toBe(true);

    const file = join(work, 'added.efi');
    await writeFile(file, out);
    const od = await objdumpSections(file);
    expect(od.map((s) => s.name)).toEqual(pe.sections.map((s) => s.name));
    for (let i = 0; i < od.length; i++) {
      expect(od[i].vma).toBe(pe.sections[i].virtualAddress);
      expect(od[i].off).toBe(pe.sections[i].pointerToRawData);
    }
    const p = await execa('objdump', ['-p', file]);
    expect(p.stdout).toMatch(/SizeOfImage\s+0*([0-9a-f]+)/);
    expect(parseInt(/SizeOfImage\s+([0-9a-f]+)/.exec(p.stdout)![1], 16)).toBe(pe.sizeOfImage);
    expect(p.stdout).toMatch(/EFI application/);
  });

  it('drops a trailing symbol table and realigns unaligned raw data', async () => {
    const secs = baseSections();
    secs[0].rawSize = 0x1234; // unaligned, as a stripped stub may have it
    const base = mkPe({ sections: secs, symbols: 5 });
    expect(parsePe(base).pointerToSymbolTable).not.toBe(0);
    const out = await render(planAddSections(base, [bufSection('.cmdline', Buffer.from('console=ttyS0'))]));
    const pe = parsePe(out);
    expect(pe.pointerToSymbolTable).toBe(0);
    expect(pe.numberOfSymbols).toBe(0);
    expect(pe.characteristics & 0x0008).toBe(0x0008);
    for (const s of pe.sections) expect([s.name, s.pointerToRawData % 0x200, s.sizeOfRawData % 0x200]).toEqual([s.name, 0, 0]);
    const [text, data] = pe.sections;
    expect(out.subarray(text.pointerToRawData, text.pointerToRawData + 0x1234).equals(secs[0].data)).toBe(true);
    expect(out.subarray(data.pointerToRawData, data.pointerToRawData + 0x345).equals(secs[1].data)).toBe(true);
    expect(out.includes(Buffer.from('abcdefg'))).toBe(false);
  });

  it('is deterministic and refuses signed images and full headers', async () => {
    const base = mkPe({ sections: baseSections() });
    const add = () => [bufSection('.osrel', Buffer.from('x')), bufSection('.initrd', pattern(5000, 9))];
    expect((await render(planAddSections(base, add()))).equals(await render(planAddSections(base, add())))).toBe(true);
    expect(() => planAddSections(mkPe({ sections: baseSections(), security: true }), add())).toThrow(/signed/);
    // Headers end at 0x200: room for 2 section headers after the table at 0x170 only... none to spare.
    const tight = mkPe({ sections: baseSections(), sizeOfHeaders: 0x200 });
    expect(() => planAddSections(tight, add())).toThrow(/no room/);
  });

  it('peChecksum reproduces the linker-made checksum of the Debian systemd-boot stub', async () => {
    // The stub (from the fixture cache's systemd-boot-efi .deb, when npm run fixtures has run)
    // carries a checksum computed by GNU ld; without it, check the field is excluded from the sum.
    const debs = join(fixturesCacheDir(), 'debs');
    const dir = existsSync(debs) ? readdirSync(debs).find((d) => d.startsWith('systemd-boot-efi_') && d.endsWith('_amd64')) : undefined;
    if (dir) {
      const deb = join(debs, dir, readdirSync(join(debs, dir)).find((f) => f.endsWith('.deb'))!);
      const x = join(work, 'stubdeb');
      await execa('dpkg-deb', ['-x', deb, x]);
      const stub = await readFile(join(x, 'usr/lib/systemd/boot/efi/linuxx64.efi.stub'));
      expect(parsePe(stub).checkSum).not.toBe(0);
      expect(peChecksum(stub)).toBe(parsePe(stub).checkSum);
    }
    const b = mkPe({ sections: baseSections() });
    const sum = peChecksum(b);
    b.writeUInt32LE(sum, 0x80 + 24 + 64);
    expect(peChecksum(b)).toBe(sum);
  });
});

describe('planUki', () => {
  it('embeds os-release, cmdline, uname, initrd and the gunzipped kernel; objdump agrees', async () => {
    const stub = mkPe({ machine: 0xaa64, sections: baseSections() });
    // A fake arm64 Image: a PE with a large SizeOfImage and a Linux banner inside.
    const image = mkPe({ machine: 0xaa64, sections: [{ name: '.text', data: pattern(300_000, 4), va: 0x10000, characteristics: 0x60000020 }], sectionAlignment: 0x10000 });
    const banner = Buffer.from('Linux version 6.1.0-99-test (someone@example) (gcc) #1 SMP\n\0');
    banner.copy(image, 200_000);
    const sizeOfImage = parsePe(image).sizeOfImage;
    const kernel = join(work, 'Image.gz');
    await writeFile(kernel, gzipSync(image));
    const initrd = join(work, 'initrd.img');
    const initrdData = pattern(777_777, 5);
    await writeFile(initrd, initrdData);
    const p = await planUki({ stub, kernel, initrd, cmdline: 'console=ttyAMA0 panic=-1', osRelease: 'NAME=dockyard\n', arch: 'arm64' });
    const out = await render(p);
    const pe = parsePe(out);
    expect(pe.sections.map((s) => s.name)).toEqual(['.text', '.data', '.osrel', '.cmdline', '.uname', '.initrd', '.linux']);
    const get = (n: string) => {
      const s = pe.sections.find((x) => x.name === n)!;
      return out.subarray(s.pointerToRawData, s.pointerToRawData + Math.min(s.virtualSize, s.sizeOfRawData));
    };
    expect(get('.osrel').toString()).toBe('NAME=dockyard\n');
    expect(get('.cmdline').toString()).toBe('console=ttyAMA0 panic=-1');
    expect(get('.uname').toString()).toBe('6.1.0-99-test');
    expect(get('.initrd').equals(initrdData)).toBe(true);
    expect(get('.linux').equals(image)).toBe(true);
    expect(pe.sections[6].virtualSize).toBe(sizeOfImage);
    await expect(planUki({ stub, kernel, initrd, cmdline: '', osRelease: '', arch: 'amd64' })).rejects.toThrow(/machine 0xaa64/);

    const x86stub = mkPe({ sections: baseSections() });
    const file = join(work, 'uki.efi');
    await writeFile(file, await render(await planUki({ stub: x86stub, kernel, initrd, cmdline: 'c', osRelease: 'o' })));
    const od = await objdumpSections(file);
    expect(od.map((s) => s.name)).toEqual(['.text', '.data', '.osrel', '.cmdline', '.uname', '.initrd', '.linux']);
    const back = parsePe(await readFile(file));
    od.forEach((s, i) => expect([s.vma, s.off]).toEqual([back.sections[i].virtualAddress, back.sections[i].pointerToRawData]));
  });

  it('takes .uname of a bzImage from its setup header and keeps the kernel as it is', async () => {
    const stub = mkPe({ sections: baseSections() });
    const bz = pattern(40_000, 6);
    bz.write('MZ', 0, 'latin1');
    bz.writeUInt32LE(0, 0x3c); // no PE header: not parsed as one
    bz.write('HdrS', 0x202, 'latin1');
    bz.writeUInt16LE(0x3000 - 0x200, 0x20e);
    bz.write('6.1.0-42-amd64 (debian-kernel@lists.debian.org) #1 SMP\0', 0x3000, 'latin1');
    const kernel = join(work, 'bzImage');
    await writeFile(kernel, bz);
    const initrd = join(work, 'empty.img');
    await writeFile(initrd, Buffer.alloc(0));
    const out = await render(await planUki({ stub, kernel, initrd, cmdline: 'c', osRelease: 'o', arch: 'amd64' }));
    const pe = parsePe(out);
    const s = (n: string) => pe.sections.find((x) => x.name === n)!;
    expect(out.toString('latin1', s('.uname').pointerToRawData, s('.uname').pointerToRawData + s('.uname').virtualSize)).toBe('6.1.0-42-amd64');
    expect(s('.initrd').virtualSize).toBe(0);
    expect(out.subarray(s('.linux').pointerToRawData, s('.linux').pointerToRawData + bz.length).equals(bz)).toBe(true);
    expect(s('.linux').virtualSize).toBe(bz.length);
  });
});
