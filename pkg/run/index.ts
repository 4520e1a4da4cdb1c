/** `dockyard run`: boot a build output under qemu. The CLI spawns; this decides. */
export { inspectInput, sniffFile, binaryArch, espArch, type RunInput, type InputKind, type Arch } from './detect.js';
export { openGuestDisk, type GuestDisk, type DiskFormat } from './guestdisk.js';
export { probeAccel, resolveAccel, hostArch, qemuBinary, type Accel, type AccelChoice, type ProbeResult } from './accel.js';
export { findFirmware, DEBIAN_FIRMWARE, type Firmware } from './firmware.js';
export { parseDisk, parsePublish, parseDiskSize, parsePositiveInt, parseArch, type DiskSpec, type Publish } from './options.js';
export { planQemu, prepareRun, renderPlan, decideArch, decideUefi, DEFAULT_MEM_MIB, DEFAULT_CPUS, type QemuPlan, type RunOptions } from './qemu.js';
