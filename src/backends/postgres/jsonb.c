/*
 * jsonb.c - JSON text made to survive JSONB unchanged in meaning.
 *
 * JSONB keeps numbers as NUMERIC and prints them without an exponent, so
 * -3e10 comes back as -30000000000: an integer to every JSON reader, where
 * a real went in. Numbers written with an exponent are therefore rewritten
 * before they are sent, exactly (digits moved, no floating point), into
 * plain decimal notation with a fraction: -3e10 -> -30000000000.0, which
 * JSONB stores and prints as such. Everything else passes untouched.
 */
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* Length of the number token at p (JSON grammar, already validated). */
static size_t number_len(const char *p, int *has_exp)
{
	const char *s = p;
	*has_exp = 0;
	if (*s == '-')
		s++;
	while (is_digit(*s) || *s == '.')
		s++;
	if (*s == 'e' || *s == 'E') {
		*has_exp = 1;
		s++;
		if (*s == '+' || *s == '-')
			s++;
		while (is_digit(*s))
			s++;
	}
	return (size_t)(s - p);
}

/* Writes the plain form of number [p, p+len) at out; returns its length.
 * out has room for len + |exponent| + 4 bytes. */
static size_t plain_number(const char *p, size_t len, char *out)
{
	const char *end = p + len, *s = p;
	char *o = out;
	if (*s == '-')
		*o++ = *s++;
	/* The digits without the point, and where the point was. */
	char digits[400];
	size_t nd = 0;
	long point = -1;
	for (; s < end && *s != 'e' && *s != 'E'; s++) {
		if (*s == '.')
			point = (long)nd;
		else if (nd < sizeof(digits))
			digits[nd++] = *s;
	}
	if (point < 0)
		point = (long)nd;
	/* No leading zeros in JSON: 0.5e1 is 5.0, not 05.0. */
	size_t lead = 0;
	while (lead < nd && digits[lead] == '0')
		lead++;
	memmove(digits, digits + lead, nd - lead);
	nd -= lead;
	point -= (long)lead;
	if (nd == 0) {
		memcpy(o, "0.0", 3);
		return (size_t)(o + 3 - out);
	}
	long exp = strtol(s + 1, NULL, 10);
	point += exp;
	if (point <= 0) {
		*o++ = '0';
		*o++ = '.';
		for (long i = 0; i < -point; i++)
			*o++ = '0';
		memcpy(o, digits, nd);
		o += nd;
	} else if ((size_t)point >= nd) {
		memcpy(o, digits, nd);
		o += nd;
		for (long i = (long)nd; i < point; i++)
			*o++ = '0';
		*o++ = '.';
		*o++ = '0';
	} else {
		memcpy(o, digits, (size_t)point);
		o += point;
		*o++ = '.';
		memcpy(o, digits + point, nd - (size_t)point);
		o += nd - (size_t)point;
	}
	return (size_t)(o - out);
}

/* Exponents this large are written as they are (NUMERIC would refuse a
 * plain form anyway); JSONB then fails them with a clear message. */
#define MAX_SHIFT 1000

const char *pg_json_for_jsonb(const char *text, char **owned)
{
	*owned = NULL;
	size_t extra = 0;
	int any = 0;
	for (const char *p = text; *p;) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p)
				p++;
			continue;
		}
		if (*p == '-' || is_digit(*p)) {
			int has_exp;
			size_t n = number_len(p, &has_exp);
			if (has_exp) {
				const char *e = p;
				while (*e != 'e' && *e != 'E')
					e++;
				long shift = labs(strtol(e + 1, NULL, 10));
				if (shift <= MAX_SHIFT && n < 380) {
					any = 1;
					extra += (size_t)shift + 4;
				}
			}
			p += n ? n : 1;
			continue;
		}
		p++;
	}
	if (!any)
		return text;
	size_t len = strlen(text);
	char *out = malloc(len + extra + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = text; *p;) {
		if (*p == '"') {
			const char *start = p;
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p)
				p++;
			memcpy(o, start, (size_t)(p - start));
			o += p - start;
			continue;
		}
		if (*p == '-' || is_digit(*p)) {
			int has_exp;
			size_t n = number_len(p, &has_exp);
			if (!n)
				n = 1;
			const char *e = p;
			while (has_exp && *e != 'e' && *e != 'E')
				e++;
			if (has_exp && labs(strtol(e + 1, NULL, 10)) <= MAX_SHIFT && n < 380)
				o += plain_number(p, n, o);
			else {
				memcpy(o, p, n);
				o += n;
			}
			p += n;
			continue;
		}
		*o++ = *p++;
	}
	*o = '\0';
	*owned = out;
	return out;
}
