/**
 * The ISO 9660 writer, checked by independent readers: xorriso/osirrox
 * (libisofs) list and extract the tree with Rock Ridge names, modes and
 * symlinks; isoinfo (genisoimage) reads the volume descriptors and the
 * plain ISO 9660 tree; xorriso reports the El Torito catalog. Also: a large
 * file streamed in pieces, deep directories, long names, the boot
 * information table, and identical bytes from identical input.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, readlink, rm, stat, lstat, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { Sink } from '../../../pkg/archive/sink.js';
import { planIso, type IsoNode, type IsoOptions } from '../../../pkg/iso/iso.js';
import { planBootIso } from '../../../pkg/iso/boot.js';
import { isohybridMbr } from '../../../pkg/iso/hybrid.js';
import { planFat } from '../../../pkg/disk/fat.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-isounit-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function writeIso(o: IsoOptions, name: string): Promise<{ path: string; sha: string; size: number }> {
  const path = join(work, name);
  const plan = planIso(o);
  const stream = createWriteStream(path);
  const sink = new Sink([stream]);
  await plan.write(sink);
  await sink.end();
  const st = await stat(path);
  expect(st.size).toBe(plan.size);
  return { path, sha: sink.sha256(), size: st.size };
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    b[i] = s >>> 16;
  }
  return b;
}

const file = (path: string, data: Buffer, mode?: number): IsoNode => ({ type: 'file', path, size: data.length, data, mode });

const LONG = 'a-very-long-file-name-that-plain-iso9660-could-never-hold-'.repeat(4).slice(0, 240) + '.tar.gz';
const DEEP = Array.from({ length: 12 }, (_, i) => `level${i}`).join('/');
const BIG = 5 * 1024 * 1024 + 123; // streamed in odd-sized chunks

function tree(): IsoNode[] {
  const big = bytes(BIG, 7);
  return [
    file('hello.txt', Buffer.from('hello\n')),
    file('bin/tool', bytes(3000, 1), 0o755),
    file('bin/setuid', bytes(10, 2), 0o4755),
    { type: 'dir', path: 'private', mode: 0o700 },
    file('private/secret', Buffer.from('s'), 0o600),
    file(`names/${LONG}`, Buffer.from('long\n')),
    file('names/Mixed.Case.Name.With.Dots', Buffer.from('dots\n')),
    file('names/mixed.case.name.with.dots', Buffer.from('lower\n')),
    file('names/ünïcödé-名前', Buffer.from('utf8\n')),
    file('empty', Buffer.alloc(0)),
    file(`${DEEP}/bottom.txt`, Buffer.from('deep\n')),
    { type: 'symlink', path: 'link-rel', target: 'bin/tool' },
    { type: 'symlink', path: 'link-abs', target: '/usr/lib/../share/x' },
    { type: 'symlink', path: 'link-long', target: '/' + Array.from({ length: 40 }, (_, i) => `component-number-${i}`).join('/') },
    {
      type: 'file',
      path: 'big.bin',
      size: BIG,
      async write(sink) {
        for (let o = 0; o < BIG; o += 65_537) await sink.write(big.subarray(o, o + 65_537));
      },
    },
    ...Array.from({ length: 150 }, (_, i) => file(`many/file-${String(i).padStart(3, '0')}-with-a-name-long-enough`, Buffer.from(`${i}\n`))),
  ];
}

describe('ISO 9660 + Rock Ridge writer', () => {
  let iso: { path: string; sha: string; size: number };
  beforeAll(async () => {
    iso = await writeIso({ nodes: tree(), epoch: 1_700_000_000, volumeId: 'DOCKYARD_TEST' }, 'tree.iso');
  });

  it('isoinfo reads the volume descriptor', async () => {
    const r = await execa('isoinfo', ['-d', '-i', iso.path]);
    expect(r.stdout).toMatch(/Volume id: DOCKYARD_TEST/);
    expect(r.stdout).toMatch(/Logical block size is: 2048/);
    expect(r.stdout).toMatch(new RegExp(`Volume size is: ${iso.size / 2048}`));
    expect(r.stdout).toMatch(/Rock Ridge signatures version 1 found/);
    const pvd = (await execa('xorriso', ['-indev', iso.path, '-pvd_info'])).stdout;
    expect(pvd).toMatch(/Creation Time: 2023111422132000/);
    expect(pvd).toMatch(/Modif\. Time  : 2023111422132000/);
  });

  it('isoinfo lists the plain ISO 9660 and the Rock Ridge trees', async () => {
    const plain = (await execa('isoinfo', ['-f', '-i', iso.path])).stdout.split('\n');
    expect(plain).toContain('/HELLO.TXT;1');
    expect(plain).toContain('/BIN/TOOL.;1');
    expect(plain.filter((l) => l.startsWith('/NAMES/')).length).toBe(4);
    for (const l of plain) expect(l).toMatch(/^[A-Z0-9_/.;]+$/);
    const rr = (await execa('isoinfo', ['-R', '-f', '-i', iso.path])).stdout.split('\n');
    expect(rr).toContain(`/names/${LONG}`);
    expect(rr).toContain(`/${DEEP}/bottom.txt`);
  });

  it('xorriso lists names, modes and symlink targets with no complaint', async () => {
    const r = await execa('xorriso', ['-abort_on', 'NEVER', '-return_with', 'SORRY', '0', '-indev', iso.path, '-find', '/', '-exec', 'lsdl', '--'], { reject: false });
    const all = r.stdout + r.stderr;
    expect(all).not.toMatch(/FAILURE|SORRY|WARNING/);
    expect(r.stdout).toMatch(/^-rwsr-xr-x .* '\/bin\/setuid'$/m);
    expect(r.stdout).toMatch(/^drwx------ .* '\/private'$/m);
    expect(r.stdout).toMatch(/^-rw------- .* '\/private\/secret'$/m);
    expect(r.stdout).toMatch(/^lrwxrwxrwx .* '\/link-rel' -> 'bin\/tool'$/m);
    expect(r.stdout).toMatch(/^lrwxrwxrwx .* '\/link-abs' -> '\/usr\/lib\/..\/share\/x'$/m);
  });

  it('osirrox extracts identical contents, modes and links', async () => {
    const out = join(work, 'x');
    const r = await execa('osirrox', ['-indev', iso.path, '-extract', '/', out], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const want = tree();
    for (const n of want) {
      const p = join(out, n.path);
      if (n.type === 'file') {
        const got = await readFile(p);
        const exp = n.data ?? bytes(BIG, 7);
        expect(createHash('sha256').update(got).digest('hex'), n.path).toBe(createHash('sha256').update(exp).digest('hex'));
        expect((await stat(p)).mode & 0o7777, n.path).toBe(n.mode ?? 0o644);
      } else if (n.type === 'symlink') {
        expect(await readlink(p)).toBe(n.target);
        expect((await lstat(p)).isSymbolicLink()).toBe(true);
      }
    }
    expect((await readdir(join(out, 'many'))).length).toBe(150);
    expect((await readdir(join(out, 'names'))).sort()).toContain('mixed.case.name.with.dots');
  });

  it('Joliet: osirrox reading without Rock Ridge gets UCS-2 names (long ones cut to 103, extension kept), same contents', async () => {
    expect((await execa('isoinfo', ['-d', '-i', iso.path])).stdout).toMatch(/Joliet with UCS level 3 found/);
    const out = join(work, 'jx');
    const r = await execa('osirrox', ['-read_fs', 'norock', '-indev', iso.path, '-extract', '/', out], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readFile(join(out, 'hello.txt'), 'utf8')).toBe('hello\n');
    expect(await readFile(join(out, 'names/ünïcödé-名前'), 'utf8')).toBe('utf8\n');
    expect(await readFile(join(out, DEEP, 'bottom.txt'), 'utf8')).toBe('deep\n');
    const names = await readdir(join(out, 'names'));
    const long = names.find((n) => n.startsWith('a-very-long'))!;
    expect(long.length).toBe(101);
    expect(long.endsWith('.gz')).toBe(true);
    expect(names.filter((n) => n.toLowerCase() === 'mixed.case.name.with.dots')).toHaveLength(2);
    expect((await readdir(out)).filter((n) => n.startsWith('link-'))).toEqual([]); // Joliet has no symlinks
    expect(createHash('sha256').update(await readFile(join(out, 'big.bin'))).digest('hex')).toBe(createHash('sha256').update(bytes(BIG, 7)).digest('hex'));
  });

  it('is deterministic: the same tree gives the same bytes, another epoch other bytes', async () => {
    const again = await writeIso({ nodes: tree(), epoch: 1_700_000_000, volumeId: 'DOCKYARD_TEST' }, 'tree2.iso');
    expect(again.sha).toBe(iso.sha);
    const other = await writeIso({ nodes: tree(), epoch: 1_700_000_001, volumeId: 'DOCKYARD_TEST' }, 'tree3.iso');
    expect(other.sha).not.toBe(iso.sha);
  });

  it('a writer that writes the wrong number of bytes is an error', async () => {
    const plan = planIso({ nodes: [{ type: 'file', path: 'x', size: 10, async write(s) { await s.write(Buffer.alloc(9)); } }], epoch: 0 });
    await expect(plan.write({ async write() {} })).rejects.toThrow(/wrote 9 bytes, planned 10/);
  });
});

describe('El Torito', () => {
  it('BIOS + EFI entries, boot information table, listed catalog', async () => {
    // A fake isolinux.bin: 4 KiB with a recognisable tail; an "EFI image" of 1 MiB.
    const loader = bytes(4096, 3);
    const efi = bytes(1024 * 1024, 4);
    const iso = await writeIso(
      {
        nodes: [file('isolinux/isolinux.bin', loader), file('isolinux/ldlinux.c32', bytes(100, 5)), { type: 'file', path: 'boot.img', size: efi.length, data: efi, hidden: true }, file('kernel', bytes(5000, 6))],
        epoch: 0,
        volumeId: 'BOOT',
        boot: {
          catalog: { path: 'isolinux/boot.cat' },
          entries: [
            { platform: 'bios', path: 'isolinux/isolinux.bin', loadSectors: 4, bootInfoTable: true },
            { platform: 'efi', path: 'boot.img' },
          ],
        },
      },
      'boot.iso',
    );
    const r = await execa('xorriso', ['-indev', iso.path, '-report_el_torito', 'plain'], { reject: false });
    const rep = r.stdout;
    expect(rep, r.stderr).toMatch(/El Torito catalog\s*:\s*\d+\s+1/);
    expect(rep).toMatch(/El Torito boot img\s*:\s*1\s+BIOS\s+y\s+none\s+0x0000\s+0x00\s+4\s+\d+/);
    expect(rep).toMatch(/El Torito boot img\s*:\s*2\s+UEFI\s+y\s+none\s+0x0000\s+0x00\s+2048\s+\d+/);
    expect(rep).toMatch(/El Torito img path\s*:\s*1\s+\/isolinux\/isolinux.bin/);
    expect(rep).toMatch(/El Torito cat path\s*:\s*\/isolinux\/boot.cat/);
    expect(rep).toMatch(/El Torito img opts\s*:\s*1\s+boot-info-table/);
    // The table: PVD at 16, the file's own LBA and length, checksum over bytes 64.. of the original.
    const img = await readFile(iso.path);
    const lba = Number(/El Torito boot img\s*:\s*1\s+BIOS\s+\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(\d+)/.exec(rep)![1]);
    const f = img.subarray(lba * 2048, lba * 2048 + loader.length);
    expect(f.readUInt32LE(8)).toBe(16);
    expect(f.readUInt32LE(12)).toBe(lba);
    expect(f.readUInt32LE(16)).toBe(loader.length);
    let sum = 0;
    for (let i = 64; i < loader.length; i += 4) sum = (sum + loader.readUInt32LE(i)) >>> 0;
    expect(f.readUInt32LE(20)).toBe(sum);
    expect(f.subarray(64).equals(loader.subarray(64))).toBe(true);
    // The hidden EFI image is in no directory, but its bytes are where the catalog says.
    const ls = (await execa('xorriso', ['-indev', iso.path, '-find', '/', '--'])).stdout;
    expect(ls).not.toMatch(/boot\.img/);
    const efiLba = Number(/El Torito boot img\s*:\s*2\s+UEFI\s+\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(\d+)/.exec(rep)![1]);
    expect(img.subarray(efiLba * 2048, efiLba * 2048 + efi.length).equals(efi)).toBe(true);
  });
});

describe('bootable ISO layouts (planBootIso), with stand-in boot files', () => {
  async function bootIso(name: string, withBios: boolean, withEfi: boolean) {
    const kernel = join(work, `${name}-kernel`);
    const initrd = join(work, `${name}-initrd`);
    await writeFile(kernel, bytes(300_000, 8));
    await writeFile(initrd, bytes(700_001, 9));
    const isolinux = bytes(8192, 10);
    isolinux.writeUInt32LE(0x7078c0fb, 0x40); // the isohybrid signature
    const efiFile = bytes(100_000, 11);
    const fat = planFat({ files: [{ path: 'EFI/BOOT/BOOTX64.EFI', size: efiFile.length, write: (s) => s.write(efiFile) }], label: 'EFIBOOT', volumeId: 1, epoch: 0 });
    const plan = planBootIso({
      epoch: 0,
      kernel: { path: kernel, size: 300_000 },
      initrd: { path: initrd, size: 700_001 },
      cmdline: 'console=ttyS0',
      bios: withBios ? { isolinux, ldlinux: bytes(1000, 12), isohdpfx: bytes(432, 13) } : undefined,
      efi: withEfi ? fat : undefined,
      seed: [name],
    });
    const path = join(work, `${name}.iso`);
    const stream = createWriteStream(path);
    const sink = new Sink([stream]);
    await plan.write(sink);
    await sink.end();
    return { path, size: plan.size };
  }

  it('BIOS: isohybrid MBR at 1 MiB alignment, partition 1 over the image', async () => {
    const iso = await bootIso('bios', true, false);
    expect(iso.size % (1024 * 1024)).toBe(0);
    const rep = (await execa('xorriso', ['-indev', iso.path, '-report_el_torito', 'plain', '-report_system_area', 'plain'])).stdout;
    // xorriso says "isohybrid" only when it recognises the real isohdpfx code (the integration test has it).
    expect(rep).toMatch(/System area summary: MBR cyl-align-on$/m);
    expect(rep).toMatch(/El Torito img opts\s*:\s*1\s+boot-info-table isohybrid-suitable/);
    expect(rep).toMatch(new RegExp(`MBR partition\\s*:\\s*1\\s+0x80\\s+0x17\\s+0\\s+${iso.size / 512}`));
  });

  it('BIOS + UEFI: MBR (0x00, 0xEF, 0xEE) and a sound GPT whose ESP is the EFI image', async () => {
    const iso = await bootIso('hybrid', true, true);
    const rep = (await execa('xorriso', ['-indev', iso.path, '-report_el_torito', 'plain', '-report_system_area', 'plain'])).stdout;
    expect(rep).toMatch(/System area summary: MBR cyl-align-on GPT/);
    expect(rep).toMatch(/MBR partition\s*:\s*3\s+0x00\s+0xee\s+1\s+\d+/);
    const efi = /El Torito boot img\s*:\s*2\s+UEFI\s+y\s+none\s+\S+\s+\S+\s+\d+\s+(\d+)/.exec(rep);
    expect(efi, rep).toBeTruthy();
    const sf = JSON.parse((await execa('sfdisk', ['--json', iso.path])).stdout);
    expect(sf.partitiontable.label).toBe('gpt');
    expect(sf.partitiontable.partitions).toHaveLength(1);
    expect(sf.partitiontable.partitions[0].start).toBe(Number(efi![1]) * 4);
    const sg = await execa('sgdisk', ['-v', iso.path], { reject: false });
    expect(sg.stdout).not.toMatch(/CRC|backup|Invalid/i);
    // The ESP the GPT names is a FAT that fsck.fat accepts.
    const img = join(work, 'hybrid-esp.img');
    const all = await readFile(iso.path);
    const p = sf.partitiontable.partitions[0];
    await writeFile(img, all.subarray(p.start * 512, (p.start + p.size) * 512));
    const f = await execa('fsck.fat', ['-n', img], { reject: false });
    expect(f.exitCode, f.stdout).toBe(0);
  });

  it('UEFI only: hidden catalog and image, no system area', async () => {
    const iso = await bootIso('efi', false, true);
    const rep = (await execa('xorriso', ['-indev', iso.path, '-report_el_torito', 'plain', '-report_system_area', 'plain'])).stdout;
    expect(rep).toMatch(/El Torito boot img\s*:\s*1\s+UEFI/);
    expect(rep).not.toMatch(/MBR/);
    const ls = (await execa('xorriso', ['-indev', iso.path, '-find', '/', '--'])).stdout;
    expect(ls.trim().split('\n').filter((l) => l.startsWith("'"))).toEqual(["'/'"]);
  });

  it('a loader without the isohybrid signature is refused clearly', async () => {
    expect(() => isohybridMbr({ code: Buffer.alloc(432), loader: Buffer.alloc(4096), loaderLba: 30, size: 1 << 20, diskId: 1 })).toThrow(/isohybrid signature/);
  });
});
