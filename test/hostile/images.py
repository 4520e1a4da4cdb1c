#!/usr/bin/env python3
"""Writes hostile images into an OCI image layout (appending to its
index.json): layers no honest writer produces, written with Python's own
tarfile and gzip so that dockyard's writer is not the one judging itself.

usage: images.py OUTDIR SPEC.json
SPEC: a list of images:
  {"ref": "dockyard.test/hostile/NAME:1",
   "config": {... merged into the image config's "config" ...},   optional
   "rawConfig": {... the whole image config, as is ...},            optional
   "layers": [LAYER, ...]}
LAYER, one of:
  {"entries": [ENTRY, ...]}                 a gzip'd tar (PAX format); "gzip": false for a plain tar
  {"zeros": BYTES, "name": "big"}           one file of that many zero bytes (a small gzip that inflates hugely)
  {"shortBody": {"name": N, "size": S, "body": "abc"}}   a header declaring S bytes followed by fewer, then the end
ENTRY: {"name", "type": file|dir|symlink|hardlink|char|fifo, "linkname", "data",
        "mode", "uid", "gid", "devmajor", "devminor", "pax": {record: value}}
"""
import gzip, hashlib, io, json, os, sys, tarfile, zlib

out, spec = sys.argv[1], json.load(open(sys.argv[2]))
os.makedirs(os.path.join(out, 'blobs', 'sha256'), exist_ok=True)


def blob(b):
    d = hashlib.sha256(b).hexdigest()
    open(os.path.join(out, 'blobs', 'sha256', d), 'wb').write(b)
    return 'sha256:' + d, len(b)


TYPES = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE,
         'hardlink': tarfile.LNKTYPE, 'char': tarfile.CHRTYPE, 'fifo': tarfile.FIFOTYPE}


def entries_tar(entries):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e['name'])
            ti.mtime = 0
            ti.type = TYPES[e.get('type', 'file')]
            ti.mode = e.get('mode', 0o755 if ti.type in (tarfile.DIRTYPE, tarfile.SYMTYPE) else 0o644)
            ti.uid, ti.gid = e.get('uid', 0), e.get('gid', 0)
            ti.linkname = e.get('linkname', '')
            ti.devmajor, ti.devminor = e.get('devmajor', 0), e.get('devminor', 0)
            if 'pax' in e:
                ti.pax_headers = dict(e['pax'])
            data = e.get('data', '').encode()
            if ti.type == tarfile.REGTYPE:
                ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return raw.getvalue()


def gz(b):
    return gzip.compress(b, mtime=0)


def layer_bytes(l):
    """(gzip bytes, sha256 of the uncompressed tar)"""
    if 'entries' in l:
        tar = entries_tar(l['entries'])
        return (gz(tar) if l.get('gzip', True) else tar), hashlib.sha256(tar).hexdigest()
    if 'zeros' in l:
        n = l['zeros']
        ti = tarfile.TarInfo(l.get('name', 'big'))
        ti.size, ti.mtime, ti.mode = n, 0, 0o644
        head = ti.tobuf(format=tarfile.USTAR_FORMAT)
        c = zlib.compressobj(1, zlib.DEFLATED, 31)
        h = hashlib.sha256(head)
        parts = [c.compress(head)]
        chunk = bytes(1 << 20)
        left = n + (512 - n % 512) % 512 + 1024
        while left > 0:
            k = min(left, len(chunk))
            parts.append(c.compress(chunk[:k]))
            h.update(chunk[:k])
            left -= k
        parts.append(c.flush())
        return b''.join(parts), h.hexdigest()
    if 'shortBody' in l:
        s = l['shortBody']
        ti = tarfile.TarInfo(s['name'])
        ti.size, ti.mtime, ti.mode = s['size'], 0, 0o644
        tar = ti.tobuf(format=tarfile.GNU_FORMAT) + s.get('body', '').encode()
        return gz(tar), hashlib.sha256(tar).hexdigest()
    raise SystemExit('unknown layer ' + json.dumps(l))


index_path = os.path.join(out, 'index.json')
index = json.load(open(index_path)) if os.path.exists(index_path) else {'schemaVersion': 2, 'manifests': []}
for img in spec:
    layers, diff_ids = [], []
    for l in img['layers']:
        b, diff = layer_bytes(l)
        d, n = blob(b)
        mt = 'application/vnd.oci.image.layer.v1.tar' + ('' if l.get('gzip', True) is False else '+gzip')
        layers.append({'mediaType': mt, 'digest': d, 'size': n})
        diff_ids.append('sha256:' + diff)
    cfg = img.get('rawConfig')
    if cfg is None:
        cfg = {'architecture': 'amd64', 'os': 'linux', 'config': {'Cmd': ['/bin/true'], **img.get('config', {})},
               'rootfs': {'type': 'layers', 'diff_ids': diff_ids}}
    config = json.dumps(cfg, sort_keys=True).encode()
    cdig, csize = blob(config)
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                           'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': cdig, 'size': csize},
                           'layers': layers}, sort_keys=True).encode()
    mdig, msize = blob(manifest)
    index['manifests'].append({'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': mdig, 'size': msize,
                               'platform': {'architecture': 'amd64', 'os': 'linux'},
                               'annotations': {'org.opencontainers.image.ref.name': img['ref'], 'io.containerd.image.name': img['ref']}})
json.dump(index, open(index_path, 'w'))
open(os.path.join(out, 'oci-layout'), 'w').write('{"imageLayoutVersion":"1.0.0"}')
