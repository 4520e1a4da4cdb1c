/**
 * The formats that wrap a build's raw disk in a container, or copy it, with
 * LinuxKit's output names (moby/build/output.go) where it has the format:
 *
 *   qcow2-efi    NAME-efi.qcow2      qcow2 v3, sparse             (pkg/vdisk/qcow2.ts)
 *   vhd          NAME.vhd            fixed VHD                    (pkg/vdisk/vhd.ts)
 *   dynamic-vhd  NAME.vhd            dynamic VHD, 2 MiB blocks    (pkg/vdisk/vhd.ts)
 *   vmdk         NAME.vmdk           streamOptimized VMDK         (pkg/vdisk/vmdk.ts)
 *   azure        NAME-azure.vhd      fixed VHD, size a multiple of 1 MiB (Azure's rule)
 *   gcp          NAME.img.tar.gz     disk.raw in a GNU tar, gzip  (pkg/vdisk/gcp.ts); whole GiB (GCE's
 *                                    disk sizes are whole GB; LinuxKit's gcp disk is 1G)
 *   aws          NAME.raw            the raw disk (for EC2 import-snapshot)
 *   qcow2-bios   NAME.qcow2          the raw BIOS disk (pkg/formats/raw-bios) as qcow2; amd64 only
 *
 * All but qcow2-bios hold the raw EFI disk (pkg/formats/raw-efi); azure and
 * gcp grow it to their multiple with the ESP unchanged (see planRawEfi). The
 * raw disk is planned and spooled once per build (./spooled.ts): the
 * containers convert from it, and aws, vhd and azure are that file copied
 * into place (vhd and azure with the fixed VHD footer after it).
 */
import { writeQcow2 } from '../../vdisk/qcow2.js';
import { writeDynamicVhd, fixedVhdFooter } from '../../vdisk/vhd.js';
import { writeVmdk } from '../../vdisk/vmdk.js';
import { writeGcpTarGz } from '../../vdisk/gcp.js';
import { diskFormat } from './spooled.js';
import { EFI_DISK } from '../raw-efi/index.js';
import { BIOS_DISK } from '../raw-bios/index.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const qcow2EfiFormat = diskFormat({ name: 'qcow2-efi', disk: EFI_DISK, file: (n) => `${n}-efi.qcow2`, convert: writeQcow2 });
export const vhdFormat = diskFormat({ name: 'vhd', disk: EFI_DISK, file: (n) => `${n}.vhd`, tail: fixedVhdFooter });
export const dynamicVhdFormat = diskFormat({ name: 'dynamic-vhd', disk: EFI_DISK, file: (n) => `${n}.vhd`, convert: writeDynamicVhd });
export const vmdkFormat = diskFormat({ name: 'vmdk', disk: EFI_DISK, file: (n) => `${n}.vmdk`, convert: writeVmdk, heavy: true });
export const azureFormat = diskFormat({ name: 'azure', disk: EFI_DISK, file: (n) => `${n}-azure.vhd`, tail: fixedVhdFooter, align: MiB });
export const gcpFormat = diskFormat({ name: 'gcp', disk: EFI_DISK, file: (n) => `${n}.img.tar.gz`, convert: writeGcpTarGz, align: GiB, heavy: true });
export const awsFormat = diskFormat({ name: 'aws', disk: EFI_DISK, file: (n) => `${n}.raw` });
export const qcow2BiosFormat = diskFormat({ name: 'qcow2-bios', file: (n) => `${n}.qcow2`, disk: BIOS_DISK, convert: writeQcow2 });

