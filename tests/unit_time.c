/*
 * unit_time.c - kg_parse_time and kg_format_time against instants worked
 * out by hand: offsets (both signs, with and without a colon), fractions of
 * every length, both separators, dates before 1970 and leap days, what is
 * refused, and format -> parse round trips.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "kgstore.h"

/* 2024-03-01T12:00:00Z: 19783 days after 1970-01-01 (54 years, 13 leap
 * days to 2024, then 31 + 29 days of 2024), plus 12 h. */
#define NOON_2024_03_01 ((int64_t)(19783 * 86400 + 12 * 3600) * 1000000)

static void parses_to(const char *text, int64_t want)
{
	int64_t got = 0;
	int rc = kg_parse_time(text, &got);
	CHECK_MSG(rc == 0 && got == want, "kg_parse_time(\"%s\"): rc %d, %lld, expected %lld", text, rc, (long long)got,
	          (long long)want);
}

static void refused(const char *text)
{
	int64_t got = 0;
	CHECK_MSG(kg_parse_time(text, &got) == KG_EINVAL, "kg_parse_time(\"%s\") should be refused", text);
}

int main(void)
{
	th_current = "parse";
	parses_to("2024-03-01T12:00:00Z", NOON_2024_03_01);
	parses_to("2024-03-01 12:00:00", NOON_2024_03_01);
	parses_to("2024-03-01T12:00", NOON_2024_03_01);
	parses_to("2024-03-01T14:00:00+02:00", NOON_2024_03_01); /* east of UTC: earlier in UTC */
	parses_to("2024-03-01T14:30:00+0230", NOON_2024_03_01);
	parses_to("2024-03-01T07:00:00-05:00", NOON_2024_03_01);
	parses_to("2024-03-01T11:00:00-01", NOON_2024_03_01);
	parses_to("2024-03-01T12:00:00.5Z", NOON_2024_03_01 + 500000);
	parses_to("2024-03-01T12:00:00.000001", NOON_2024_03_01 + 1);
	parses_to("2024-03-01T12:00:00.123", NOON_2024_03_01 + 123000);
	parses_to("2024-03-01T12:00:00.1234567", NOON_2024_03_01 + 123456); /* past microseconds: cut */
	parses_to("2024-02-29T12:00:00", NOON_2024_03_01 - (int64_t)86400 * 1000000);
	parses_to("1970-01-01T00:00:00", 0);
	parses_to("1969-12-31T23:59:59.5", -500000);
	parses_to("2024-03-01", NOON_2024_03_01 - (int64_t)12 * 3600 * 1000000);
	refused("2024-13-01T00:00:00");
	refused("2024-03-01T25:00:00");
	refused("2024-03-01T12:00:00.");
	refused("2024-03-01T12:00:00 junk");
	refused("24-03-01");
	refused("");

	th_current = "format";
	char buf[32];
	kg_format_time(NOON_2024_03_01 + 7, buf);
	CHECK_STR(buf, "2024-03-01T12:00:00.000007");
	kg_format_time(-500000, buf);
	CHECK_STR(buf, "1969-12-31T23:59:59.500000");
	/* Round trips over a spread of instants, leap days and negatives too. */
	int ok = 1;
	for (int64_t us = -4102444800000000LL; us < 4102444800000000LL; us += 86399999937LL) {
		int64_t back = 0;
		kg_format_time(us, buf);
		ok &= kg_parse_time(buf, &back) == 0 && back == us;
	}
	CHECK(ok);
	return th_summary("unit_time");
}
