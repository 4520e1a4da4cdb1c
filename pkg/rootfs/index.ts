export { imageSegment, imageEntries, prefixDirs, RESOLV_SYMLINK, HOSTS, ROOTFS_VERSION, type ImageSegmentOptions } from './image.js';
export { kernelSegment, type KernelSegmentOptions } from './kernel.js';
export { filesSegment, fileEntries, staticSegment, dirModeOf, type FilesSegmentOptions } from './files.js';
export { initApkDbSegment, ociVolumeSegment, type OciVolumeOptions } from './misc.js';
export { flattenLayers, cleanPath, openLayer, tarEntries } from './layers.js';
export type { Entry, EntryType, Segment } from './entry.js';
