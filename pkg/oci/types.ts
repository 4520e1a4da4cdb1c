/**
 * OCI image-spec and Docker schema-2 data types, and the interfaces the
 * resolve stage offers the later stages. This module is a leaf: it imports
 * nothing but node builtins and errors.
 */
import type { Readable } from 'node:stream';

export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Platform {
  architecture: string; // amd64 | arm64 | ...
  os: string; // linux
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string; // "sha256:<hex>"
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The parts of an image config (OCI or Docker) that we read. */
export interface ImageConfigFile {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    WorkingDir?: string;
    User?: string;
    Labels?: Record<string, string> | null;
  };
  rootfs?: { type: string; diff_ids: string[] };
}

/** An image resolved for one platform: everything later stages need. */
export interface ImageHandle {
  /** The reference as the user wrote it. */
  ref: string;
  /** Canonical form, e.g. `docker.io/library/alpine:3.19`. */
  canonical: string;
  /** Digest of the top-level thing the reference named (index or manifest). */
  digest: string;
  /** Digest of the platform manifest chosen. */
  manifestDigest: string;
  manifest: Manifest;
  config: ImageConfigFile;
  /** Layers in application order (bottom first). */
  layers: Descriptor[];
  platform: Platform;
}

/** Content-addressed blob storage; the cache implements it. */
export interface BlobStore {
  has(digest: string): Promise<boolean>;
  /**
   * Stream a blob, hashed as it flows: bytes that do not hash to `digest`
   * fail the stream at its end. `what` names the blob in messages.
   */
  open(digest: string, what?: string): Promise<Readable>;
  /** Hash a stored blob in full (after a read that stopped early); a corrupt one is removed and reported. */
  verify?(digest: string, what?: string): Promise<void>;
  /** Path on disk of a blob, if the store is file-backed (lets formats copy cheaply). */
  pathOf?(digest: string): string | undefined;
  size(digest: string): Promise<number>;
}

/**
 * Where images come from. Implementations: registry, OCI layout / archive,
 * docker archive, and the cache itself.
 */
export interface ImageSource {
  /** Resolve `ref` for `platform`, fetching manifests/config (not layers). */
  resolve(ref: string, platform: Platform): Promise<ImageHandle>;
  /** Stream a blob, verifying its digest as it flows. */
  fetchBlob(ref: string, desc: Descriptor): Promise<Readable>;
}
