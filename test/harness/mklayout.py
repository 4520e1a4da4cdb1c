#!/usr/bin/env python3
"""Writes a one-platform OCI image layout whose single layer holds the entries
described in a JSON file: [{"name", "type": file|dir|symlink|hardlink, "linkname", "data"}].
Used to build hostile layers that our own writer would never produce.
usage: mklayout.py OUTDIR REF ENTRIES.json"""
import gzip, hashlib, io, json, os, sys, tarfile

out, ref, spec = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
os.makedirs(os.path.join(out, 'blobs', 'sha256'), exist_ok=True)

def blob(b):
    d = hashlib.sha256(b).hexdigest()
    open(os.path.join(out, 'blobs', 'sha256', d), 'wb').write(b)
    return 'sha256:' + d, len(b)

raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode='w', format=tarfile.GNU_FORMAT) as t:
    for e in spec:
        ti = tarfile.TarInfo(e['name'])
        ti.mtime = 0
        ti.mode = 0o755 if e['type'] in ('dir', 'symlink') else 0o644
        data = e.get('data', '').encode()
        if e['type'] == 'dir':
            ti.type = tarfile.DIRTYPE
        elif e['type'] == 'symlink':
            ti.type, ti.linkname = tarfile.SYMTYPE, e['linkname']
        elif e['type'] == 'hardlink':
            ti.type, ti.linkname = tarfile.LNKTYPE, e['linkname']
        else:
            ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if e['type'] == 'file' else None)
tar = raw.getvalue()
gz = gzip.compress(tar, mtime=0)
layer, lsize = blob(gz)
config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {'Cmd': ['/bin/true']},
                     'rootfs': {'type': 'layers', 'diff_ids': ['sha256:' + hashlib.sha256(tar).hexdigest()]}}, sort_keys=True).encode()
cdig, csize = blob(config)
manifest = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                       'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': cdig, 'size': csize},
                       'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': layer, 'size': lsize}]}, sort_keys=True).encode()
mdig, msize = blob(manifest)
index_path = os.path.join(out, 'index.json')
index = json.load(open(index_path)) if os.path.exists(index_path) else {'schemaVersion': 2, 'manifests': []}
index['manifests'].append({'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': mdig, 'size': msize,
                           'platform': {'architecture': 'amd64', 'os': 'linux'},
                           'annotations': {'org.opencontainers.image.ref.name': ref, 'io.containerd.image.name': ref}})
json.dump(index, open(index_path, 'w'))
open(os.path.join(out, 'oci-layout'), 'w').write('{"imageLayoutVersion":"1.0.0"}')
