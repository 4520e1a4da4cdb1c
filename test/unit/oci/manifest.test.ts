import { describe, it, expect } from 'vitest';
import { choosePlatform, parseManifest } from '../../../pkg/oci/manifest.js';
import { parseChallenge } from '../../../pkg/oci/registry/client.js';
import { MediaType, type Index } from '../../../pkg/oci/types.js';

const dg = (c: string) => 'sha256:' + c.repeat(64);
const m = (arch: string, variant?: string, os = 'linux', mediaType: string = MediaType.OciManifest) => ({
  mediaType,
  digest: dg(arch === 'amd64' ? 'a' : variant === 'v7' ? '7' : variant ? '8' : 'b'),
  size: 1,
  platform: { os, architecture: arch, ...(variant ? { variant } : {}) },
});

describe('choosePlatform', () => {
  const idx: Index = { schemaVersion: 2, manifests: [m('arm', 'v7'), m('arm64', 'v8'), m('amd64')] };
  it('picks by architecture', () => {
    expect(choosePlatform(idx, { os: 'linux', architecture: 'amd64' }, 'x').digest).toBe(dg('a'));
    expect(choosePlatform(idx, { os: 'linux', architecture: 'arm64' }, 'x').digest).toBe(dg('8'));
  });
  it('arm64 accepts an entry without variant, and prefers the v8 one', () => {
    const noVar: Index = { schemaVersion: 2, manifests: [m('arm64')] };
    expect(choosePlatform(noVar, { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'x').digest).toBe(dg('b'));
    const both: Index = { schemaVersion: 2, manifests: [m('arm64'), m('arm64', 'v8')] };
    expect(choosePlatform(both, { os: 'linux', architecture: 'arm64' }, 'x').digest).toBe(dg('8'));
  });
  it('skips attestations and other OSes; missing platform is E_IMAGE_NOT_FOUND naming what exists', () => {
    const idx2: Index = { schemaVersion: 2, manifests: [m('unknown', undefined, 'unknown'), m('amd64', undefined, 'windows')] };
    expect(() => choosePlatform(idx2, { os: 'linux', architecture: 'amd64' }, 'img')).toThrow(/img: no image for linux\/amd64 \(index has unknown\/unknown, windows\/amd64\)/);
  });
  it('docker manifest lists work the same', () => {
    const l: Index = { schemaVersion: 2, manifests: [m('amd64', undefined, 'linux', MediaType.DockerManifest)] };
    expect(choosePlatform(l, { os: 'linux', architecture: 'amd64' }, 'x').digest).toBe(dg('a'));
  });
});

describe('parseManifest', () => {
  it('uses the document mediaType, else the declared one, else the shape', () => {
    const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    expect(parseManifest(idx, undefined, 'x').kind).toBe('index');
    const config = { mediaType: MediaType.DockerConfig, digest: 'sha256:' + 'c'.repeat(64), size: 2 };
    const man = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config, layers: [] }));
    expect(parseManifest(man, MediaType.OciIndex, 'x')).toMatchObject({ kind: 'manifest', mediaType: MediaType.DockerManifest });
  });
  it('refuses descriptors that are not: bad digests, sizes that are not byte counts, platforms of the wrong type', () => {
    const config = { mediaType: MediaType.OciConfig, digest: 'sha256:' + 'c'.repeat(64), size: 2 };
    const doc = (over: object) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [], ...over }));
    expect(() => parseManifest(doc({ config: {} }), undefined, 'x')).toThrow(/x: config: digest/);
    expect(() => parseManifest(doc({ layers: [{ ...config, size: -1 }] }), undefined, 'x')).toThrow(/layer 0: size -1 is not a byte count/);
    expect(() => parseManifest(doc({ layers: [{ ...config, size: 1e300 }] }), undefined, 'x')).toThrow(/not a byte count/);
    expect(() => parseManifest(doc({ layers: [{ ...config, digest: 'sha256:../../etc' }] }), undefined, 'x')).toThrow(/is not sha256/);
    const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ ...config, platform: { os: 7 } }] }));
    expect(() => parseManifest(idx, undefined, 'x')).toThrow(/platform.os is not a string/);
  });
  it('rejects schema 1 and garbage', () => {
    expect(() => parseManifest(Buffer.from('{"schemaVersion":1}'), undefined, 'x')).toThrow(/schemaVersion 1/);
    expect(() => parseManifest(Buffer.from('nope'), undefined, 'x')).toThrow(/not JSON/);
  });
});

describe('parseChallenge', () => {
  it('reads Bearer parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
    });
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
  });
});
