/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_pgsql_rows.c - unit tests for spoold/pgsql_rows.c: a domains
 * query's rows as domain blocks (results made with libpq's own
 * PQmakeEmptyPGresult and PQsetvalue, no server), values a directive
 * cannot hold, and the durable copy in the spool.
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgsql_rows.h"
#include "spoold_conf.h"

/* result - a PGresult with the columns names (NULL-terminated) and nrows
 * rows of values, row after row (NULL: SQL NULL) */
static PGresult *
result(const char *const *names, int nrows, const char *const *values)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc att[16];
	char name[16][32], value[256];	/* libpq copies both, but takes them as char * */
	int n = 0;

	ck_assert_ptr_nonnull(res);
	memset(att, 0, sizeof(att));
	for (; names[n] != NULL; n++) {
		snprintf(name[n], sizeof(name[n]), "%s", names[n]);
		att[n].name = name[n];
		att[n].typid = 25;	/* text */
		att[n].typlen = -1;
		att[n].atttypmod = -1;
	}
	ck_assert(PQsetResultAttrs(res, n, att));
	for (int r = 0; r < nrows; r++)
		for (int f = 0; f < n; f++) {
			const char *v = values[r * n + f];

			snprintf(value, sizeof(value), "%s", v != NULL ? v : "");
			ck_assert(PQsetvalue(res, r, f, value, v != NULL ? (int)strlen(v) : -1));
		}
	return res;
}

START_TEST(test_value_words)
{
	char out[64];

	ck_assert_int_eq(pgsql_value_words("{127.0.0.1,10.0.0.0/8}", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "127.0.0.1 10.0.0.0/8");
	ck_assert_int_eq(pgsql_value_words("alice,bob", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "alice bob");
	ck_assert_int_eq(pgsql_value_words("t", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "on");
	ck_assert_int_eq(pgsql_value_words("f", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "off");
	ck_assert_int_eq(pgsql_value_words("[mx.example.com]:2525", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "[mx.example.com]:2525");
	/* what would change the configuration's syntax, and too long */
	ck_assert_int_eq(pgsql_value_words("any\n}\ndomain evil.test {", out, sizeof(out)), -1);
	ck_assert_int_eq(pgsql_value_words("a\"b", out, sizeof(out)), -1);
	ck_assert_int_eq(pgsql_value_words("a # comment", out, sizeof(out)), -1);
	ck_assert_int_eq(pgsql_value_words("a}", out, sizeof(out)), -1);
	ck_assert_int_eq(pgsql_value_words("a\\b", out, sizeof(out)), -1);
	ck_assert_int_eq(pgsql_value_words("a\x7f", out, sizeof(out)), -1);
	ck_assert_int_eq(pgsql_value_words("0123456789012345678901234567890123456789"
	    "0123456789012345678901234", out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_rows_text)
{
	static const char *const names[] = { "domain", "mode", "etrn_from", "filter", "recipients", NULL };
	static const char *const values[] = {
		"a.test", "hold", "{127.0.0.1,::1}", "t", "any",
		"b.test", NULL, NULL, "f", "",		/* NULL and empty: not given */
		"c.test", "hold", "10.0.0.1\n}", NULL, NULL,	/* left out: a newline */
		NULL, "hold", NULL, NULL, NULL,		/* left out: no domain */
		"two words", NULL, NULL, NULL, NULL,	/* left out */
	};
	PGresult *res = result(names, 5, values);
	size_t kept = 99;
	char *text = pgsql_rows_text("test.cf", res, &kept);

	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(kept, 2);
	ck_assert_str_eq(text,
	    "domain a.test { # row 1\nmode hold\netrn-from 127.0.0.1 ::1\nfilter on\nrecipients any\n}\n"
	    "domain b.test { # row 2\nfilter off\n}\n");
	free(text);
	PQclear(res);
}
END_TEST

START_TEST(test_rows_bad_columns)
{
	static const char *const no_domain[] = { "name", "mode", NULL };
	static const char *const unknown[] = { "domain", "colour", NULL };
	static const char *const v[] = { "a.test", "hold" };
	PGresult *res = result(no_domain, 1, v);
	size_t kept;

	ck_assert_ptr_null(pgsql_rows_text("test.cf", res, &kept));
	PQclear(res);
	res = result(unknown, 1, v);
	ck_assert_ptr_null(pgsql_rows_text("test.cf", res, &kept));
	PQclear(res);
}
END_TEST

START_TEST(test_rows_keep)
{
	char dir[] = "/tmp/spoold-test-rows-XXXXXX", path[128], got[256];
	struct stat st;
	FILE *f;
	size_t n;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(pgsql_rows_keep(dir, "domain a.test {\n}\n"), 0);
	ck_assert_int_eq(pgsql_rows_keep(dir, "domain b.test {\n}\n"), 0);	/* replaced whole */
	snprintf(path, sizeof(path), "%s/%s", dir, SPOOLD_PGSQL_COPY);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	fclose(f);
	ck_assert_msg(strncmp(got, "# spoold: ", 10) == 0, "no header: %s", got);
	ck_assert_ptr_nonnull(strstr(got, "\ndomain b.test {\n}\n"));
	ck_assert_ptr_null(strstr(got, "a.test"));
	unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);	/* no temporary file left */
	ck_assert_int_eq(pgsql_rows_keep(dir, "x"), -1);	/* the directory is gone */
}
END_TEST

static Suite *
pgsql_rows_suite(void)
{
	Suite *s = suite_create("pgsql_rows");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_value_words);
	tcase_add_test(tc, test_rows_text);
	tcase_add_test(tc, test_rows_bad_columns);
	tcase_add_test(tc, test_rows_keep);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pgsql_rows_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
