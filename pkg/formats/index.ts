/** The output formats, by the name users pass to `-f`. */
import { DockyardError } from '../errors.js';
import type { Format } from './format.js';
import { formatArches, formatNames } from './names.js';
import { tarFormat } from './tar/tar.js';
import { kernelInitrdFormat, tarKernelInitrdFormat } from './initrd/initrd.js';
import { ukiFormat } from './uki/index.js';
import { rawEfiFormat } from './raw-efi/index.js';
import { rawBiosFormat } from './raw-bios/index.js';
import { isoBiosFormat } from './iso-bios/index.js';
import { isoEfiFormat } from './iso-efi/index.js';
import { isoHybridFormat } from './iso-hybrid/index.js';
import { isoEfiInitrdFormat } from './iso-efi-initrd/index.js';
import { debFormat } from './deb/index.js';
import { pacmanFormat } from './pacman/index.js';
import { rpmFormat } from './rpm/index.js';
import { kernelErofsFormat, kernelSquashfsFormat } from './kernelfs/index.js';
import { kernelIsoFormat } from './kernel-iso/index.js';
import { sysextFormat } from './sysext/index.js';
import { rpi3Format } from './rpi3/index.js';
import { qcow2EfiFormat, qcow2BiosFormat, vhdFormat, dynamicVhdFormat, vmdkFormat, azureFormat, gcpFormat, awsFormat } from './vdisk/index.js';

const formats = new Map<string, Format>([
  [tarFormat.name, tarFormat],
  [kernelInitrdFormat.name, kernelInitrdFormat],
  [tarKernelInitrdFormat.name, tarKernelInitrdFormat],
  [ukiFormat.name, ukiFormat],
  [rawEfiFormat.name, rawEfiFormat],
  [rawBiosFormat.name, rawBiosFormat],
  [isoBiosFormat.name, isoBiosFormat],
  [isoEfiFormat.name, isoEfiFormat],
  [isoHybridFormat.name, isoHybridFormat],
  [isoEfiInitrdFormat.name, isoEfiInitrdFormat],
  [qcow2EfiFormat.name, qcow2EfiFormat],
  [qcow2BiosFormat.name, qcow2BiosFormat],
  [vhdFormat.name, vhdFormat],
  [dynamicVhdFormat.name, dynamicVhdFormat],
  [vmdkFormat.name, vmdkFormat],
  [azureFormat.name, azureFormat],
  [gcpFormat.name, gcpFormat],
  [awsFormat.name, awsFormat],
  [debFormat.name, debFormat],
  [rpmFormat.name, rpmFormat],
  [pacmanFormat.name, pacmanFormat],
  [kernelSquashfsFormat.name, kernelSquashfsFormat],
  [kernelErofsFormat.name, kernelErofsFormat],
  [kernelIsoFormat.name, kernelIsoFormat],
  [sysextFormat.name, sysextFormat],
  [rpi3Format.name, rpi3Format],
]);

// names.ts describes these writers without loading them: it must say what they say.
{
  const said = [...formatArches].map(([n, a]) => `${n}:${a.join(',')}`).join(' ');
  const are = [...formats.values()].map((f) => `${f.name}:${(f.arches ?? ['amd64', 'arm64']).join(',')}`).join(' ');
  if (said !== are) throw new DockyardError('E_INTERNAL', `pkg/formats/names.ts lists ${said}; the writers are ${are}`);
}

export { formatNames };

export function getFormat(name: string): Format {
  const f = formats.get(name);
  if (!f) throw new DockyardError('E_UNSUPPORTED_FORMAT', `unknown output format "${name}" (known: ${formatNames.join(', ')})`);
  return f;
}

export type { Format, FormatContext, OutputFile, ProgressEvent } from './format.js';
