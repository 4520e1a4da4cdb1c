/**
 * The output formats users name with `-f`, and the architectures each
 * exists for, without loading a single writer: the CLI lists them in its
 * help and checks `-f`/`--arch` with them, and only `dockyard build` loads
 * the writers (pkg/formats/index.ts, which checks this table against them
 * when it loads).
 */
export type FormatArch = 'amd64' | 'arm64';

const BOTH: readonly FormatArch[] = ['amd64', 'arm64'];
const AMD64: readonly FormatArch[] = ['amd64'];
const ARM64: readonly FormatArch[] = ['arm64'];

/** Every format by name, in the order the help lists them, with its architectures. */
export const formatArches: ReadonlyMap<string, readonly FormatArch[]> = new Map([
  ['tar', BOTH],
  ['kernel+initrd', BOTH],
  ['tar-kernel-initrd', BOTH],
  ['uki', BOTH],
  ['raw-efi', BOTH],
  ['raw-bios', AMD64],
  ['iso-bios', AMD64],
  ['iso-efi', BOTH],
  ['iso-hybrid', BOTH],
  ['iso-efi-initrd', BOTH],
  ['qcow2-efi', BOTH],
  ['qcow2-bios', AMD64],
  ['vhd', BOTH],
  ['dynamic-vhd', BOTH],
  ['vmdk', BOTH],
  ['azure', BOTH],
  ['gcp', BOTH],
  ['aws', BOTH],
  ['deb', BOTH],
  ['rpm', BOTH],
  ['pacman', BOTH],
  ['kernel+squashfs', BOTH],
  ['kernel+erofs', BOTH],
  ['kernel+iso', BOTH],
  ['sysext', BOTH],
  ['rpi3', ARM64],
]);

export const formatNames: string[] = [...formatArches.keys()];
