/*
 * hs_syms: a symbol resolver over a target's loaded modules, and the
 * stack walker and disassembler that use it.
 *
 * Modules come from the target's maps (file-backed mappings grouped by
 * path; the load bias from the mapping that holds file offset 0 and the
 * ELF's program headers), so one resolver serves live processes and core
 * files alike.  Files are opened through /proc/PID/root for live targets
 * (processes in containers), by path for cores.  A module whose file is
 * missing or not ELF still resolves to module+offset.
 *
 * Symbolization degrades gracefully: DWARF (file:line) when debug info is
 * found (build-id, .gnu_debuglink, /usr/lib/debug), else .symtab, else
 * .dynsym, else module+offset.
 *
 * This layer knows nothing of ptrace, /proc parsing or glibc's malloc: a
 * live target's pid comes from t->info.pid.
 */
#ifndef HS_SYMS_H
#define HS_SYMS_H

#include "hs_core.h"

struct hs_syms;

enum hs_syms_flags {
	HS_SYMS_NO_DEBUGINFO = 1 << 0, /* .symtab/.dynsym only, no DWARF */
};

/*
 * Builds the module list of t (which must outlive the resolver).  Files
 * are opened lazily, at the first lookup that needs them, each once.
 * Returns 0 or -ENOMEM; a target without file-backed mappings gives an
 * empty resolver.  A resolver is not thread-safe: use one per thread.
 */
int hs_syms_open(struct hs_target *t, unsigned flags,
		 struct hs_syms **out) HS_MUST_CHECK;
void hs_syms_close(struct hs_syms *s);

enum hs_sym_kind {
	HS_SYM_NONE = 0,   /* no symbol covers the address: module+offset */
	HS_SYM_FUNC,
	HS_SYM_OBJECT,     /* a global variable, vtable, ... */
	HS_SYM_OTHER,
};

/* Strings point into the resolver and live until hs_syms_close(). */
struct hs_sym_info {
	const char *module;      /* full path of the mapped file, NULL if none */
	const char *module_name; /* its basename ("libc.so.6") */
	hs_addr_t module_bias;   /* load bias (0 for a non-PIE executable) */
	const char *name;        /* demangled if C++, NULL if HS_SYM_NONE */
	enum hs_sym_kind kind;
	hs_addr_t sym_addr;      /* runtime address of the symbol */
	uint64_t sym_size;
	uint64_t offset;         /* addr - sym_addr, or addr - bias if no name */
	const char *src_file;    /* with debug info, else NULL */
	int src_line;            /* 0 if unknown */
};

/*
 * Resolves a runtime address.  Returns 0 (out filled; out->name may still
 * be NULL when only the module is known), or -HS_E_NOT_FOUND when addr is
 * in no file-backed module.  Never fails on a bad file: it degrades.
 */
int hs_syms_lookup(struct hs_syms *s, hs_addr_t addr, struct hs_sym_info *out);

/*
 * Finds a symbol by name; module is a path, a basename or a prefix of the
 * basename ending before '.' or '-' ("libc" matches "libc.so.6", not
 * "libcap.so.2"), or NULL for every module (the first, in address order,
 * that has it).  A plain name also matches a versioned one as a debug
 * .symtab spells it ("pthread_cond_wait@@GLIBC_2.3.2"), the default
 * version first, as dlsym.  C++ symbols match by their raw (mangled)
 * name only ("_ZN3foo3barEi", not the "foo::bar(int)" that
 * hs_syms_lookup() gives).  addr and size may be NULL.  Linear in the
 * module's symbol count (tens of microseconds for libc).
 * Returns 0 with *addr the runtime address, or -HS_E_NOT_FOUND.
 */
int hs_syms_by_name(struct hs_syms *s, const char *module, const char *name,
		    hs_addr_t *addr, uint64_t *size);

/*
 * The demangled form of an Itanium C++ name: "foo::bar(int)" for
 * "_ZN3foo3barEi" (a version suffix, "@@GLIBCXX_3.4", is kept).  Returns
 * raw itself when it is NULL, not "_Z...", longer than 4096 bytes, does not
 * demangle, or when libstdc++.so.6's __cxa_demangle cannot be loaded (it
 * is looked up at run time; heapscan does not link it).  A demangled
 * string is owned by s and lives until hs_syms_close(); each call keeps a
 * new one (hs_syms_lookup() demangles each symbol once and caches it).
 */
const char *hs_syms_demangle(struct hs_syms *s, const char *raw);

/*
 * Calls cb for every symbol (functions and objects, as hs_syms_lookup
 * knows them) of every module file (not the vDSO, whose image would be
 * read from the target) whose raw name starts with prefix (NULL or "":
 * all), loading each module's table.  raw is the symbol's name as
 * the ELF spells it (mangled), valid until hs_syms_close(); addr its
 * runtime address.  cb returns 0 to go on; anything else stops and is
 * returned.  Returns 0 or cb's value.
 */
typedef int (*hs_syms_each_fn)(void *ud, const char *raw, hs_addr_t addr,
			       uint64_t size);
int hs_syms_for_each(struct hs_syms *s, const char *prefix, hs_syms_each_fn cb,
		     void *ud);

/*
 * Copies len bytes of the module file that backs runtime address addr
 * (inside one PT_LOAD's file image) into buf: what a read-only datum such
 * as a version constant holds, without reading the target's memory (a
 * live process's untouched file pages stay out of its Rss; a core need
 * not contain them).  Returns 0, or -HS_E_NOT_FOUND (no module, its file
 * cannot be opened, or the range is not in the file image).
 */
int hs_syms_read_file(struct hs_syms *s, hs_addr_t addr, void *buf,
		      size_t len) HS_MUST_CHECK;

/*
 * The bytes of section `name` (".rodata") of the module file that backs
 * runtime address addr: *data points into the file as libelf maps it,
 * valid until hs_syms_close().  Returns 0, or -HS_E_NOT_FOUND.
 */
int hs_syms_file_section(struct hs_syms *s, hs_addr_t addr, const char *name,
			 const void **data, size_t *len) HS_MUST_CHECK;

/* "malloc+0x12 (libc.so.6)", "libfoo.so+0x1234", "0x7f..." into buf. */
const char *hs_syms_format(struct hs_syms *s, hs_addr_t addr, char *buf,
			   size_t len);

/* ---- stacks ------------------------------------------------------------ */

struct hs_frame {
	hs_addr_t pc;
	hs_addr_t sp;       /* 0 if the unwinder did not give it */
	/*
	 * true when pc is exact: where the thread was stopped (frame 0), a
	 * signal trampoline's entry (__restore_rt), or where a signal
	 * interrupted the frame under it; false for a return address, which
	 * points after its call: symbolize pc - 1 for such frames.
	 */
	bool activation;
};

/* One thread's backtrace. */
struct hs_stack {
	pid_t tid;
	char name[17];          /* comm, "" if unknown */
	struct hs_frame *frames; /* owned; frames[0] is the innermost */
	size_t nframes;
	/*
	 * NULL when the unwinder reached the outermost frame; else why the
	 * unwind stopped (owned), e.g. "no registers", "frame limit 256
	 * reached", "loop: same pc and sp twice", or the unwinder's message.
	 * A thread with registers always has frames[0] (its pc), even if its
	 * unwind failed at once.
	 */
	char *error;
};

struct hs_stacks {
	struct hs_stack *v;     /* owned, in the target's thread order */
	size_t n;
	const char *method;     /* "libunwind-ptrace", "libdwfl", or "registers" */
	char *error;            /* owned: why the whole unwinder was unavailable
				   (threads then show only their pc), or NULL */
};

struct hs_stacks_opts {
	unsigned max_frames;    /* per thread; 0 = 256, at most 65536 */
	/*
	 * For post-mortem targets: the core file to unwind (default: the
	 * target's source, its path) and the executable (--exe, may be NULL).
	 */
	const char *core_path;
	const char *exe;
};

/*
 * Unwinds every thread of t.  Live targets ("live") must be suspended
 * (their threads ptrace-stopped by hs_target_suspend): libunwind-ptrace
 * walks each thread.  Cores and dumps are unwound by libdwfl from the core
 * file (libunwind-coredump 1.6 mis-unwinds them).  Other targets, or when
 * the unwinder cannot start, give each thread's pc from its registers and
 * out->error says why.  Memory is bounded by max_frames per thread.
 * Returns 0 (out filled, release it with hs_stacks_release()), or
 * -HS_E_NOT_FOUND when t has no threads, -HS_E_INTERRUPTED.
 */
int hs_stacks_collect(struct hs_target *t, const struct hs_stacks_opts *o,
		      struct hs_stacks *out) HS_MUST_CHECK;
void hs_stacks_release(struct hs_stacks *st);

/* ---- disassembly -------------------------------------------------------- */

struct hs_insn {
	hs_addr_t addr;
	unsigned size;
	bool mark;          /* the instruction at pc, or the call before a
			       return address */
	char text[200];     /* "call 0x401136" (capstone, Intel syntax) */
};

/*
 * Disassembles up to `before` instructions before the marked one, the
 * marked one, and up to `after` after it, into out[max]; *n is how many.
 * ret_addr: pc is a return address, so the marked instruction is the call
 * that ends at pc.  Decoding starts at the enclosing symbol (s may be
 * NULL) when it is within 4 KiB, so instructions stay aligned; without
 * one it starts at pc (or at the call found just before it).
 * Returns 0, -EFAULT when the code is unreadable, -HS_E_NOT_FOUND when no
 * instruction boundary lines up with pc, -HS_E_UNSUPPORTED without
 * capstone support.
 */
int hs_disasm_around(struct hs_target *t, struct hs_syms *s, hs_addr_t pc,
		     bool ret_addr, unsigned before, unsigned after,
		     struct hs_insn *out, size_t max, size_t *n) HS_MUST_CHECK;

#endif
