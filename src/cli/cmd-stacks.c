/*
 * heapscan stacks: every thread's backtrace, symbolized like eu-stack
 * (frame number, pc, function+offset, module, file:line with debug info),
 * optionally with a few instructions around each frame's pc.
 *
 * Live processes are stopped only while unwinding (libunwind-ptrace);
 * cores and dumps are unwound by libdwfl.  Names come from hs_syms, the
 * resolver `show` uses, so the two agree.
 */
#include "cli.h"
#include "hs_syms.h"
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_DISASM = HS_OPT_FIRST_PRIVATE,
	OPT_MAX_FRAMES,
	OPT_NO_DEBUGINFO,
};

#define DISASM_BEFORE 3
#define DISASM_AFTER 2
#define DISASM_MAX (DISASM_BEFORE + 1 + DISASM_AFTER)

static const char usage_text[] =
	"usage: heapscan stacks (-p PID | -c CORE) [options]\n\n"
	"Prints every thread's backtrace: frame number, pc, function+offset,\n"
	"module, and file:line when debug info is installed.  A live process is\n"
	"stopped while its threads are unwound (libunwind); cores and heapscan\n"
	"dumps are unwound with libdwfl.  A thread whose unwind fails still shows\n"
	"its pc and the reason.\n\n"
	"options (--no-stop and --fork are refused: unwinding needs the threads\n"
	"stopped):\n"
	"%s"
	"      --disasm           show instructions around each frame's pc\n"
	"                         (=> marks the pc, or the call before a return\n"
	"                         address)\n"
	"      --max-frames N     frames per thread (default 256, at most 65536)\n"
	"      --no-debuginfo     names from .symtab/.dynsym only, no file:line\n";

struct frame_view {
	struct hs_sym_info si;
	bool have;           /* si is valid */
	hs_addr_t sym_pc;    /* the address looked up: pc, or pc - 1 */
};

/* Return addresses point after their call: name the call's own address. */
static void view_frame(struct hs_syms *s, const struct hs_frame *f,
		       struct frame_view *v)
{
	v->sym_pc = f->activation || !f->pc ? f->pc : f->pc - 1;
	v->have = hs_syms_lookup(s, v->sym_pc, &v->si) == 0;
}

static void text_frame(FILE *out, struct hs_target *t, struct hs_syms *s,
		       size_t n, const struct hs_frame *f, bool disasm)
{
	struct frame_view v;

	view_frame(s, f, &v);
	fprintf(out, "#%-3zu 0x%016" PRIx64, n, f->pc);
	if (v.have && v.si.name)
		fprintf(out, " %s+0x%" PRIx64 " (%s)", v.si.name,
			f->pc - v.si.sym_addr, v.si.module_name);
	else if (v.have)
		fprintf(out, " %s+0x%" PRIx64, v.si.module_name, f->pc - v.si.module_bias);
	else
		fprintf(out, " ??");
	if (v.have && v.si.src_file)
		fprintf(out, " %s:%d", v.si.src_file, v.si.src_line);
	fputc('\n', out);
	if (disasm) {
		struct hs_insn ins[DISASM_MAX];
		size_t k = 0;
		int err = hs_disasm_around(t, s, f->pc, !f->activation, DISASM_BEFORE,
					   DISASM_AFTER, ins, DISASM_MAX, &k);

		if (err < 0)
			fprintf(out, "        (no disassembly: %s)\n", hs_strerror(err));
		for (size_t i = 0; i < k; i++)
			fprintf(out, "     %s 0x%016" PRIx64 ":  %s\n",
				ins[i].mark ? "=>" : "  ", ins[i].addr, ins[i].text);
	}
}

static void json_frame(struct hs_json *j, struct hs_target *t, struct hs_syms *s,
		       size_t n, const struct hs_frame *f, bool disasm)
{
	struct frame_view v;

	view_frame(s, f, &v);
	hs_json_obj_begin(j, NULL);
	hs_json_u64(j, "n", n);
	hs_json_addr(j, "pc", f->pc);
	if (f->sp)
		hs_json_addr(j, "sp", f->sp);
	else
		hs_json_null(j, "sp");
	hs_json_bool(j, "activation", f->activation);
	if (v.have && v.si.name) {
		hs_json_str(j, "function", v.si.name);
		hs_json_addr(j, "function_addr", v.si.sym_addr);
		hs_json_u64(j, "offset", f->pc - v.si.sym_addr);
	} else {
		hs_json_null(j, "function");
		hs_json_null(j, "function_addr");
		if (v.have)
			hs_json_u64(j, "offset", f->pc - v.si.module_bias);
		else
			hs_json_null(j, "offset");
	}
	if (v.have) {
		hs_json_str(j, "module", v.si.module);
		hs_json_str(j, "module_name", v.si.module_name);
	} else {
		hs_json_null(j, "module");
		hs_json_null(j, "module_name");
	}
	if (v.have && v.si.src_file) {
		hs_json_str(j, "file", v.si.src_file);
		hs_json_i64(j, "line", v.si.src_line);
	} else {
		hs_json_null(j, "file");
		hs_json_null(j, "line");
	}
	if (disasm) {
		struct hs_insn ins[DISASM_MAX];
		size_t k = 0;
		int err = hs_disasm_around(t, s, f->pc, !f->activation, DISASM_BEFORE,
					   DISASM_AFTER, ins, DISASM_MAX, &k);

		if (err < 0)
			hs_json_str(j, "disasm_error", hs_strerror(err));
		hs_json_arr_begin(j, "disasm");
		for (size_t i = 0; i < k; i++) {
			hs_json_obj_begin(j, NULL);
			hs_json_addr(j, "addr", ins[i].addr);
			hs_json_u64(j, "size", ins[i].size);
			hs_json_str(j, "text", ins[i].text);
			hs_json_bool(j, "mark", ins[i].mark);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
	}
	hs_json_obj_end(j);
}

static void report_text(FILE *out, struct hs_target *t, struct hs_syms *s,
			const struct hs_stacks *st, bool disasm)
{
	if (t->caps & HS_CAP_POST_MORTEM)
		fprintf(out, "%s %s: ", t->ops->name, t->source ? t->source : "?");
	fprintf(out, "process %d (%s), %zu thread%s, unwound with %s\n",
		(int)t->info.pid, t->info.comm, st->n, st->n == 1 ? "" : "s",
		st->method);
	if (st->error)
		fprintf(out, "unwinder unavailable: %s\n", st->error);
	for (size_t i = 0; i < st->n; i++) {
		const struct hs_stack *k = &st->v[i];

		fprintf(out, "\nthread %d \"%s\":\n", (int)k->tid, k->name);
		for (size_t f = 0; f < k->nframes; f++)
			text_frame(out, t, s, f, &k->frames[f], disasm);
		if (k->error)
			fprintf(out, "  (unwind stopped after %zu frame%s: %s)\n",
				k->nframes, k->nframes == 1 ? "" : "s", k->error);
	}
}

static void report_json(struct hs_json *j, struct hs_target *t, struct hs_syms *s,
			const struct hs_stacks *st, bool disasm)
{
	hs_json_str(j, "method", st->method);
	if (st->error)
		hs_json_str(j, "error", st->error);
	else
		hs_json_null(j, "error");
	hs_json_arr_begin(j, "threads");
	for (size_t i = 0; i < st->n; i++) {
		const struct hs_stack *k = &st->v[i];

		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "tid", k->tid);
		hs_json_str(j, "name", k->name);
		if (k->error)
			hs_json_str(j, "error", k->error);
		else
			hs_json_null(j, "error");
		hs_json_arr_begin(j, "frames");
		for (size_t f = 0; f < k->nframes; f++)
			json_frame(j, t, s, f, &k->frames[f], disasm);
		hs_json_arr_end(j);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
}

static const struct option options[] = {
	{ "disasm", no_argument, NULL, OPT_DISASM },
	{ "max-frames", required_argument, NULL, OPT_MAX_FRAMES },
	{ "no-debuginfo", no_argument, NULL, OPT_NO_DEBUGINFO },
	{ NULL, 0, NULL, 0 },
};

struct stacks {
	struct hs_stacks_opts so;
	struct hs_stacks st;
	struct hs_syms *s;
	unsigned syms_flags;
	bool disasm;
};

static int option(void *state, int c, const char *arg)
{
	struct stacks *s = state;
	uint64_t v;

	switch (c) {
	case OPT_DISASM:
		s->disasm = true;
		break;
	case OPT_MAX_FRAMES:
		if (hs_cli_parse_u64(arg, &v) || v == 0 || v > 65536)
			return hs_cli_usage_err("stacks", "invalid --max-frames '%s'", arg);
		s->so.max_frames = (unsigned)v;
		break;
	case OPT_NO_DEBUGINFO:
		s->syms_flags |= HS_SYMS_NO_DEBUGINFO;
		break;
	}
	return 0;
}

static int check(void *state, const struct hs_cli_opts *o)
{
	struct stacks *s = state;

	if (o->no_stop)
		return hs_cli_usage_err("stacks", "--no-stop is not supported: "
					"unwinding needs the threads stopped");
	if (o->fork)
		return hs_cli_usage_err("stacks", "--fork is not supported: a fork "
					"snapshot has one thread, the others' stacks "
					"stay in the process");
	s->so.core_path = o->core;
	s->so.exe = o->exe;
	return 0;
}

static int collect(struct hs_run *run)
{
	struct stacks *s = run->state;

	return hs_stacks_collect(run->t, &s->so, &s->st);
}

/* The stacks are copied: the target runs while they are symbolized. */
static int finish(struct hs_run *run)
{
	struct stacks *s = run->state;

	return hs_syms_open(run->t, s->syms_flags, &s->s);
}

static int explain(struct hs_run *run)
{
	if (run->err == -HS_E_NOT_FOUND)
		hs_cli_err("'%s' has no threads to unwind",
			   run->t->source ? run->t->source : "target");
	else
		hs_cli_err("cannot unwind: %s", hs_strerror(run->err));
	return HS_EXIT_FATAL;
}

static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct stacks *s = run->state;

	if (j)
		report_json(j, run->t, s->s, &s->st, s->disasm);
	else
		report_text(out, run->t, s->s, &s->st, s->disasm);
	/* An unwinder missing, a thread's unwind cut short: partial. */
	run->partial = s->st.error != NULL;
	for (size_t i = 0; i < s->st.n; i++)
		if (s->st.v[i].error)
			run->partial = true;
}

static void release(void *state)
{
	struct stacks *s = state;

	hs_syms_close(s->s);
	hs_stacks_release(&s->st);
}

const struct hs_command hs_cmd_stacks = {
	.name = "stacks",
	.help = "every thread's backtrace, symbolized (like eu-stack)",
	.usage = usage_text,
	.options = options,
	.flags = HS_CMD_HEADER_JSON,
	.state_size = sizeof(struct stacks),
	.option = option,
	.check = check,
	.collect = collect,
	.finish = finish,
	.explain = explain,
	.render = render,
	.release = release,
};
