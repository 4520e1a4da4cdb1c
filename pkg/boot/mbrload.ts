/**
 * dockyard's BIOS boot loader for raw-bios disks: the 440 bytes of MBR boot
 * code assembled from mbrload.S (beside this file; test/unit/boot checks
 * these bytes against a fresh assembly). It reads three extents the disk
 * writer records in its load table and starts Linux through the x86 boot
 * protocol: no installer, no file system code, no other stage.
 */
import { DockyardError } from '../errors.js';

/** mbrload.S, assembled (as --32; ld -Ttext=0x7c00 --oformat=binary). */
export const MBRLOAD = Buffer.from(
  '6gV8AAD6McCO2I7AjtC8AHz7/IgWBn3HBgR9hH2LNgR9gf6ofXN/ZosEZqP0fGaLRARmo/x8ZotECGajAH2DBgR9DGah/HxmhcB00WaD+EB2A7hAAKPufL7sfIoWBn20Qs0TcldmoQB9oyJ9ZsHoEKIkfYgmJ32LDu58weEIMcCOwL4IfbSHzRVyMWYPtwbufGYBBvR8ZikG/HxmweAJZgEGAH3rnfq4AJCO2I7AjuCO6I7QvADg6gAAIJC+0HyshMB0CbQOuwcAzRDr8vTr/WRvY2t5YXJkOiBkaXNrIHJlYWQgZXJyb3INCgAQAAAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAACQAAAAAAAAAAAAAAAAAAAAAP//AAABkwAA//8AAACTAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAARFlMRAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
  'base64',
);

/** Offset of the load table: "DYLD", then three { lba, sectors, dest } little-endian u32 triples. */
export const MBRLOAD_TABLE = 0x180;

export interface LoadExtent {
  /** First sector on the disk. */
  lba: number;
  sectors: number;
  /** Linear address it is copied to. */
  dest: number;
}

/** The boot code with its load table filled in: low image, kernel, initrd. */
export function mbrLoader(extents: [LoadExtent, LoadExtent, LoadExtent]): Buffer {
  const b = Buffer.from(MBRLOAD);
  if (b.length !== 440 || b.toString('latin1', MBRLOAD_TABLE, MBRLOAD_TABLE + 4) !== 'DYLD') throw new DockyardError('E_INTERNAL', 'mbrload: bad boot code');
  extents.forEach((e, i) => {
    for (const v of [e.lba, e.sectors, e.dest]) if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DockyardError('E_OUTPUT', 'raw-bios: the disk is too big for the BIOS loader (extents must lie below 2 TiB and 4 GiB of memory)');
    const o = MBRLOAD_TABLE + 4 + 12 * i;
    b.writeUInt32LE(e.lba, o);
    b.writeUInt32LE(e.sectors, o + 4);
    b.writeUInt32LE(e.dest, o + 8);
  });
  return b;
}
