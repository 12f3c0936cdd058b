/*
 * fts.c - what the SQLite backend's FTS5 path needs to rank exactly as the
 * core does: an entity's tokens (generic_search.c's rules), a row
 * fingerprint, query parsing and BM25 with corpus statistics from the index.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kgstore/backend.h"
#include "sq_fts.h"

/* The core's token bytes (generic_search.c is_word_byte). */
static int word_byte(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch >= 0x80;
}

static int text_reserve(kg_fts_text *t, size_t more)
{
	if (t->len + more + 1 <= t->cap)
		return 0;
	size_t cap = t->cap ? t->cap : 256;
	while (cap < t->len + more + 1)
		cap *= 2;
	char *b = realloc(t->buf, cap);
	if (!b)
		return KG_ENOMEM;
	t->buf = b;
	t->cap = cap;
	return 0;
}

/* Appends the tokens of s, lower-cased, each preceded by a space. */
static int text_add(kg_fts_text *t, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		if (!word_byte(*p)) {
			p++;
			continue;
		}
		const unsigned char *start = p;
		while (*p && word_byte(*p))
			p++;
		size_t n = (size_t)(p - start);
		if (text_reserve(t, n + 1) < 0)
			return KG_ENOMEM;
		char *o = t->buf + t->len;
		if (t->len)
			*o++ = ' ';
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = start[i];
			o[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
		}
		t->len = (size_t)(o - t->buf) + n;
		t->buf[t->len] = '\0';
		t->tokens++;
	}
	return 0;
}

/* String values anywhere in the JSON, as generic_search.c add_json_strings. */
static int text_add_json(kg_fts_text *t, json_t *v)
{
	if (json_is_string(v))
		return text_add(t, json_string_value(v));
	if (json_is_object(v)) {
		const char *key;
		json_t *x;
		json_object_foreach(v, key, x)
		if (text_add_json(t, x) < 0) return KG_ENOMEM;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		if (text_add_json(t, x) < 0) return KG_ENOMEM;
	}
	return 0;
}

int kg_fts_text_build(kg_fts_text *t, const char *id, const char *type, const char *props)
{
	t->len = t->tokens = 0;
	if (text_reserve(t, 0) < 0)
		return KG_ENOMEM;
	t->buf[0] = '\0';
	if (text_add(t, id ? id : "") < 0 || text_add(t, type ? type : "") < 0)
		return KG_ENOMEM;
	/* Same parser and flags as the core, so a file's odd JSON (invalid,
	 * duplicate keys, \u0000) gives the same tokens. */
	json_t *j = props ? json_loads(props, 0, NULL) : NULL;
	int rc = j ? text_add_json(t, j) : 0;
	json_decref(j);
	return rc;
}

void kg_fts_text_free(kg_fts_text *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

/* A word-at-a-time multiplicative hash (the verification pass hashes every
 * row, so bytes one by one would be its main cost), finished with
 * splitmix64 so that sums of many fingerprints stay spread over all 64
 * bits. Bytes are assembled little-endian whatever the machine, since the
 * sums are stored in the file. */
static uint64_t mix(uint64_t h, uint64_t w)
{
	h ^= w;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	if (!s)
		return mix(h, 0x6e756c6cULL); /* NULL differs from "" (length 0 below) */
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	h = mix(h, (uint64_t)n + 1);
	for (; n >= 8; n -= 8, p += 8)
		h = mix(h, (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
		               (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56);
	uint64_t w = 0;
	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)p[i] << (8 * i);
	return mix(h, w);
}

uint64_t kg_fts_row_hash(int64_t rowid, const char *id, const char *tenant, const char *type, const char *props)
{
	uint64_t h = mix(0x243f6a8885a308d3ULL, (uint64_t)rowid);
	h = hash_str(h, id);
	h = hash_str(h, tenant);
	h = hash_str(h, type);
	h = hash_str(h, props);
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int kg_fts_query_parse(kg_fts_query *q, const char *query)
{
	memset(q, 0, sizeof(*q));
	kg_fts_text t = { 0 };
	if (text_add(&t, query) < 0)
		goto oom;
	if (t.tokens == 0) {
		kg_fts_text_free(&t);
		return KG_EINVAL;
	}
	q->buf = t.buf; /* tokens separated by spaces: cut in place */
	if (!(q->terms = malloc(t.tokens * sizeof(char *))))
		return KG_ENOMEM;
	size_t n = 0;
	for (char *p = q->buf; p;) {
		char *sp = strchr(p, ' ');
		if (sp)
			*sp = '\0';
		q->terms[n++] = p;
		p = sp ? sp + 1 : NULL;
	}
	qsort(q->terms, n, sizeof(char *), cmp_str);
	size_t u = 0, bytes = 1;
	for (size_t i = 0; i < n; i++)
		if (!u || strcmp(q->terms[u - 1], q->terms[i]) != 0) {
			q->terms[u++] = q->terms[i];
			bytes += strlen(q->terms[i]) + 6;
		}
	q->n = u;
	/* Tokens hold no quote or space (word bytes only), so quoting is safe. */
	if (!(q->match = malloc(bytes)))
		return KG_ENOMEM;
	char *o = q->match;
	for (size_t i = 0; i < u; i++) {
		if (i) {
			memcpy(o, " OR ", 4);
			o += 4;
		}
		size_t l = strlen(q->terms[i]);
		*o++ = '"';
		memcpy(o, q->terms[i], l);
		o += l;
		*o++ = '"';
	}
	*o = '\0';
	return 0;
oom:
	kg_fts_text_free(&t);
	return KG_ENOMEM;
}

void kg_fts_query_free(kg_fts_query *q)
{
	free(q->terms);
	free(q->buf);
	free(q->match);
	memset(q, 0, sizeof(*q));
}
