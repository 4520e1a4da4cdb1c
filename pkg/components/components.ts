/**
 * Components: the bootloaders and firmware pieces a format needs, shipped as
 * OCI images and resolved like any image of the spec (registry, layout,
 * archive, cache). Each has a default reference; `--component NAME=REF`
 * overrides it. `npm run fixtures` builds every default from Debian packages
 * under the default references themselves, so a cache loaded from that
 * layout builds every format offline.
 *
 * What each image holds (same paths for amd64 and arm64 where both exist):
 *   systemd-boot  /usr/lib/systemd/boot/efi/linux{x64,aa64}.efi.stub, systemd-boot{x64,aa64}.efi
 *   syslinux      /usr/lib/ISOLINUX/isolinux.bin, /usr/lib/ISOLINUX/isohdpfx.bin,
 *                 /usr/lib/syslinux/modules/bios/*.c32, /usr/lib/syslinux/mbr/{mbr,gptmbr}.bin  (amd64 only)
 *   grub-efi      /usr/lib/grub/{x86_64,arm64}-efi/monolithic/grub{x64,aa64}.efi
 *   u-boot-rpi    /usr/lib/u-boot/rpi_3/u-boot.bin  (arm64 only)
 *   raspi-firmware /usr/lib/raspi-firmware/{bootcode.bin,start*.elf,fixup*.dat},
 *                 /usr/share/doc/raspi-firmware/copyright  (arm64 only)
 */
import { DockyardError } from '../errors.js';
import type { BlobStore, ImageHandle } from '../oci/types.js';
import { flattenLayers } from '../rootfs/layers.js';
import { collectBody, MaxCollectedBytes } from '../archive/sink.js';

export const DEFAULT_COMPONENTS: Record<string, string> = {
  'systemd-boot': 'dockyard.dev/boot/systemd-boot:bookworm',
  syslinux: 'dockyard.dev/boot/syslinux:bookworm',
  'grub-efi': 'dockyard.dev/boot/grub-efi:bookworm',
  'u-boot-rpi': 'dockyard.dev/boot/u-boot-rpi:bookworm',
  'raspi-firmware': 'dockyard.dev/boot/raspi-firmware:bookworm',
};

export function componentRef(name: string, overrides: Record<string, string> = {}): string {
  const ref = overrides[name] ?? DEFAULT_COMPONENTS[name];
  if (!ref) throw new DockyardError('E_INTERNAL', `unknown component "${name}"`);
  return ref;
}

/** Parse `NAME=REF` flags. */
export function parseComponentFlags(list: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of list) {
    const i = s.indexOf('=');
    const name = s.slice(0, i);
    if (i <= 0 || i === s.length - 1) throw new DockyardError('E_USAGE', `--component wants NAME=REF, got "${s}"`);
    if (!(name in DEFAULT_COMPONENTS)) throw new DockyardError('E_USAGE', `--component: unknown component "${name}" (known: ${Object.keys(DEFAULT_COMPONENTS).join(', ')})`);
    out[name] = s.slice(i + 1);
  }
  return out;
}

/** Resolved components a format can read files from. */
export class Components {
  constructor(
    private readonly handles: Map<string, ImageHandle>,
    private readonly store: BlobStore,
  ) {}

  has(name: string): boolean {
    return this.handles.has(name);
  }

  handle(name: string): ImageHandle {
    const h = this.handles.get(name);
    if (!h) throw new DockyardError('E_INTERNAL', `component "${name}" was not resolved (the format must list it in components())`);
    return h;
  }

  private readonly read = new Map<string, Promise<Map<string, Buffer>>>();

  /**
   * The bytes of files in a component image (paths without leading `/`);
   * missing ones are an error. Read once per build (formats side by side ask
   * for the same stub).
   */
  readFiles(name: string, paths: string[]): Promise<Map<string, Buffer>> {
    const key = [name, ...paths].join('\0');
    let p = this.read.get(key);
    if (!p) {
      p = this.readFilesOnce(name, paths);
      this.read.set(key, p);
      p.catch(() => this.read.delete(key));
    }
    return p;
  }

  private async readFilesOnce(name: string, paths: string[]): Promise<Map<string, Buffer>> {
    const h = this.handle(name);
    const want = new Set(paths.map((p) => p.replace(/^\/+/, '')));
    const got = new Map<string, Buffer>();
    for await (const e of flattenLayers(this.store, h.layers, `component ${name} (${h.ref})`)) {
      if (want.has(e.path) && e.type === 'file') got.set(e.path, await collectBody(e.body, MaxCollectedBytes, `component ${name} (${h.ref}): /${e.path}`));
    }
    const missing = [...want].filter((p) => !got.has(p));
    if (missing.length) throw new DockyardError('E_COMPONENT', `component ${name} (${h.ref}) has no /${missing.join(', /')} for ${h.platform.architecture}`);
    return got;
  }

  async readFile(name: string, path: string): Promise<Buffer> {
    return (await this.readFiles(name, [path])).get(path.replace(/^\/+/, ''))!;
  }
}
