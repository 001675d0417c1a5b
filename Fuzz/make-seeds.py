#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/corpus/TARGET/: a few small, valid inputs per target that
take the fuzzer past the first checks (a driver's init sequence, well-formed requests, a
plausible bzImage). The input formats are documented at the top of each Fuzz/TARGET/*.swift.

Run from anywhere: python3 Fuzz/make-seeds.py (it replaces the corpora it writes)."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(bytes(data))


class RAM:
    """Guest RAM image from address 0, grown as it is written."""

    def __init__(self):
        self.b = bytearray()

    def put(self, addr, fmt, *values):
        data = struct.pack("<" + fmt, *values)
        if len(self.b) < addr + len(data):
            self.b.extend(bytes(addr + len(data) - len(self.b)))
        self.b[addr:addr + len(data)] = data

    def desc(self, table, i, addr, length, flags=0, nxt=0):
        self.put(table + 16 * i, "QIHH", addr, length, flags, nxt)


NEXT, WRITE, INDIRECT = 1, 2, 4


# --- split-queue: flags u8, size u16, desc u16, avail u16, used u16, edit count u8, edits, RAM.
def split_queue():
    def seed(name, flags, size, desc, avail, used, ram, edits=()):
        head = struct.pack("<BHHHHB", flags, size, desc, avail, used, len(edits))
        for addr, value in edits:
            head += struct.pack("<HH", addr, value)
        write("split-queue", name, head + ram.b)

    desc, avail, used = 0x100, 0x200, 0x280
    r = RAM()  # one chain: readable, writable, writable
    r.desc(desc, 0, 0x380, 16, NEXT, 3)
    r.desc(desc, 3, 0x390, 32, NEXT | WRITE, 5)
    r.desc(desc, 5, 0x3B0, 1, WRITE)
    r.put(avail + 2, "HH", 1, 0)
    r.put(0x3B0, "B", 0)
    seed("chain", 0, 8, desc, avail, used, r)

    r = RAM()  # an indirect table of two entries
    r.desc(desc, 1, 0x300, 32, INDIRECT)
    r.desc(0x300, 0, 0x380, 16, NEXT, 1)
    r.desc(0x300, 1, 0x390, 8, WRITE)
    r.put(avail + 2, "HH", 1, 1)
    seed("indirect", 2, 8, desc, avail, used, r)

    r = RAM()  # EVENT_IDX; the guest publishes a second chain between two runs
    r.desc(desc, 0, 0x380, 4, WRITE)
    r.desc(desc, 1, 0x390, 4, WRITE)
    r.put(avail + 2, "HHH", 1, 0, 1)
    r.put(avail + 4 + 2 * 8, "H", 0)  # used_event
    seed("event-idx", 1 | 2, 8, desc, avail, used, r, edits=[(avail + 2, 2)])

    r = RAM()  # a loop: 0 → 1 → 0
    r.desc(desc, 0, 0x380, 4, NEXT, 1)
    r.desc(desc, 1, 0x380, 4, NEXT, 0)
    r.put(avail + 2, "HH", 1, 0)
    seed("loop", 0, 8, desc, avail, used, r)

    r = RAM()  # a buffer running off the first RAM region into the hole
    r.desc(desc, 0, 0x7FF8, 0x10, 0)
    r.put(avail + 2, "HH", 1, 0)
    seed("across-hole", 0, 8, desc, avail, used, r)


# --- virtio-blk: flags u8, size exponent u8, edit count u8, edits, RAM (rings from 0).
def virtio_blk():
    size = 8
    avail = 16 * size
    used = (avail + 6 + 2 * size + 3) & ~3

    def seed(name, requests, flags=0, indirect=False):
        """requests: (type, sector, data bytes or None, data length, writable data)."""
        r = RAM()
        r.put(used + 4 + 8 * size + 2, "B", 0)  # cover the used ring
        d = 0
        heads = []
        for n, (kind, sector, data, length, writable) in enumerate(requests):
            hdr, buf, status = 0x100 + 0x20 * n, 0x200 + 0x200 * n, 0x1F0 - n
            r.put(hdr, "IIQ", kind, 0, sector)
            if data:
                r.put(buf, "%ds" % len(data), data)
            parts = [(hdr, 16, 0)]
            if length:
                parts.append((buf, length, WRITE if writable else 0))
            parts.append((status, 1, WRITE))
            if indirect:
                table = 0x140 + 0x30 * n
                for i, (a, l, f) in enumerate(parts):
                    r.desc(table, i, a, l, f | (NEXT if i + 1 < len(parts) else 0), i + 1)
                r.desc(0, d, table, 16 * len(parts), INDIRECT)
                heads.append(d)
                d += 1
            else:
                heads.append(d)
                for i, (a, l, f) in enumerate(parts):
                    r.desc(0, d, a, l, f | (NEXT if i + 1 < len(parts) else 0), d + 1)
                    d += 1
        for i, h in enumerate(heads):
            r.put(avail + 4 + 2 * i, "H", h)
        r.put(avail + 2, "H", len(heads))
        write("virtio-blk", name, struct.pack("<BBB", flags, 3, 0) + r.b)

    IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES = 0, 1, 4, 8, 11, 13
    seed("read", [(IN, 1, None, 512, True)])
    seed("write", [(OUT, 2, b"\x5a" * 512, 512, False)], flags=4)
    seed("write-through", [(OUT, 15, b"\x11" * 512, 512, False)])
    seed("flush-get-id", [(FLUSH, 0, None, 0, False), (GET_ID, 0, None, 20, True)], flags=4 | 8)
    seed("discard", [(DISCARD, 3, struct.pack("<QII", 3, 2, 0), 16, False)])
    seed("write-zeroes", [(WRITE_ZEROES, 0, struct.pack("<QII", 4, 4, 1), 16, False)])
    seed("indirect-event-idx", [(IN, 0, None, 512, True), (OUT, 1, b"\x22" * 512, 512, False)], flags=2, indirect=True)
    seed("read-only", [(OUT, 0, b"\x33" * 512, 512, False)], flags=1)


# --- register scripts: op (bit 0 write, bits 1-2 log2 size, bits 3-7 space; 31 = RAM store),
# offset (2 or 4 bytes), value (size bytes for a write, 8 for a RAM store).
class Script:
    def __init__(self, offset_bytes):
        self.ob = offset_bytes
        self.b = bytearray()

    def _off(self, offset):
        return struct.pack("<H" if self.ob == 2 else "<I", offset)

    def w(self, space, offset, value, size=4):
        log = {1: 0, 2: 1, 4: 2, 8: 3}[size]
        self.b += bytes([1 | log << 1 | space << 3]) + self._off(offset) + value.to_bytes(size, "little")

    def r(self, space, offset, size=4):
        log = {1: 0, 2: 1, 4: 2, 8: 3}[size]
        self.b += bytes([log << 1 | space << 3]) + self._off(offset)

    def ram(self, addr, value):
        self.b += bytes([31 << 3]) + self._off(addr) + struct.pack("<Q", value)

    def ram_bytes(self, addr, data):
        data = bytes(data) + bytes(-len(data) % 8)
        for i in range(0, len(data), 8):
            self.ram(addr + i, struct.unpack("<Q", data[i:i + 8])[0])


def blk_read_request(s, desc, avail, hdr=0x800, buf=0xA00, status=0x900):
    """One IN request of 512 bytes at sector 0, head 0, avail.idx 1."""
    s.ram_bytes(hdr, struct.pack("<IIQ", 0, 0, 0))
    s.ram_bytes(desc, struct.pack("<QIHH", hdr, 16, NEXT, 1) + struct.pack("<QIHH", buf, 512, NEXT | WRITE, 2)
                + struct.pack("<QIHH", status, 1, WRITE, 0))
    s.ram(avail, 1 << 16)  # flags 0, idx 1, ring[0] = 0


def virtio_mmio():
    s = Script(2)
    for reg in (0x000, 0x004, 0x008, 0x00C):
        s.r(0, reg)
    s.w(0, 0x070, 1)
    s.w(0, 0x070, 3)
    s.w(0, 0x014, 1)
    s.r(0, 0x010)
    s.w(0, 0x024, 1)
    s.w(0, 0x020, 1)  # VERSION_1
    s.w(0, 0x024, 0)
    s.w(0, 0x020, 1 << 28)  # INDIRECT_DESC
    s.w(0, 0x070, 11)
    s.r(0, 0x070)
    s.w(0, 0x030, 0)
    s.r(0, 0x034)
    s.w(0, 0x038, 8)
    s.w(0, 0x080, 0x1000)
    s.w(0, 0x084, 0)
    s.w(0, 0x090, 0x1080)
    s.w(0, 0x0A0, 0x1100)
    s.w(0, 0x044, 1)
    s.w(0, 0x070, 15)
    blk_read_request(s, 0x1000, 0x1080)
    s.w(0, 0x050, 0)
    s.r(0, 0x060)
    s.w(0, 0x064, 1)
    s.r(0, 0x100, 8)  # capacity
    s.r(0, 0x0FC)
    s.w(0, 0x070, 0)
    write("virtio-mmio", "modern", b"\x00" + s.b)
    write("virtio-mmio", "modern-console", b"\x02" + s.b)

    s = Script(2)  # version 1: queues by page number
    s.w(0, 0x070, 3)
    s.w(0, 0x028, 4096)
    s.w(0, 0x030, 0)
    s.w(0, 0x038, 8)
    s.w(0, 0x03C, 4096)
    s.w(0, 0x040, 1)  # descriptor table at 0x1000, avail 0x1080, used 0x2000
    s.r(0, 0x040)
    s.w(0, 0x070, 7)
    blk_read_request(s, 0x1000, 0x1080)
    s.w(0, 0x050, 0)
    s.r(0, 0x060)
    write("virtio-mmio", "legacy", b"\x01" + s.b)


def modern_init(w, r, notify):
    """A modern driver's sequence over the common config: w(offset, value, size) writes a field,
    r(offset, size) reads one; then one read request, and notify() rings the doorbell."""
    w(0x14, 1, 1)
    w(0x14, 3, 1)
    w(0x00, 1, 4)
    r(0x04, 4)
    w(0x08, 1, 4)
    w(0x0C, 1, 4)  # VERSION_1
    w(0x14, 11, 1)
    r(0x14, 1)
    w(0x16, 0, 2)
    r(0x18, 2)
    w(0x18, 8, 2)
    w(0x20, 0x1000, 4)  # descriptor table as two halves, driver area in one qword
    w(0x24, 0, 4)
    w(0x28, 0x1080, 8)
    w(0x30, 0x1100, 4)
    w(0x1C, 1, 2)
    w(0x14, 15, 1)
    notify()


def virtio_pci():
    CFG, BAR0, BAR1, BAR2, BAR4 = 0, 2, 3, 4, 6
    s = Script(2)
    s.r(CFG, 0x00)
    s.r(CFG, 0x34, 1)
    s.w(CFG, 0x04, 0x0006, 2)  # memory + bus master
    s.w(CFG, 0x18, 0xFFFFFFFF)  # size BAR2, then put it back
    s.r(CFG, 0x18)
    s.w(CFG, 0x18, 0xE0004000)
    s.w(CFG, 0x42, 0x8000, 2)  # MSI-X enable (the first capability, at 0x40)
    s.w(BAR1, 0x00, 0xFEE00000)  # vectors 0 and 1: address, data, unmask
    s.w(BAR1, 0x08, 0x41)
    s.w(BAR1, 0x0C, 0)
    s.w(BAR1, 0x10, 0xFEE00000, 8)
    s.w(BAR1, 0x18, 0x42)
    s.w(BAR1, 0x1C, 0)
    s.w(BAR2, 0x10, 1, 2)  # config vector 1, queue 0 vector 0
    s.w(BAR2, 0x1A, 0, 2)
    blk_read_request(s, 0x1000, 0x1080)
    modern_init(lambda o, v, n: s.w(BAR2, o, v, n), lambda o, n: s.r(BAR2, o, n), lambda: s.w(BAR2, 0x3000, 0, 2))
    s.r(BAR1, 0x800, 8)
    s.r(BAR2, 0x2000, 8)
    s.w(BAR2, 0x14, 0, 1)
    write("virtio-pci", "modern-msix", b"\x00" + s.b)
    write("virtio-pci", "modern-msix-console", b"\x04" + s.b)

    s = Script(2)  # transitional device, legacy driver, INTx
    s.w(CFG, 0x04, 0x0005, 2)
    s.r(BAR0, 0x00)
    s.w(BAR0, 0x12, 3, 1)
    s.w(BAR0, 0x04, 0)
    s.w(BAR0, 0x0E, 0, 2)
    s.r(BAR0, 0x0C, 2)
    # Page 1 at size 256: descriptor table at 0x1000, available ring at 0x2000, used at 0x3000.
    blk_read_request(s, 0x1000, 0x2000)
    s.w(BAR0, 0x08, 1)
    s.w(BAR0, 0x12, 7, 1)
    s.w(BAR0, 0x10, 0, 2)
    s.r(BAR0, 0x13, 1)
    s.r(BAR0, 0x14, 8)
    write("virtio-pci", "legacy", b"\x01" + s.b)

    s = Script(2)  # doorbells in I/O BAR4, INTx; then the capability list
    s.w(CFG, 0x04, 0x0007, 2)
    blk_read_request(s, 0x1000, 0x1080)
    modern_init(lambda o, v, n: s.w(BAR2, o, v, n), lambda o, n: s.r(BAR2, o, n), lambda: s.w(BAR4, 0x00, 0, 2))
    s.r(BAR2, 0x1000, 1)  # ISR
    for off in range(0x40, 0x100, 4):
        s.r(CFG, off)
    write("virtio-pci", "pio-notify", b"\x02" + s.b)


def pci_root():
    CF8, ECAM, MMIO, IO = 0, 1, 2, 3
    s = Script(4)

    def cfg_addr(dev, reg):
        return 0x80000000 | dev << 11 | reg

    for dev in range(4):  # scan bus 0 through mechanism #1
        s.w(CF8, 0, cfg_addr(dev, 0))
        s.r(CF8, 4)
        s.r(CF8, 6, 2)
    for dev in (1, 2):  # enable decoding, size BAR2
        s.w(CF8, 0, cfg_addr(dev, 0x04))
        s.w(CF8, 4, 0x0007, 2)
        s.w(ECAM, dev << 15 | 0x18, 0xFFFFFFFF)
        s.r(ECAM, dev << 15 | 0x18)
    s.w(ECAM, 1 << 15 | 0x18, 0xE0004000)
    s.w(ECAM, 2 << 15 | 0x18, 0xE000C000)
    s.r(MMIO, 0x4012, 2)  # device 1's num_queues
    s.r(MMIO, 0xC000)
    s.r(IO, 0x0000)  # device 1's legacy HOST_FEATURES
    s.w(IO, 0x0012, 3, 1)
    blk_read_request(s, 0x1000, 0x1080)  # device 2, modern, through the MMIO window
    modern_init(lambda o, v, n: s.w(MMIO, 0xC000 + o, v, n), lambda o, n: s.r(MMIO, 0xC000 + o, n),
                lambda: s.w(IO, 0x0100, 0, 2))
    s.r(ECAM, 0x100000)  # bus 1: nobody
    s.r(CF8, 0, 1)
    write("pci-root", "scan", s.b)


def bzimage():
    def image(version=0x020F, setup_sects=1, kernel=64, init_size=0x200_0000, pref=0x100_0000, cmdline=2047,
              initrd_max=0x37FFFFFF, align=0x200000, header_len=0x6A):
        b = bytearray((setup_sects + 1) * 512 + kernel)
        struct.pack_into("<B", b, 0x1F1, setup_sects)
        struct.pack_into("<H", b, 0x1FE, 0xAA55)
        struct.pack_into("<B", b, 0x201, header_len)
        struct.pack_into("<I", b, 0x202, 0x53726448)
        struct.pack_into("<H", b, 0x206, version)
        struct.pack_into("<B", b, 0x211, 1)
        struct.pack_into("<I", b, 0x22C, initrd_max)
        struct.pack_into("<I", b, 0x230, align)
        struct.pack_into("<B", b, 0x234, 1)
        struct.pack_into("<H", b, 0x236, 1)
        struct.pack_into("<I", b, 0x238, cmdline)
        struct.pack_into("<Q", b, 0x258, pref)
        struct.pack_into("<I", b, 0x260, init_size)
        return bytes(b)

    def seed(name, initrd, cmdline, ram_pages, img):
        write("bzimage", name, struct.pack("<IHI", initrd, cmdline, ram_pages) + img)

    seed("with-initrd", 0x10_0000, 100, 0x1_0000, image())
    seed("no-initrd", 0, 0, 0x8000, image())
    seed("tight", 0x2000, 2047, 0x3100, image(init_size=0x200_0000))
    seed("pref-high", 0, 10, 0x1_0000, image(pref=0xFFFF_FFFF_FFFF_F000))
    seed("initrd-max-low", 0x1000, 10, 0x1_0000, image(initrd_max=0x2FFFFFF))
    seed("old-protocol", 0, 0, 0x1_0000, image(version=0x020B))


def size_parser():
    for i, text in enumerate(["512M", "2G", "1536MiB", "65536K", "4096", " 1T ", "8kb", "0", "16384T",
                              "18446744073709551615", "1.5G", "-1G"]):
        write("size-parser", "seed-%02d" % i, text.encode())


# --- virtio-net: flags u8, size exponent u8, frame count u8, frame lengths u16, edit count u8,
# edits, RAM (receive ring at 0, transmit at 0x1000, control at 0x2000).
def virtio_net():
    size = 8

    def rings(base):
        avail = base + 16 * size
        return base, avail, (avail + 6 + 2 * size + 3) & ~3

    def seed(name, flags, frames, rx, tx, ctrl):
        """rx: receive buffer lengths; tx: frame payload lengths; ctrl: command byte strings."""
        r = RAM()
        header = bytes(12)
        for i, _ in enumerate(tx):
            r.put(0x9000 + 0x800 * i, "12s", header)
        for i, c in enumerate(ctrl):
            r.put(0x3000 + 0x40 * i, "%ds" % len(c), c)
        rx_chains = [[(0x5000 + 0x600 * i, l, WRITE)] for i, l in enumerate(rx)]
        tx_chains = [[(0x9000 + 0x800 * i, 12, 0), (0x9000 + 0x800 * i + 0x10, l, 0)] for i, l in enumerate(tx)]
        ctrl_chains = [[(0x3000 + 0x40 * i, len(c), 0), (0x3800 + i, 1, WRITE)] for i, c in enumerate(ctrl)]
        for base, chains in zip((0, 0x1000, 0x2000), (rx_chains, tx_chains, ctrl_chains)):
            table, avail, used = rings(base)
            r.put(used + 4 + 8 * size + 2, "B", 0)
            for i, parts in enumerate(chains):
                for j, (a, l, f) in enumerate(parts):
                    r.desc(table, 2 * i + j, a, l, f | (NEXT if j + 1 < len(parts) else 0), 2 * i + j + 1)
                r.put(avail + 4 + 2 * i, "H", 2 * i)
            r.put(avail + 2, "H", len(chains))
        data = struct.pack("<BBB", flags, 3, len(frames)) + b"".join(struct.pack("<H", f) for f in frames) + struct.pack("<B", 0)
        write("virtio-net", name, data + r.b)

    offloads = struct.pack("<BBQ", 5, 0, 1 << 1)
    seed("mergeable", 1 | 2 | 4, [1514, 3000], [1536, 1536, 1536], [100, 1500], [offloads, bytes([0, 0, 1])])
    seed("legacy-header", 0, [60, 1514], [2048, 2048], [60], [bytes([1, 0]) + struct.pack("<II", 0, 1) + bytes(6)])
    seed("tiny-buffers", 1 | 4, [1514], [1, 1, 1], [0], [bytes([9, 9])])
    seed("backend-full", 2 | 4 | 8, [], [], [200, 300, 400], [])
    seed("multiqueue", 1 | 2 | 4 | 16, [1514, 60], [1536, 1536], [100], [bytes([4, 0, 2, 0])])


def json_seeds():
    for i, text in enumerate(['{"command":"stats"}', '{"command":"balloon","bytes":134217728}',
                              '{"command":"pause"} ', '[1,-2.5e3,true,false,null,"a\\u00e9\\ud83d\\ude00\\n"]',
                              '{"a":{"b":[{}]}}', '{"command":"stats",}', '{"a":1,"a":2}', '"\\ud800"',
                              '[[[[[[[[[1]]]]]]]]]', '01', '{"x":"\x01"}', '\xff']):
        write("json", "seed-%02d" % i, text.encode("latin-1"))


if __name__ == "__main__":
    for target in ("split-queue", "virtio-blk", "virtio-net", "virtio-mmio", "virtio-pci", "pci-root", "bzimage", "size-parser", "json"):
        # Seeds are rewritten; inputs that once found a bug (regression-*) stay.
        directory = os.path.join(ROOT, target)
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            if not name.startswith("regression-"):
                os.remove(os.path.join(directory, name))
    split_queue()
    virtio_blk()
    virtio_net()
    virtio_mmio()
    virtio_pci()
    pci_root()
    bzimage()
    size_parser()
    json_seeds()
