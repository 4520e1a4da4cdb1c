/**
 * GPT and MBR disks judged by independent tools: sgdisk -v (GPT headers,
 * CRCs, backup, overlaps), sfdisk --json (what the kernel's partition
 * parser family reports), mtools reading the FAT partition at its offset
 * (IMG@@OFFSET), fsck.fat on the partition's bytes. Also CRC-32 and GUIDs.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { planFat } from '../../../pkg/disk/fat.js';
import { planGptDisk } from '../../../pkg/disk/gpt.js';
import { planMbrDisk } from '../../../pkg/disk/mbr.js';
import { crc32, crc32Table } from '../../../pkg/disk/crc32.js';
import { guidFrom, guidToBytes, guidFromBytes, PARTITION_TYPE } from '../../../pkg/disk/guid.js';
import { writePlan, patternFile, textFile } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockyard-gpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

function esp() {
  return planFat({ files: [textFile('EFI/BOOT/BOOTX64.EFI', 'MZ-not-really'), patternFile('EFI/Linux/big kernel.efi', 3 * MiB + 7)], label: 'EFI', volumeId: 0x1234abcd, epoch: 0, hiddenSectors: 2048 });
}

async function fsckPartition(img: string, offset: number, size: number): Promise<void> {
  const part = join(dir, 'part.img');
  await writeFile(part, (await readFile(img)).subarray(offset, offset + size));
  const r = await execa('fsck.fat', ['-n', part], { reject: false });
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  await rm(part);
}

describe('CRC-32 and GUIDs', () => {
  it('table CRC-32 equals zlib and the standard check value', () => {
    expect(crc32Table(Buffer.from('123456789'))).toBe(0xcbf43926);
    const b = randomBytes(100_000);
    expect(crc32Table(b)).toBe(crc32(b));
    expect(crc32Table(b.subarray(5000), crc32Table(b.subarray(0, 5000)))).toBe(crc32(b));
  });
  it('GUIDs are deterministic, RFC 9562 shaped, stored mixed-endian', () => {
    const g = guidFrom('disk', 'abc');
    expect(g).toBe(guidFrom('disk', 'abc'));
    expect(g).not.toBe(guidFrom('disk', 'abd'));
    expect(guidFrom('ab', 'c')).not.toBe(guidFrom('a', 'bc'));
    expect(g).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-8[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
    // UEFI spec: the ESP type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B on disk
    expect(guidToBytes(PARTITION_TYPE.esp).toString('hex')).toBe('28732ac11ff8d211ba4b00a0c93ec93b');
    expect(guidFromBytes(guidToBytes(g))).toBe(g);
  });
});

describe('GPT', () => {
  it('sgdisk -v finds no problems; sfdisk reads the partitions; mtools and fsck.fat read the ESP in place', async () => {
    const fat = esp();
    const data = patternFile('data', 5 * MiB + 100);
    const diskGuid = guidFrom('test', 'disk');
    const espGuid = guidFrom('test', 'esp');
    const dataGuid = guidFrom('test', 'data');
    const plan = planGptDisk({
      diskGuid,
      partitions: [
        { name: 'EFI System', typeGuid: PARTITION_TYPE.esp, uniqueGuid: espGuid, size: fat.size, bootable: true, write: (s) => fat.write(s) },
        { name: 'dockyard data ünï', typeGuid: PARTITION_TYPE.linux, uniqueGuid: dataGuid, size: data.size, write: (s) => data.write(s) },
      ],
    });
    expect(plan.partitionOffsets[0]).toBe(MiB);
    expect(plan.partitionOffsets[1] % MiB).toBe(0);
    expect(plan.size % MiB).toBe(0);
    const img = join(dir, 'gpt.img');
    const w = await writePlan(plan, img);
    expect(w.bytes).toBe(plan.size);

    const v = await execa('sgdisk', ['-v', img], { reject: false });
    expect(v.exitCode, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/No problems found/);

    const j = JSON.parse((await execa('sfdisk', ['--json', img])).stdout).partitiontable;
    expect(j.label).toBe('gpt');
    expect(j.id).toBe(diskGuid);
    expect(j.sectorsize).toBe(512);
    expect(j.firstlba).toBe(34);
    expect(j.lastlba).toBe(plan.size / 512 - 34);
    expect(j.partitions).toHaveLength(2);
    expect(j.partitions[0]).toMatchObject({ start: 2048, size: Math.ceil(fat.size / 512), type: PARTITION_TYPE.esp, uuid: espGuid, name: 'EFI System', attrs: 'LegacyBIOSBootable' });
    expect(j.partitions[1]).toMatchObject({ start: plan.partitionOffsets[1] / 512, size: Math.ceil(data.size / 512), type: PARTITION_TYPE.linux, uuid: dataGuid, name: 'dockyard data ünï' });

    const m = await execa('mdir', ['-/', '-b', '-i', `${img}@@${plan.partitionOffsets[0]}`, '::']);
    expect(m.stdout.split('\n').sort()).toEqual(['::/EFI/', '::/EFI/BOOT/', '::/EFI/BOOT/BOOTX64.EFI', '::/EFI/Linux/', '::/EFI/Linux/big kernel.efi']);
    expect((await execa('mtype', ['-i', `${img}@@1M`, '::/EFI/BOOT/BOOTX64.EFI'])).stdout).toBe('MZ-not-really');
    await fsckPartition(img, plan.partitionOffsets[0], fat.size);

    const raw = await readFile(img);
    expect(raw.subarray(plan.partitionOffsets[1], plan.partitionOffsets[1] + 32).toString()).toBe('data:0;data:0;data:0;data:0;data');
    // protective MBR: one 0xEE record from LBA 1 over the disk, no boot code
    expect(raw[446 + 4]).toBe(0xee);
    expect(raw.readUInt32LE(446 + 8)).toBe(1);
    expect(raw.readUInt32LE(446 + 12)).toBe(plan.size / 512 - 1);
    expect(raw.subarray(0, 440).every((b) => b === 0)).toBe(true);
  });

  it('honours a given size, carries BIOS boot code, refuses a disk too small, and is deterministic', async () => {
    const fat = esp();
    const code = Buffer.alloc(440, 0x90);
    const mk = (size?: number) =>
      planGptDisk({
        diskGuid: guidFrom('d'),
        size,
        biosBootCode: code,
        partitions: [{ name: 'EFI System', typeGuid: PARTITION_TYPE.esp, uniqueGuid: guidFrom('p'), size: fat.size, write: (s) => fat.write(s) }],
      });
    const plan = mk(64 * MiB);
    expect(plan.size).toBe(64 * MiB);
    const img = join(dir, 'sized.img');
    const a = await writePlan(plan, img);
    const v = await execa('sgdisk', ['-v', img], { reject: false });
    expect(v.stdout, v.stdout + v.stderr).toMatch(/No problems found/);
    const raw = await readFile(img);
    expect(raw.subarray(0, 440).equals(code)).toBe(true);
    expect(raw.subarray(raw.length - 512, raw.length - 504).toString()).toBe('EFI PART');
    const b = await writePlan(mk(64 * MiB), join(dir, 'sized2.img'));
    expect(b.sha256).toBe(a.sha256);
    expect(() => mk(MiB + fat.size)).toThrow(/cannot hold its partitions/);
  });
});

describe('MBR', () => {
  it('sfdisk reads one bootable FAT partition at 1 MiB; mtools reads it in place; the boot code is the caller\u2019s', async () => {
    const fat = esp();
    const code = Buffer.alloc(440, 0xf4);
    const plan = planMbrDisk({ bootCode: code, diskSignature: 0xcafe1234, partitions: [{ type: 0x0e, bootable: true, size: fat.size, write: (s) => fat.write(s) }] });
    const img = join(dir, 'mbr.img');
    await writePlan(plan, img);
    const j = JSON.parse((await execa('sfdisk', ['--json', img])).stdout).partitiontable;
    expect(j.label).toBe('dos');
    expect(j.id).toBe('0xcafe1234');
    expect(j.partitions).toHaveLength(1);
    expect(j.partitions[0]).toMatchObject({ start: 2048, size: Math.ceil(fat.size / 512), type: 'e', bootable: true });
    expect((await execa('mtype', ['-i', `${img}@@1M`, '::/EFI/BOOT/BOOTX64.EFI'])).stdout).toBe('MZ-not-really');
    await fsckPartition(img, MiB, fat.size);
    const raw = await readFile(img);
    expect(raw.subarray(0, 440).equals(code)).toBe(true);
    expect(raw.readUInt16LE(510)).toBe(0xaa55);
  });
});
