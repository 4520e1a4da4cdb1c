#!/usr/bin/env python3
"""List a tar the way test/data/conformance listing.tsv does, with Python's
tarfile as an independent reader (not our own code).

Columns: path type mode uid gid size linkname sha256, archive order."""
import hashlib, sys, tarfile

TYPES = {tarfile.REGTYPE: 'file', tarfile.AREGTYPE: 'file', tarfile.DIRTYPE: 'dir', tarfile.SYMTYPE: 'symlink',
         tarfile.LNKTYPE: 'hardlink', tarfile.CHRTYPE: 'char', tarfile.BLKTYPE: 'block', tarfile.FIFOTYPE: 'fifo'}

def norm(p):
    while p.startswith('./'):
        p = p[2:]
    return p.strip('/')

with tarfile.open(sys.argv[1], 'r:*') as tf:
    for ti in tf:
        t = TYPES.get(ti.type, 'other:' + repr(ti.type))
        sha = ''
        size = 0
        if t == 'file':
            size = ti.size
            sha = hashlib.sha256(tf.extractfile(ti).read()).hexdigest()
        link = ti.linkname if t == 'symlink' else norm(ti.linkname) if t == 'hardlink' else ''
        print('\t'.join([norm(ti.name), t, '%04o' % (ti.mode & 0o7777), str(ti.uid), str(ti.gid), str(size), link, sha]))
