"""An independent glibc heap walk, run inside gdb with libc6-dbg.

    gdb -batch -nx -p PID -x gdb_heapwalk.py          (or EXE CORE)

It shares nothing with heapscan: glibc's own structures are read through
gdb's debug info (main_arena, mp_, heap_info, the per-thread `tcache`).
For each arena it walks every heap chunk by chunk, the main heap from
mp_.sbrk_base to the top chunk, a thread arena's heaps from their
heap_info (the heap holding top, then heap_info.prev), and calls a chunk
free when the next chunk's PREV_INUSE bit is clear (it is in a bin) or
when it is on a tcache or fastbin list (those keep the bit set).  It
prints one line "HEAPWALK {json}" with per-arena and total counts:
inuse, free (tcache, fastbin, binned), top, and mmapped (mp_'s
n_mmaps and mmapped_mem).
"""
import json
import os

import gdb

SIZE_BITS = 7
PREV_INUSE = 1
HEAP_MAX = 64 << 20


def u64(b, off):
    return int.from_bytes(b[off:off + 8], "little")


def read(addr, n):
    return bytes(gdb.selected_inferior().read_memory(addr, n))


def safe_linking():
    # glibc 2.32+ mangles tcache next and fastbin fd: stored =
    # (address of the field >> 12) ^ pointer.
    # The victims run on this machine's glibc (a core cannot call
    # gnu_get_libc_version()).
    v = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    major, minor = (int(x) for x in v.split(".")[:2])
    return (major, minor) >= (2, 32)


def reveal(field_addr, stored, mangled):
    return (field_addr >> 12) ^ stored if mangled else stored


def tcache_chunks(mangled):
    """Chunk addresses on every thread's tcache lists."""
    out = set()
    for th in gdb.selected_inferior().threads():
        th.switch()
        try:
            tc = gdb.parse_and_eval("tcache")
        except gdb.error:
            continue
        if int(tc) == 0:
            continue
        for i in range(64):
            e = int(tc["entries"][i])
            n = 0
            while e and n < 100000:
                out.add(e - 16)
                nxt = u64(read(e, 8), 0)
                e = reveal(e, nxt, mangled)
                n += 1
    return out


def fastbin_chunks(arena, mangled):
    out = set()
    for i in range(10):
        c = int(arena["fastbinsY"][i])
        n = 0
        while c and n < 100000:
            out.add(c)
            c = reveal(c + 16, u64(read(c + 16, 8), 0), mangled)
            n += 1
    return out


def walk(start, end, top, listed, counts, stop_at_fencepost):
    """Walks [start, end); the chunk at top (if met) is counted as top."""
    data = read(start, end - start) if end > start else b""
    p = start
    while p < end:
        off = p - start
        size = u64(data, off + 8) & ~SIZE_BITS
        if p == top:
            counts["top"][0] += 1
            counts["top"][1] += size
            return
        if stop_at_fencepost and size <= 16:
            return
        if size < 32 or p + size > end:
            counts["bad"] += 1
            return
        nxt = u64(data, off + size + 8) if off + size + 16 <= len(data) else PREV_INUSE
        if p in listed or not (nxt & PREV_INUSE):
            kind = "tcache" if p in listed["tcache"] else \
                "fastbin" if p in listed["fastbin"] else "binned"
            counts[kind][0] += 1
            counts[kind][1] += size
        else:
            counts["inuse"][0] += 1
            counts["inuse"][1] += size
        p += size


class Listed(dict):
    def __contains__(self, c):
        return c in self["tcache"] or c in self["fastbin"]


def main():
    gdb.execute("set pagination off")
    mangled = safe_linking()
    main_arena = gdb.parse_and_eval("&main_arena")
    mp = gdb.parse_and_eval("mp_")
    hi_size = gdb.lookup_type("heap_info").sizeof
    ms_size = gdb.lookup_type("struct malloc_state").sizeof
    tc = tcache_chunks(mangled)
    arenas = []
    a = main_arena
    for _ in range(4096):
        ar = a.dereference()
        listed = Listed(tcache=tc, fastbin=fastbin_chunks(ar, mangled))
        counts = {k: [0, 0] for k in ("inuse", "tcache", "fastbin", "binned", "top")}
        counts["bad"] = 0
        top = int(ar["top"])
        top_size = u64(read(top + 8, 8), 0) & ~SIZE_BITS
        if int(a) == int(main_arena):
            base = int(mp["sbrk_base"])
            walk(base, top + top_size, top, listed, counts, False)
        else:
            heaps = []
            h = top & ~(HEAP_MAX - 1)
            while h and len(heaps) < 65536:
                heaps.append(h)
                h = u64(read(h + 8, 8), 0)          # heap_info.prev
            for h in reversed(heaps):
                size = u64(read(h + 16, 8), 0)      # heap_info.size
                if u64(read(h, 8), 0) == int(a) and h + hi_size == int(a):
                    first = (int(a) + ms_size + 15) & ~15
                else:
                    first = (h + hi_size + 15) & ~15
                holds_top = h <= top < h + size
                walk(first, top + top_size if holds_top else h + size, top, listed,
                     counts, not holds_top)
        counts["addr"] = "0x%x" % int(a)
        counts["system_mem"] = int(ar["system_mem"])
        arenas.append(counts)
        a = ar["next"]
        if int(a) == int(main_arena):
            break
    total = {k: [sum(c[k][0] for c in arenas), sum(c[k][1] for c in arenas)]
             for k in ("inuse", "tcache", "fastbin", "binned", "top")}
    total["bad"] = sum(c["bad"] for c in arenas)
    out = {"arenas": arenas, "total": total,
           "mmapped": [int(mp["n_mmaps"]), int(mp["mmapped_mem"])]}
    print("HEAPWALK " + json.dumps(out))


main()
