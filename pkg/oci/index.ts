export * from './types.js';
export { parseReference, parseRegistryReference, canonicalRef, isLoopbackHost, apiHost, type ImageReference, type RegistryReference, type FileReference } from './reference.js';
export { choosePlatform, parseManifest, manifestAccept } from './manifest.js';
export { OciLayout, DockerArchive, RefNameAnnotation, ContainerdNameAnnotation, blobPath, refNameMatches } from './layout.js';
export { resolveFrom, type ManifestSource, type RawManifest, type Resolved } from './source.js';
export { RegistryClient, defaultRegistryOptions, type RegistryOptions } from './registry/client.js';
export { dockerConfigCredentials, dockerConfigPath, type Credentials, type CredentialLookup } from './registry/credentials.js';
export { pushImage } from './registry/push.js';
export { sha256Digest, VerifyDigest } from './digest.js';
