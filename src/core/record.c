/*
 * record.c - the data the API hands out: one-block entity/relation copies,
 * result lists and their builders, and small shared helpers (errors, JSON
 * validation, tenant ids, embeddings, time).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kgstore/backend.h"

/* ------------------------------------------------------------------ */
/* Status text and call errors                                          */
/* ------------------------------------------------------------------ */

const char *kg_strerror(int code)
{
	switch (code) {
	case KG_OK: return "ok";
	case KG_ENOTFOUND: return "not found";
	case KG_EEXISTS: return "already exists";
	case KG_EINVAL: return "invalid argument";
	case KG_EBUSY: return "database busy (locked by another writer)";
	case KG_ECONNLOST: return "connection lost or server unavailable";
	case KG_EPOOL: return "connection pool exhausted";
	case KG_EBUDGET: return "memory budget reached";
	case KG_EIO: return "I/O error";
	case KG_ECORRUPT: return "corrupt or truncated data";
	case KG_EUNSUPPORTED: return "not supported by this backend or build";
	case KG_ENOMEM: return "out of memory";
	case KG_EINTERNAL: return "internal error";
	default: return "unknown error code";
	}
}

int kg_call_verror(kg_call *c, int code, const char *fmt, va_list ap)
{
	if (c && c->msg && c->msgcap > 0)
		vsnprintf(c->msg, c->msgcap, fmt, ap);
	return code;
}

int kg_call_error(kg_call *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kg_call_verror(c, code, fmt, ap);
	va_end(ap);
	return code;
}

/* ------------------------------------------------------------------ */
/* One-block copies                                                     */
/* ------------------------------------------------------------------ */

static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 0; }

/* Copies s into the block at *cursor, returns the copy (or NULL for NULL). */
static const char *put_str(char **cursor, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *dst = *cursor;
	memcpy(dst, s, n);
	*cursor += n;
	return dst;
}

kg_entity *kg_entity_dup(const kg_entity *src)
{
	/* Layout: struct | embedding floats (aligned) | strings. */
	size_t emb_bytes = src->embedding ? src->embedding_dim * sizeof(float) : 0;
	size_t total = sizeof(kg_entity) + emb_bytes + str_size(src->id) +
	               str_size(src->entity_type) + str_size(src->properties) +
	               str_size(src->source) + str_size(src->tenant_id);
	kg_entity *e = malloc(total);
	if (!e)
		return NULL;
	*e = *src;
	char *cursor = (char *)(e + 1);
	if (emb_bytes) {
		memcpy(cursor, src->embedding, emb_bytes);
		e->embedding = (const float *)cursor;
		cursor += emb_bytes;
	} else {
		e->embedding = NULL;
		e->embedding_dim = 0;
	}
	e->id = put_str(&cursor, src->id);
	e->entity_type = put_str(&cursor, src->entity_type);
	e->properties = put_str(&cursor, src->properties);
	e->source = put_str(&cursor, src->source);
	e->tenant_id = put_str(&cursor, src->tenant_id);
	return e;
}

kg_relation *kg_relation_dup(const kg_relation *src)
{
	size_t total = sizeof(kg_relation) + str_size(src->id) +
	               str_size(src->relation_type) + str_size(src->source_id) +
	               str_size(src->target_id) + str_size(src->properties) +
	               str_size(src->source) + str_size(src->tenant_id);
	kg_relation *r = malloc(total);
	if (!r)
		return NULL;
	*r = *src;
	char *cursor = (char *)(r + 1);
	r->id = put_str(&cursor, src->id);
	r->relation_type = put_str(&cursor, src->relation_type);
	r->source_id = put_str(&cursor, src->source_id);
	r->target_id = put_str(&cursor, src->target_id);
	r->properties = put_str(&cursor, src->properties);
	r->source = put_str(&cursor, src->source);
	r->tenant_id = put_str(&cursor, src->tenant_id);
	return r;
}

void kg_entity_free(kg_entity *e) { free(e); }
void kg_relation_free(kg_relation *r) { free(r); }

/* ------------------------------------------------------------------ */
/* Lists                                                                */
/* ------------------------------------------------------------------ */

static int grow(void **items, size_t *cap, size_t need, size_t item_size)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	void *p = realloc(*items, ncap * item_size);
	if (!p)
		return KG_ENOMEM;
	*items = p;
	*cap = ncap;
	return 0;
}

kg_entity_list *kg_entity_list_new(void)
{
	return calloc(1, sizeof(kg_entity_list));
}

static int entity_list_push(kg_entity_list *l, kg_entity *owned, int scored, double score)
{
	size_t old_cap = l->cap_;
	if (grow((void **)&l->items, &l->cap_, l->count + 1, sizeof(*l->items)) < 0)
		goto fail;
	if (scored || l->scores) {
		if (!l->scores || l->cap_ != old_cap) {
			double *s = realloc(l->scores, l->cap_ * sizeof(double));
			if (!s)
				goto fail;
			if (!l->scores && l->count)
				memset(s, 0, l->count * sizeof(double));
			l->scores = s;
		}
		l->scores[l->count] = score;
	}
	l->items[l->count++] = owned;
	return 0;
fail:
	kg_entity_free(owned);
	return KG_ENOMEM;
}

int kg_entity_list_push(kg_entity_list *l, kg_entity *owned)
{
	return entity_list_push(l, owned, 0, 0.0);
}

int kg_entity_list_push_scored(kg_entity_list *l, kg_entity *owned, double score)
{
	return entity_list_push(l, owned, 1, score);
}

void kg_entity_list_free(kg_entity_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		kg_entity_free(l->items[i]);
	free(l->items);
	free(l->scores);
	free(l);
}

kg_relation_list *kg_relation_list_new(void)
{
	return calloc(1, sizeof(kg_relation_list));
}

int kg_relation_list_push(kg_relation_list *l, kg_relation *owned)
{
	if (grow((void **)&l->items, &l->cap_, l->count + 1, sizeof(*l->items)) < 0) {
		kg_relation_free(owned);
		return KG_ENOMEM;
	}
	l->items[l->count++] = owned;
	return 0;
}

void kg_relation_list_free(kg_relation_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		kg_relation_free(l->items[i]);
	free(l->items);
	free(l);
}

void kg_subgraph_free(kg_subgraph *g)
{
	if (!g)
		return;
	kg_entity_list_free(g->entities);
	kg_relation_list_free(g->relations);
	free(g);
}

/* ------------------------------------------------------------------ */
/* Path lists                                                           */
/* ------------------------------------------------------------------ */

/* The pool behind a path list. Paths keep pointers into `slots`, a single
 * array of entity/relation pointers laid out per path, so adding paths never
 * invalidates pointers handed out earlier except when slots grows; paths are
 * therefore stored as offsets and fixed up after every growth. */
typedef struct path_pool {
	kg_entity **ents;
	size_t n_ents, cap_ents;
	kg_relation **rels;
	size_t n_rels, cap_rels;
	void **slots; /* per path: nodes then edges */
	size_t n_slots, cap_slots;
	size_t *offsets; /* per path: index of its first slot */
	size_t cap_paths;
} path_pool;

kg_path_list *kg_path_list_new(void)
{
	kg_path_list *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->priv_ = calloc(1, sizeof(path_pool));
	if (!l->priv_) {
		free(l);
		return NULL;
	}
	return l;
}

int kg_path_list_add_entity(kg_path_list *l, kg_entity *owned, size_t *index)
{
	path_pool *p = l->priv_;
	if (grow((void **)&p->ents, &p->cap_ents, p->n_ents + 1, sizeof(*p->ents)) < 0) {
		kg_entity_free(owned);
		return KG_ENOMEM;
	}
	*index = p->n_ents;
	p->ents[p->n_ents++] = owned;
	return 0;
}

int kg_path_list_add_relation(kg_path_list *l, kg_relation *owned, size_t *index)
{
	path_pool *p = l->priv_;
	if (grow((void **)&p->rels, &p->cap_rels, p->n_rels + 1, sizeof(*p->rels)) < 0) {
		kg_relation_free(owned);
		return KG_ENOMEM;
	}
	*index = p->n_rels;
	p->rels[p->n_rels++] = owned;
	return 0;
}

static void path_fixup(kg_path_list *l)
{
	path_pool *p = l->priv_;
	for (size_t i = 0; i < l->count; i++) {
		kg_path *path = &l->items[i];
		path->nodes = (kg_entity **)&p->slots[p->offsets[i]];
		path->edges = path->n_edges ? (kg_relation **)&p->slots[p->offsets[i] + path->n_nodes] : NULL;
	}
}

int kg_path_list_add_path(kg_path_list *l, const size_t *node_idx, size_t n_nodes,
                          const size_t *edge_idx, double score)
{
	path_pool *p = l->priv_;
	if (n_nodes == 0)
		return KG_EINVAL;
	size_t n_edges = n_nodes - 1;
	for (size_t i = 0; i < n_nodes; i++)
		if (node_idx[i] >= p->n_ents)
			return KG_EINTERNAL;
	for (size_t i = 0; i < n_edges; i++)
		if (edge_idx[i] >= p->n_rels)
			return KG_EINTERNAL;
	if (l->count + 1 > p->cap_paths) {
		size_t ncap = p->cap_paths ? p->cap_paths * 2 : 8;
		kg_path *items = realloc(l->items, ncap * sizeof(*items));
		if (!items)
			return KG_ENOMEM;
		l->items = items;
		size_t *offsets = realloc(p->offsets, ncap * sizeof(*offsets));
		if (!offsets)
			return KG_ENOMEM;
		p->offsets = offsets;
		p->cap_paths = ncap;
	}
	void **old_slots = p->slots;
	if (grow((void **)&p->slots, &p->cap_slots, p->n_slots + n_nodes + n_edges, sizeof(void *)) < 0)
		return KG_ENOMEM;
	size_t off = p->n_slots;
	for (size_t i = 0; i < n_nodes; i++)
		p->slots[off + i] = p->ents[node_idx[i]];
	for (size_t i = 0; i < n_edges; i++)
		p->slots[off + n_nodes + i] = p->rels[edge_idx[i]];
	p->n_slots += n_nodes + n_edges;
	p->offsets[l->count] = off;
	kg_path *path = &l->items[l->count++];
	path->n_nodes = n_nodes;
	path->n_edges = n_edges;
	path->score = score;
	if (old_slots != p->slots)
		path_fixup(l);
	else {
		path->nodes = (kg_entity **)&p->slots[off];
		path->edges = n_edges ? (kg_relation **)&p->slots[off + n_nodes] : NULL;
	}
	return 0;
}

void kg_path_list_free(kg_path_list *l)
{
	if (!l)
		return;
	path_pool *p = l->priv_;
	if (p) {
		for (size_t i = 0; i < p->n_ents; i++)
			kg_entity_free(p->ents[i]);
		for (size_t i = 0; i < p->n_rels; i++)
			kg_relation_free(p->rels[i]);
		free(p->ents);
		free(p->rels);
		free(p->slots);
		free(p->offsets);
		free(p);
	}
	free(l->items);
	free(l);
}

/* ------------------------------------------------------------------ */
/* Stats                                                                */
/* ------------------------------------------------------------------ */

typedef struct stat_row {
	char *type;
	size_t count;
	int is_relation;
} stat_row;

struct kg_stats_builder {
	stat_row *rows;
	size_t n, cap;
};

kg_stats_builder *kg_stats_builder_new(void)
{
	return calloc(1, sizeof(kg_stats_builder));
}

int kg_stats_builder_add(kg_stats_builder *sb, int is_relation, const char *type, size_t count)
{
	for (size_t i = 0; i < sb->n; i++) {
		if (sb->rows[i].is_relation == !!is_relation && strcmp(sb->rows[i].type, type) == 0) {
			sb->rows[i].count += count;
			return 0;
		}
	}
	if (grow((void **)&sb->rows, &sb->cap, sb->n + 1, sizeof(*sb->rows)) < 0)
		return KG_ENOMEM;
	char *copy = strdup(type);
	if (!copy)
		return KG_ENOMEM;
	sb->rows[sb->n++] = (stat_row){ copy, count, !!is_relation };
	return 0;
}

static int stat_row_cmp(const void *a, const void *b)
{
	const stat_row *x = a, *y = b;
	if (x->is_relation != y->is_relation)
		return x->is_relation - y->is_relation;
	return strcmp(x->type, y->type);
}

static void stats_builder_free(kg_stats_builder *sb)
{
	for (size_t i = 0; i < sb->n; i++)
		free(sb->rows[i].type);
	free(sb->rows);
	free(sb);
}

int kg_stats_builder_finish(kg_stats_builder *sb, const char *backend, kg_stats **out)
{
	int rc = 0;
	*out = NULL;
	if (sb->n)
		qsort(sb->rows, sb->n, sizeof(*sb->rows), stat_row_cmp);
	size_t strings = str_size(backend);
	for (size_t i = 0; i < sb->n; i++)
		strings += strlen(sb->rows[i].type) + 1;
	kg_stats *st = malloc(sizeof(kg_stats) + sb->n * sizeof(kg_type_count) + strings);
	if (!st) {
		rc = KG_ENOMEM;
		goto cleanup;
	}
	memset(st, 0, sizeof(*st));
	kg_type_count *types = (kg_type_count *)(st + 1);
	char *cursor = (char *)(types + sb->n);
	for (size_t i = 0; i < sb->n; i++) {
		types[i].type = put_str(&cursor, sb->rows[i].type);
		types[i].count = sb->rows[i].count;
		if (sb->rows[i].is_relation) {
			st->n_relation_types++;
			st->relation_count += sb->rows[i].count;
		} else {
			st->n_entity_types++;
			st->entity_count += sb->rows[i].count;
		}
	}
	st->entity_types = st->n_entity_types ? types : NULL;
	st->relation_types = st->n_relation_types ? types + st->n_entity_types : NULL;
	st->backend = put_str(&cursor, backend);
	*out = st;
cleanup:
	stats_builder_free(sb);
	return rc;
}

void kg_stats_free(kg_stats *s) { free(s); }

/* ------------------------------------------------------------------ */
/* JSON object validation (RFC 8259), no allocation                     */
/* ------------------------------------------------------------------ */

typedef struct json_scan {
	const unsigned char *p, *end;
	int depth;
} json_scan;

#define JSON_MAX_DEPTH 512

static void skip_ws(json_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hexdig(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Validates UTF-8 too: properties go into JSONB columns that reject bad text. */
static int scan_string(json_scan *s)
{
	s->p++; /* opening quote */
	while (s->p < s->end) {
		unsigned char c = *s->p;
		if (c == '"') {
			s->p++;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			if (++s->p >= s->end)
				return 0;
			c = *s->p;
			if (c == 'u') {
				if (s->end - s->p < 5)
					return 0;
				for (int i = 1; i <= 4; i++)
					if (!hexdig(s->p[i]))
						return 0;
				s->p += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", c) || c == 0)
				return 0;
			s->p++;
			continue;
		}
		if (c < 0x80) {
			s->p++;
			continue;
		}
		int extra;
		unsigned cp;
		if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; }
		else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; }
		else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; }
		else return 0;
		if (s->end - s->p <= extra)
			return 0;
		for (int i = 1; i <= extra; i++) {
			if ((s->p[i] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s->p[i] & 0x3F);
		}
		if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
		    (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		s->p += extra + 1;
	}
	return 0;
}

static int is_digit(const json_scan *s) { return s->p < s->end && *s->p >= '0' && *s->p <= '9'; }

static int scan_number(json_scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (!is_digit(s))
		return 0;
	if (*s->p == '0')
		s->p++;
	else
		while (is_digit(s))
			s->p++;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!is_digit(s))
			return 0;
		while (is_digit(s))
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!is_digit(s))
			return 0;
		while (is_digit(s))
			s->p++;
	}
	return 1;
}

static int scan_literal(json_scan *s, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return 0;
	s->p += n;
	return 1;
}

static int scan_value(json_scan *s);

static int scan_container(json_scan *s, unsigned char close, int is_object)
{
	if (++s->depth > JSON_MAX_DEPTH)
		return 0;
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return 1;
	}
	for (;;) {
		skip_ws(s);
		if (is_object) {
			if (s->p >= s->end || *s->p != '"' || !scan_string(s))
				return 0;
			skip_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return 0;
			s->p++;
			skip_ws(s);
		}
		if (!scan_value(s))
			return 0;
		skip_ws(s);
		if (s->p >= s->end)
			return 0;
		if (*s->p == ',') {
			s->p++;
			continue;
		}
		if (*s->p == close) {
			s->p++;
			s->depth--;
			return 1;
		}
		return 0;
	}
}

static int scan_value(json_scan *s)
{
	if (s->p >= s->end)
		return 0;
	switch (*s->p) {
	case '{': return scan_container(s, '}', 1);
	case '[': return scan_container(s, ']', 0);
	case '"': return scan_string(s);
	case 't': return scan_literal(s, "true");
	case 'f': return scan_literal(s, "false");
	case 'n': return scan_literal(s, "null");
	default: return scan_number(s);
	}
}

int kg_json_is_object(const char *text, size_t len)
{
	json_scan s = { (const unsigned char *)text, (const unsigned char *)text + len, 0 };
	skip_ws(&s);
	if (s.p >= s.end || *s.p != '{')
		return 0;
	if (!scan_value(&s))
		return 0;
	skip_ws(&s);
	return s.p == s.end;
}

/* ------------------------------------------------------------------ */
/* Tenants, embeddings, time                                            */
/* ------------------------------------------------------------------ */

int kg_tenant_id_valid(const char *t)
{
	if (!t)
		return 0;
	size_t n = 0;
	for (const char *p = t; *p; p++, n++) {
		char c = *p;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		         (c >= '0' && c <= '9') || c == '_' || c == '-';
		if (!ok || n >= 255)
			return 0;
	}
	return n >= 1;
}

void kg_embedding_to_le(const float *v, size_t dim, unsigned char *out)
{
	for (size_t i = 0; i < dim; i++) {
		uint32_t bits;
		memcpy(&bits, &v[i], 4);
		out[4 * i + 0] = (unsigned char)(bits);
		out[4 * i + 1] = (unsigned char)(bits >> 8);
		out[4 * i + 2] = (unsigned char)(bits >> 16);
		out[4 * i + 3] = (unsigned char)(bits >> 24);
	}
}

void kg_embedding_from_le(const unsigned char *in, size_t dim, float *out)
{
	for (size_t i = 0; i < dim; i++) {
		uint32_t bits = (uint32_t)in[4 * i] | ((uint32_t)in[4 * i + 1] << 8) |
		                ((uint32_t)in[4 * i + 2] << 16) | ((uint32_t)in[4 * i + 3] << 24);
		memcpy(&out[i], &bits, 4);
	}
}

int64_t kg_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * algorithm): avoids timegm, which is not in C11 or POSIX. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

void kg_format_time(int64_t us, char buf[32])
{
	int64_t secs = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		secs -= 1;
	}
	int64_t days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days -= 1;
	}
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	/* Years outside 0..9999 cannot be written in this form: clamp them. */
	if (y < 0)
		y = 0;
	if (y > 9999)
		y = 9999;
	snprintf(buf, 32, "%04d-%02u-%02uT%02d:%02d:%02d.%06d", (int)y, m % 100, d % 100,
	         (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)frac);
}

static int take_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return 0;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 1;
}

int kg_parse_time(const char *text, int64_t *us)
{
	const char *p = text;
	int y, mo, d, h = 0, mi = 0, s = 0;
	int64_t frac = 0;
	if (!take_digits(&p, 4, &y) || *p++ != '-' || !take_digits(&p, 2, &mo) ||
	    *p++ != '-' || !take_digits(&p, 2, &d))
		return KG_EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return KG_EINVAL;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (!take_digits(&p, 2, &h) || *p++ != ':' || !take_digits(&p, 2, &mi))
			return KG_EINVAL;
		if (*p == ':') {
			p++;
			if (!take_digits(&p, 2, &s))
				return KG_EINVAL;
		}
		if (*p == '.') {
			p++;
			int digits = 0;
			while (*p >= '0' && *p <= '9') {
				if (digits < 6) {
					frac = frac * 10 + (*p - '0');
					digits++;
				}
				p++;
			}
			if (digits == 0)
				return KG_EINVAL;
			while (digits++ < 6)
				frac *= 10;
		}
		if (h > 23 || mi > 59 || s > 60)
			return KG_EINVAL;
	}
	int64_t offset = 0;
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (!take_digits(&p, 2, &oh))
			return KG_EINVAL;
		if (*p == ':')
			p++;
		if (*p)
			if (!take_digits(&p, 2, &om))
				return KG_EINVAL;
		offset = sign * (oh * 3600 + om * 60);
	}
	if (*p)
		return KG_EINVAL;
	int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s - offset;
	*us = secs * 1000000 + frac;
	return 0;
}

uint64_t kg_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}
