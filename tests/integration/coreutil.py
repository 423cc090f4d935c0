"""A small, independent ELF core parser for the dump and core tests.

It reads what the tests check (header, program headers, notes, segment
bytes) with the struct module only, so heapscan's writer is judged by code
that shares nothing with it.
"""
import os
import struct

PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS, NT_FPREGSET, NT_PRPSINFO, NT_AUXV = 1, 2, 3, 6
NT_X86_XSTATE, NT_SIGINFO, NT_FILE = 0x202, 0x53494749, 0x46494C45


class Core:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        if d[:4] != b"\x7fELF":
            raise ValueError("not ELF")
        (self.e_type, self.e_machine, _, _, self.e_phoff, _, _, _,
         self.e_phentsize, self.e_phnum) = struct.unpack_from("<HHIQQQIHHH", d, 16)
        self.phdrs = []
        for i in range(self.e_phnum):
            (p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz,
             p_align) = struct.unpack_from("<IIQQQQQQ", d, self.e_phoff + i * 56)
            self.phdrs.append(dict(type=p_type, flags=p_flags, offset=p_offset,
                                   vaddr=p_vaddr, filesz=p_filesz, memsz=p_memsz,
                                   align=p_align))
        self.notes = []
        for ph in self.phdrs:
            if ph["type"] == PT_NOTE:
                self.notes += list(self._notes(ph["offset"], ph["filesz"]))
        self.loads = [p for p in self.phdrs if p["type"] == PT_LOAD]

    def _notes(self, off, size):
        end, pos = off + size, off
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", self.data, pos)
            pos += 12
            name = self.data[pos:pos + namesz].rstrip(b"\0").decode()
            pos += (namesz + 3) & ~3
            desc = self.data[pos:pos + descsz]
            pos += (descsz + 3) & ~3
            yield name, ntype, desc

    def segment_bytes(self, ph):
        return self.data[ph["offset"]:ph["offset"] + ph["filesz"]]

    def load_at(self, addr):
        for ph in self.loads:
            if ph["vaddr"] <= addr < ph["vaddr"] + ph["memsz"]:
                return ph
        return None

    def count(self, needle):
        """Occurrences of needle (bytes) in all PT_LOAD contents."""
        return sum(self.segment_bytes(ph).count(needle) for ph in self.loads)

    def prstatus_tids(self):
        return [struct.unpack_from("<i", desc, 32)[0]
                for name, t, desc in self.notes if name == "CORE" and t == NT_PRSTATUS]

    def nt_file_paths(self):
        for name, t, desc in self.notes:
            if name == "CORE" and t == NT_FILE:
                count = struct.unpack_from("<Q", desc, 0)[0]
                names = desc[16 + 24 * count:].split(b"\0")
                return [n.decode() for n in names[:count]]
        return []


def hole_at(path, offset):
    """True if offset lies in a hole of the (sparse) file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            return os.lseek(fd, offset, os.SEEK_DATA) != offset
        except OSError:
            return True   # ENXIO: no data after offset
    finally:
        os.close(fd)


# The markers dump_victim places; it prints how many of each.
MARKERS = {
    "heap_marker": b"hs-dump-heap-marker\0",
    "arena_marker": b"hs-dump-arena-marker\0",
    "anon_marker": b"hs-dump-anon-marker\0",
}
