/* hs_buf, the JSON writer, errors, and the generic target helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_core.h"

static void assert_sane_buf(const struct hs_buf *sb)
{
	assert_non_null(sb->buf);
	assert_int_equal(sb->buf[sb->len], '\0');
	if (sb->alloc)
		assert_true(sb->len < sb->alloc);
	else
		assert_int_equal(sb->len, 0);
}

static void test_buf(void **state)
{
	struct hs_buf sb = HS_BUF_INIT;
	char *s;
	size_t len;

	(void)state;
	assert_sane_buf(&sb);
	hs_buf_adds(&sb, "abc");
	hs_buf_addch(&sb, 'd');
	hs_buf_addf(&sb, "%d-%s", 42, "x");
	assert_string_equal(sb.buf, "abcd42-x");
	assert_sane_buf(&sb);
	for (int i = 0; i < 1000; i++)
		hs_buf_addf(&sb, "%0100d", i);
	assert_int_equal(sb.len, 8 + 100000);
	assert_sane_buf(&sb);
	s = hs_buf_detach(&sb, &len);
	assert_int_equal(len, 100008);
	assert_sane_buf(&sb);
	free(s);
	hs_buf_release(&sb);
	assert_sane_buf(&sb);
}

static char *json_of(void (*fn)(struct hs_json *))
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	struct hs_json j;

	hs_json_init(&j, f, false);
	fn(&j);
	fclose(f);
	return out;
}

static void doc1(struct hs_json *j)
{
	hs_json_obj_begin(j, NULL);
	hs_json_u64(j, "a", 18446744073709551615ull);
	hs_json_i64(j, "b", -5);
	hs_json_str(j, "s", "q\"\\\n\t\x01\x7f");
	hs_json_strn(j, "bin", "a\0\xff\xc3\xa9z", 6);
	hs_json_arr_begin(j, "e");
	hs_json_arr_end(j);
	hs_json_arr_begin(j, "l");
	hs_json_bool(j, NULL, true);
	hs_json_null(j, NULL);
	hs_json_addr(j, NULL, 0x7fff0000);
	hs_json_obj_begin(j, NULL);
	hs_json_obj_end(j);
	hs_json_arr_end(j);
	hs_json_double(j, "d", 1.5);
	hs_json_obj_end(j);
}

static void test_json(void **state)
{
	char *s = json_of(doc1);

	(void)state;
	assert_string_equal(s,
		"{\"a\":18446744073709551615,\"b\":-5,"
		"\"s\":\"q\\\"\\\\\\n\\t\\u0001\\u007f\","
		"\"bin\":\"a\\u0000\\u00ff\xc3\xa9z\","
		"\"e\":[],\"l\":[true,null,\"0x7fff0000\",{}],\"d\":1.5}");
	free(s);
}

static void test_errors(void **state)
{
	(void)state;
	assert_string_equal(hs_strerror(-ESRCH), strerror(ESRCH));
	assert_string_equal(hs_strerror(-HS_E_ZOMBIE),
			    "process has exited (a zombie: no memory left)");
	assert_string_equal(hs_strerror(HS_E_KTHREAD),
			    "process is a kernel thread (it has no user memory)");
	assert_string_equal(hs_strerror(-99999), "unknown error");
	assert_string_equal(hs_strerror(0), "success");
}

/* ---- target helpers over the mem backend ---- */

static unsigned char seg_a[3 * 4096], seg_b[4096];

struct collect {
	hs_addr_t next;
	int gaps, calls;
	size_t bytes;
};

static int collect_cb(void *ud, hs_addr_t addr, const void *data, size_t len)
{
	struct collect *c = ud;

	(void)data;
	if (c->calls && addr != c->next)
		c->gaps++;
	c->calls++;
	c->bytes += len;
	c->next = addr + len;
	assert_true(len <= 8192);
	return 0;
}

static void test_stream(void **state)
{
	struct hs_target *t;
	struct collect c = { 0 };
	unsigned char buf[8192];
	uint64_t unreadable = 0;

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	/* 3 pages, a 2-page hole, 1 page */
	hs_target_mem_add(t, 0x10000, seg_a, sizeof(seg_a), HS_PERM_R, NULL);
	hs_target_mem_add(t, 0x15000, seg_b, sizeof(seg_b), HS_PERM_R, NULL);
	assert_int_equal(hs_target_stream(t, 0x10000, 0x16000, buf, sizeof(buf),
					  collect_cb, &c, &unreadable), 0);
	assert_int_equal(c.bytes, 4 * 4096);
	assert_int_equal(c.gaps, 1);
	assert_int_equal(unreadable, 2 * 4096);
	assert_int_equal(t->unreadable, 2 * 4096);
	assert_true(t->state & HS_TSTATE_PARTIAL);
	assert_int_equal(hs_target_stream(t, 0, 1, buf, 100, collect_cb, &c, NULL),
			 -EINVAL);
	hs_target_close(t);
}

static void test_read_cstr(void **state)
{
	struct hs_target *t;
	char out[16];

	(void)state;
	memset(seg_a, 'x', sizeof(seg_a));
	memcpy(seg_a, "hello", 6);
	/* A string running to the very end of the segment, unterminated. */
	memcpy(seg_a + sizeof(seg_a) - 3, "abc", 3);
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x10000, seg_a, sizeof(seg_a), HS_PERM_R, NULL);
	assert_int_equal(hs_read_cstr(t, 0x10000, out, sizeof(out)), 5);
	assert_string_equal(out, "hello");
	assert_int_equal(hs_read_cstr(t, 0x10000 + sizeof(seg_a) - 3, out, sizeof(out)),
			 -EFAULT);
	assert_int_equal(hs_read_cstr(t, 0x10010, out, sizeof(out)), -HS_E_CORRUPT);
	assert_int_equal(hs_read_cstr(t, 0x90000, out, sizeof(out)), -EFAULT);
	{
		uint64_t v;
		assert_int_equal(hs_read_u64(t, 0x10000 + sizeof(seg_a) - 4, &v), -EFAULT);
		assert_int_equal(hs_read_u64(t, 0x10000, &v), 0);
		assert_int_equal(hs_read_u64(t, UINT64_MAX - 3, &v), -EFAULT);
	}
	hs_target_close(t);
}

static void test_fmt_bytes(void **state)
{
	char b[16];

	(void)state;
	assert_string_equal(hs_fmt_bytes(b, sizeof(b), 12), "12B");
	assert_string_equal(hs_fmt_bytes(b, sizeof(b), 1536), "1.5K");
	assert_string_equal(hs_fmt_bytes(b, sizeof(b), 300ull << 20), "300M");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_read_cstr),
		cmocka_unit_test(test_fmt_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
