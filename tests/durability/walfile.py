"""Reads cairn WAL segments record by record (docs/wal-format.md), so the
durability tests can damage a chosen record: the last one (a torn tail) or
one in the middle (damage that a crash cannot explain).

    for rec in records(path): rec.off, rec.type, rec.frame, rec.index
"""

import os
import struct

HEADER = 24
TYPE_SEGMENT, TYPE_ENTRY, TYPE_HARD_STATE, TYPE_SNAPSHOT = 1, 2, 3, 4


class Record:
    def __init__(self, off, rtype, body_len, synced, index):
        self.off = off            # byte offset in the segment
        self.type = rtype
        self.body_len = body_len
        self.synced = synced
        self.index = index        # entry index (entries only)
        self.frame = (HEADER + body_len + 7) & ~7

    def __repr__(self):
        return "<rec off=%d type=%d len=%d index=%s>" % (
            self.off, self.type, self.body_len, self.index)


def records(path):
    """The records of a segment, in order, up to the first all-zero header
    (the preallocated area). CRCs are not checked: cairn does that."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off + HEADER <= len(data):
        crc, blen, rtype = struct.unpack_from("<IIB", data, off)
        synced, = struct.unpack_from("<Q", data, off + 16)
        if crc == 0 and blen == 0 and rtype == 0:
            break
        index = None
        if rtype == TYPE_ENTRY:
            index, = struct.unpack_from("<Q", data, off + HEADER)
        r = Record(off, rtype, blen, synced, index)
        out.append(r)
        off += r.frame
    return out


def segments(wal_dir):
    """Segment paths, oldest first."""
    names = sorted(n for n in os.listdir(wal_dir) if n.endswith(".wal"))
    return [os.path.join(wal_dir, n) for n in names]


def flip(path, off, n=1):
    """Inverts n bytes at off (in place, fsynced)."""
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(n)
        f.seek(off)
        f.write(bytes(x ^ 0xFF for x in b))
        f.flush()
        os.fsync(f.fileno())
