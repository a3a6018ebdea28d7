/* SPDX-License-Identifier: MIT */
/* JSON strings: escaping, and text that stays UTF-8 whatever bytes a path or an
 * argument holds (src/analysis/json.h). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/analysis/json.h"

/* json_str(s) as a NUL-terminated string (freed by the caller). */
static char *str_of(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert(f);
	json_str(f, s);
	cr_assert_eq(fclose(f), 0);
	return buf;
}

static void expect(const char *in, const char *want)
{
	char *got = str_of(in);
	cr_expect_str_eq(got, want, "json_str(\"%s\")", in);
	free(got);
}

Test(json, escapes_what_rfc_8259_asks)
{
	expect(NULL, "null");
	expect("", "\"\"");
	expect("a\"b\\c", "\"a\\\"b\\\\c\"");
	expect("l1\nl2\tx\r\x01", "\"l1\\nl2\\tx\\u000d\\u0001\"");
	expect("\x7f", "\"\\u007f\"");
}

Test(json, keeps_well_formed_utf8)
{
	expect("caf\xc3\xa9", "\"caf\xc3\xa9\""); /* U+00E9 */
	expect("\xe2\x82\xac and \xf0\x9f\x98\x80",
	       "\"\xe2\x82\xac and \xf0\x9f\x98\x80\"");    /* U+20AC, U+1F600 */
	expect("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");	    /* U+FFFF */
	expect("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
}

Test(json, replaces_bytes_that_are_not_utf8)
{
	expect("caf\xe9", "\"caf\\ufffd\"");		     /* Latin-1 */
	expect("kn\xf6wn", "\"kn\\ufffdwn\"");		     /* one byte, the rest kept */
	expect("\xc0\xaf", "\"\\ufffd\\ufffd\"");	     /* overlong '/' */
	expect("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
	expect("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* above U+10FFFF */
	expect("\xe2\x82", "\"\\ufffd\\ufffd\"");			/* cut short by the end */
	expect("\xe2\x82x", "\"\\ufffd\\ufffdx\"");			/* cut short by ASCII */
	expect("\x80", "\"\\ufffd\""); /* a lone continuation byte */
	expect("\xff\xfe", "\"\\ufffd\\ufffd\"");
}
