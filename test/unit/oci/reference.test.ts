import { describe, it, expect } from 'vitest';
import { parseReference, isLoopbackHost, apiHost } from '../../../pkg/oci/reference.js';

const d = 'sha256:' + 'a'.repeat(64);

describe('parseReference: docker normalisation', () => {
  const cases: [string, string][] = [
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.19', 'docker.io/library/alpine:3.19'],
    ['linuxkit/init:v1', 'docker.io/linuxkit/init:v1'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['index.docker.io/library/alpine:1', 'docker.io/library/alpine:1'],
    ['localhost/foo', 'localhost/foo:latest'],
    ['127.0.0.1:5000/fixtures/init:1', '127.0.0.1:5000/fixtures/init:1'],
    ['ghcr.io/a/b/c:t', 'ghcr.io/a/b/c:t'],
    [`alpine@${d}`, `docker.io/library/alpine@${d}`],
    [`alpine:3@${d}`, `docker.io/library/alpine:3@${d}`],
    ['[::1]:5000/x', '[::1]:5000/x:latest'],
    ['my_repo/a__b.c-d', 'docker.io/my_repo/a__b.c-d:latest'],
  ];
  for (const [raw, want] of cases) {
    it(`${raw} → ${want}`, () => {
      const r = parseReference(raw);
      expect(r.canonical).toBe(want);
    });
  }

  it('splits host, path, tag, digest', () => {
    const r = parseReference(`host.example:5000/a/b:v1@${d}`);
    expect(r).toMatchObject({ transport: 'registry', domain: 'host.example:5000', path: 'a/b', tag: 'v1', digest: d });
  });

  for (const bad of ['', 'Alpine', 'alpine:', 'alpine@sha256:abc', 'a//b', 'alpine:-x', ' alpine', 'a/b:c:d', 'UPPER.io/x/Y']) {
    it(`rejects "${bad}" with E_IMAGE_REF`, () => {
      expect(() => parseReference(bad)).toThrow(expect.objectContaining({ code: 'E_IMAGE_REF' }));
    });
  }
});

describe('parseReference: transports', () => {
  it('oci-layout with and without a name (path ends at the first colon, as skopeo)', () => {
    expect(parseReference('oci-layout:/tmp/x')).toMatchObject({ transport: 'oci-layout', file: '/tmp/x', select: undefined });
    expect(parseReference('oci-layout:/tmp/x:127.0.0.1:5000/f/a:1')).toMatchObject({ file: '/tmp/x', select: '127.0.0.1:5000/f/a:1' });
  });
  it('oci-archive and docker-archive', () => {
    expect(parseReference('oci-archive:img.tar')).toMatchObject({ transport: 'oci-archive', file: 'img.tar' });
    expect(parseReference('docker-archive:s.tar:foo:1')).toMatchObject({ transport: 'docker-archive', file: 's.tar', select: 'foo:1' });
    expect(() => parseReference('oci-archive:')).toThrow(expect.objectContaining({ code: 'E_IMAGE_REF' }));
  });
});

describe('hosts', () => {
  it('loopback hosts get plain HTTP', () => {
    for (const h of ['localhost:5000', '127.0.0.1:5000', '127.9.8.7', '[::1]:5000', 'localhost']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['10.0.0.1:5000', 'example.com', '128.0.0.1', 'localhost.example.com']) expect(isLoopbackHost(h)).toBe(false);
  });
  it('docker.io API host', () => {
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(apiHost('ghcr.io')).toBe('ghcr.io');
  });
});
