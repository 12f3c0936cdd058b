/*
 * io_common.c - buffers, the (gzip) writer, JSON reading and writing of
 * records in the export format, and the canonical record hash used by the
 * verify step.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/io_internal.h"

/* ------------------------------------------------------------------ */
/* buffer                                                               */
/* ------------------------------------------------------------------ */

int kgio_buf_reserve(kgio_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d)
		return KG_ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

int kgio_buf_append(kgio_buf *b, const void *p, size_t n)
{
	if (kgio_buf_reserve(b, n))
		return KG_ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int kgio_buf_putc(kgio_buf *b, char c)
{
	if (b->len + 2 > b->cap && kgio_buf_reserve(b, 1))
		return KG_ENOMEM;
	b->data[b->len++] = c;
	b->data[b->len] = 0;
	return 0;
}

int kgio_buf_printf(kgio_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[256];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return KG_EINTERNAL;
	if ((size_t)n < sizeof tmp)
		return kgio_buf_append(b, tmp, (size_t)n);
	if (kgio_buf_reserve(b, (size_t)n))
		return KG_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void kgio_buf_free(kgio_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void kgio_setmsg(char *dst, size_t cap, const char *fmt, ...)
{
	if (!dst || !cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
}

int kgio_has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

kg_io_format kgio_format_from_name(const char *path)
{
	if (!path)
		return KG_FORMAT_JSONL;
	size_t n = strlen(path);
	char tmp[KG_IO_PATH_SIZE];
	if (n >= sizeof tmp)
		n = sizeof tmp - 1;
	memcpy(tmp, path, n);
	tmp[n] = 0;
	if (kgio_has_suffix(tmp, ".gz"))
		tmp[n - 3] = 0;
	if (kgio_has_suffix(tmp, ".json"))
		return KG_FORMAT_JSON;
	if (kgio_has_suffix(tmp, ".csv"))
		return KG_FORMAT_CSV;
	return KG_FORMAT_JSONL;
}

/* ------------------------------------------------------------------ */
/* writer                                                               */
/* ------------------------------------------------------------------ */

#define WRITER_CHUNK (1u << 20)

/* gzip on a dup of w->f's descriptor (so gzclose leaves w->f to us);
 * 0 or -1. */
static int start_gzip(kgio_writer *w, int level)
{
	char mode[8];
	snprintf(mode, sizeof mode, "wb%d", level > 0 && level <= 9 ? level : 6);
	fflush(w->f);
	int fd = dup(fileno(w->f));
	w->gz = fd >= 0 ? gzdopen(fd, mode) : NULL;
	if (!w->gz) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	gzbuffer(w->gz, 256 * 1024);
	return 0;
}

/* The writer's buffer; KG_ENOMEM with the message in w->err. */
static int writer_buffer(kgio_writer *w)
{
	if (kgio_buf_reserve(&w->buf, WRITER_CHUNK) == 0)
		return 0;
	kgio_setmsg(w->err, sizeof w->err, "out of memory for a write buffer of %d bytes", (int)WRITER_CHUNK);
	return KG_ENOMEM;
}

int kgio_writer_open(kgio_writer *w, const char *path, int gzip, int level)
{
	memset(w, 0, sizeof *w);
	w->f = fopen(path, "wb");
	if (!w->f) {
		kgio_setmsg(w->err, sizeof w->err, "cannot create %s: %s", path, strerror(errno));
		return KG_EIO;
	}
	if (gzip && start_gzip(w, level)) {
		fclose(w->f);
		w->f = NULL;
		kgio_setmsg(w->err, sizeof w->err, "cannot start gzip on %s", path);
		return KG_EIO;
	}
	return writer_buffer(w);
}

int kgio_writer_from_stream(kgio_writer *w, FILE *f, int gzip, int level)
{
	memset(w, 0, sizeof *w);
	w->f = f;
	w->borrowed = 1;
	if (gzip && start_gzip(w, level)) {
		kgio_setmsg(w->err, sizeof w->err, "cannot start gzip on the output stream");
		return KG_EIO;
	}
	return writer_buffer(w);
}

int kgio_writer_flush(kgio_writer *w)
{
	if (w->failed)
		return KG_EIO;
	if (!w->buf.len)
		return 0;
	if (w->gz) {
		if (gzwrite(w->gz, w->buf.data, (unsigned)w->buf.len) != (int)w->buf.len) {
			int zerr = 0;
			kgio_setmsg(w->err, sizeof w->err, "gzip write failed: %s (disk full?)",
			            gzerror(w->gz, &zerr));
			w->failed = 1;
			return KG_EIO;
		}
	} else if (fwrite(w->buf.data, 1, w->buf.len, w->f) != w->buf.len) {
		kgio_setmsg(w->err, sizeof w->err, "write failed: %s", strerror(errno));
		w->failed = 1;
		return KG_EIO;
	}
	w->buf.len = 0;
	return 0;
}

int kgio_writer_close(kgio_writer *w)
{
	int rc = kgio_writer_flush(w);
	if (w->gz) {
		int zrc = gzclose(w->gz);
		w->gz = NULL;
		if (zrc != Z_OK && !rc) {
			kgio_setmsg(w->err, sizeof w->err, "gzip close failed (code %d; disk full?)", zrc);
			rc = KG_EIO;
		}
	}
	if (w->f) {
		if (w->borrowed) {
			if (fflush(w->f) && !rc) {
				kgio_setmsg(w->err, sizeof w->err, "write failed: %s", strerror(errno));
				rc = KG_EIO;
			}
		} else if (fclose(w->f) && !rc) {
			kgio_setmsg(w->err, sizeof w->err, "close failed: %s", strerror(errno));
			rc = KG_EIO;
		}
		w->f = NULL;
	}
	kgio_buf_free(&w->buf);
	return rc;
}

/* ------------------------------------------------------------------ */
/* JSON writing                                                         */
/* ------------------------------------------------------------------ */

int kgio_json_string(kgio_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(s);
	if (kgio_buf_reserve(b, n * 6 + 2))
		return KG_ENOMEM;
	char *o = b->data + b->len;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c >= 0x20) {
			*o++ = (char)c;
		} else if (c == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (c == '\t') {
			*o++ = '\\';
			*o++ = 't';
		} else if (c == '\r') {
			*o++ = '\\';
			*o++ = 'r';
		} else {
			memcpy(o, "\\u00", 4);
			o += 4;
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->data);
	b->data[b->len] = 0;
	return 0;
}

/* Shortest text that reads back as the same double. */
int kgio_json_double(kgio_buf *b, double d)
{
	char tmp[40];
	if (!isfinite(d))
		return kgio_buf_append(b, "null", 4);
	if (fabs(d) < 1e15 && d == (double)(int64_t)d) { /* range first: the cast of a huge value is undefined */
		int n = snprintf(tmp, sizeof tmp, "%.1f", d);
		return kgio_buf_append(b, tmp, (size_t)n);
	}
	for (int prec = 15; prec <= 17; prec++) {
		int n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (strtod(tmp, NULL) == d || prec == 17)
			return kgio_buf_append(b, tmp, (size_t)n);
	}
	return 0;
}

static int json_float(kgio_buf *b, float f)
{
	char tmp[32];
	if (!isfinite(f))
		return kgio_buf_append(b, "null", 4);
	/* 9 significant digits always read back as the same float32; try fewer
	 * first to keep files small. */
	int n = 0;
	for (int prec = 6; prec <= 9; prec++) {
		n = snprintf(tmp, sizeof tmp, "%.*g", prec, (double)f);
		if (strtof(tmp, NULL) == f)
			break;
	}
	return kgio_buf_append(b, tmp, (size_t)n);
}

static int json_time(kgio_buf *b, int64_t us)
{
	char t[32];
	kg_format_time(us, t);
	size_t n = strlen(t);
	if (kgio_buf_reserve(b, n + 2))
		return KG_ENOMEM;
	b->data[b->len++] = '"';
	memcpy(b->data + b->len, t, n);
	b->len += n;
	b->data[b->len++] = '"';
	b->data[b->len] = 0;
	return 0;
}

#define LIT(b, s) kgio_buf_append((b), s, sizeof(s) - 1)

static int json_props(kgio_buf *b, const char *props)
{
	/* The core validated the text as a JSON object when it was stored, so
	 * it is copied as it is (no re-encoding on the hot path). */
	if (!props || !*props)
		return LIT(b, "{}");
	return kgio_buf_append(b, props, strlen(props));
}

/* The members entities and relations end with, and the closing brace. */
static int json_tail(kgio_buf *b, int64_t created, int64_t updated, const char *source,
                     const char *tenant)
{
	int rc = 0;
	rc |= LIT(b, ", \"created_at\": ");
	rc |= json_time(b, created);
	rc |= LIT(b, ", \"updated_at\": ");
	rc |= json_time(b, updated);
	if (source) {
		rc |= LIT(b, ", \"source\": ");
		rc |= kgio_json_string(b, source);
	}
	if (tenant) {
		rc |= LIT(b, ", \"tenant_id\": ");
		rc |= kgio_json_string(b, tenant);
	}
	rc |= kgio_buf_putc(b, '}');
	return rc;
}

int kgio_json_entity(kgio_buf *b, const kg_entity *e)
{
	int rc = 0;
	rc |= LIT(b, "{\"id\": ");
	rc |= kgio_json_string(b, e->id);
	rc |= LIT(b, ", \"entity_type\": ");
	rc |= kgio_json_string(b, e->entity_type);
	rc |= LIT(b, ", \"properties\": ");
	rc |= json_props(b, e->properties);
	if (e->embedding && e->embedding_dim) {
		rc |= LIT(b, ", \"embedding\": [");
		for (size_t i = 0; i < e->embedding_dim; i++) {
			if (i)
				rc |= kgio_buf_putc(b, ',');
			rc |= json_float(b, e->embedding[i]);
		}
		rc |= kgio_buf_putc(b, ']');
	}
	rc |= json_tail(b, e->created_at, e->updated_at, e->source, e->tenant_id);
	return rc ? KG_ENOMEM : 0;
}

int kgio_json_relation(kgio_buf *b, const kg_relation *r)
{
	int rc = 0;
	rc |= LIT(b, "{\"id\": ");
	rc |= kgio_json_string(b, r->id);
	rc |= LIT(b, ", \"relation_type\": ");
	rc |= kgio_json_string(b, r->relation_type);
	rc |= LIT(b, ", \"source_id\": ");
	rc |= kgio_json_string(b, r->source_id);
	rc |= LIT(b, ", \"target_id\": ");
	rc |= kgio_json_string(b, r->target_id);
	rc |= LIT(b, ", \"properties\": ");
	rc |= json_props(b, r->properties);
	rc |= LIT(b, ", \"weight\": ");
	rc |= kgio_json_double(b, r->weight);
	rc |= json_tail(b, r->created_at, r->updated_at, r->source, r->tenant_id);
	return rc ? KG_ENOMEM : 0;
}

/* ------------------------------------------------------------------ */
/* JSON reading                                                         */
/* ------------------------------------------------------------------ */

#define JP_FAIL(j, ...) (snprintf((j)->err, sizeof (j)->err, __VA_ARGS__), -1)

void kgio_jp_ws(kgio_jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void put_utf8(char **o, unsigned cp)
{
	char *p = *o;
	if (cp < 0x80) {
		*p++ = (char)cp;
	} else if (cp < 0x800) {
		*p++ = (char)(0xC0 | (cp >> 6));
		*p++ = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*p++ = (char)(0xE0 | (cp >> 12));
		*p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*p++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*p++ = (char)(0xF0 | (cp >> 18));
		*p++ = (char)(0x80 | ((cp >> 12) & 0x3F));
		*p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*p++ = (char)(0x80 | (cp & 0x3F));
	}
	*o = p;
}

int kgio_jp_string(kgio_jp *j, kgio_buf *b)
{
	if (j->p >= j->end || *j->p != '"')
		return JP_FAIL(j, "expected a string");
	j->p++;
	const char *s = j->p;
	/* Fast path: no escapes. */
	while (j->p < j->end && *j->p != '"' && *j->p != '\\' && (unsigned char)*j->p >= 0x20)
		j->p++;
	if (kgio_buf_reserve(b, (size_t)(j->end - s) + 1))
		return JP_FAIL(j, "out of memory");
	char *o = b->data + b->len;
	memcpy(o, s, (size_t)(j->p - s));
	o += j->p - s;
	for (;;) {
		if (j->p >= j->end)
			return JP_FAIL(j, "unterminated string");
		unsigned char c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			break;
		}
		if (c < 0x20)
			return JP_FAIL(j, "control character in a string (escape it as \\u%04x)", c);
		if (c != '\\') {
			*o++ = (char)c;
			j->p++;
			continue;
		}
		if (j->p + 1 >= j->end)
			return JP_FAIL(j, "unterminated string");
		char e = j->p[1];
		j->p += 2;
		switch (e) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned cp;
			if (j->end - j->p < 4 || hex4(j->p, &cp))
				return JP_FAIL(j, "bad \\u escape in a string");
			j->p += 4;
			if (cp >= 0xD800 && cp < 0xDC00) {
				unsigned lo;
				if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) ||
				    lo < 0xDC00 || lo > 0xDFFF)
					return JP_FAIL(j, "unpaired surrogate in a \\u escape");
				j->p += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp < 0xE000) {
				return JP_FAIL(j, "unpaired surrogate in a \\u escape");
			} else if (cp == 0) {
				return JP_FAIL(j, "\\u0000 is not allowed in a string");
			}
			put_utf8(&o, cp);
			break;
		}
		default:
			return JP_FAIL(j, "bad escape '\\%c' in a string", e);
		}
	}
	b->len = (size_t)(o - b->data);
	b->data[b->len] = 0;
	return 0;
}

static int skip_number(kgio_jp *j)
{
	const char *p = j->p;
	if (p < j->end && *p == '-')
		p++;
	if (p >= j->end || *p < '0' || *p > '9')
		return JP_FAIL(j, "invalid number");
	if (*p == '0')
		p++;
	else
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	if (p < j->end && *p == '.') {
		p++;
		if (p >= j->end || *p < '0' || *p > '9')
			return JP_FAIL(j, "invalid number");
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < j->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < j->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= j->end || *p < '0' || *p > '9')
			return JP_FAIL(j, "invalid number");
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	}
	j->p = p;
	return 0;
}

static int skip_string(kgio_jp *j)
{
	j->p++; /* opening quote */
	for (;;) {
		const char *q = j->p;
		while (q < j->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
			q++;
		j->p = q;
		if (q >= j->end)
			return JP_FAIL(j, "unterminated string");
		if (*q == '"') {
			j->p++;
			return 0;
		}
		if ((unsigned char)*q < 0x20)
			return JP_FAIL(j, "control character in a string");
		if (q + 1 >= j->end)
			return JP_FAIL(j, "unterminated string");
		char e = q[1];
		if (e == 'u') {
			unsigned cp;
			if (j->end - q < 6 || hex4(q + 2, &cp))
				return JP_FAIL(j, "bad \\u escape in a string");
			if (cp == 0)
				return JP_FAIL(j, "\\u0000 is not allowed in a string");
			j->p = q + 6;
		} else if (strchr("\"\\/bfnrt", e) && e) {
			j->p = q + 2;
		} else {
			return JP_FAIL(j, "bad escape '\\%c' in a string", e);
		}
	}
}

int kgio_jp_skip(kgio_jp *j, int depth)
{
	if (depth > 512)
		return JP_FAIL(j, "JSON nested more than 512 levels");
	kgio_jp_ws(j);
	if (j->p >= j->end)
		return JP_FAIL(j, "unexpected end of input (expected a value)");
	char c = *j->p;
	switch (c) {
	case '{':
		j->p++;
		kgio_jp_ws(j);
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return 0;
		}
		for (;;) {
			kgio_jp_ws(j);
			if (j->p >= j->end || *j->p != '"')
				return JP_FAIL(j, "expected a string key in an object");
			if (skip_string(j))
				return -1;
			kgio_jp_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return JP_FAIL(j, "expected ':' after an object key");
			j->p++;
			if (kgio_jp_skip(j, depth + 1))
				return -1;
			kgio_jp_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == '}') {
				j->p++;
				return 0;
			}
			return JP_FAIL(j, "expected ',' or '}' in an object");
		}
	case '[':
		j->p++;
		kgio_jp_ws(j);
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		for (;;) {
			if (kgio_jp_skip(j, depth + 1))
				return -1;
			kgio_jp_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == ']') {
				j->p++;
				return 0;
			}
			return JP_FAIL(j, "expected ',' or ']' in an array");
		}
	case '"':
		return skip_string(j);
	case 't':
		if (j->end - j->p >= 4 && !memcmp(j->p, "true", 4)) {
			j->p += 4;
			return 0;
		}
		break;
	case 'f':
		if (j->end - j->p >= 5 && !memcmp(j->p, "false", 5)) {
			j->p += 5;
			return 0;
		}
		break;
	case 'n':
		if (j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) {
			j->p += 4;
			return 0;
		}
		break;
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return skip_number(j);
	}
	return JP_FAIL(j, "invalid JSON value starting with '%c'", c);
}

/* ------------------------------------------------------------------ */
/* records                                                              */
/* ------------------------------------------------------------------ */

void kgio_arena_reset(kgio_arena *a)
{
	a->chars.len = 0;
	a->nfloats = 0;
}

void kgio_arena_free(kgio_arena *a)
{
	kgio_buf_free(&a->chars);
	free(a->floats);
	memset(a, 0, sizeof *a);
}

int kgio_arena_push_float(kgio_arena *a, float f)
{
	if (a->nfloats == a->capfloats) {
		size_t cap = a->capfloats ? a->capfloats * 2 : 1024;
		float *n = realloc(a->floats, cap * sizeof *n);
		if (!n)
			return KG_ENOMEM;
		a->floats = n;
		a->capfloats = cap;
	}
	a->floats[a->nfloats++] = f;
	return 0;
}

static const char *value_kind(char c)
{
	switch (c) {
	case '{': return "an object";
	case '[': return "an array";
	case '"': return "a string";
	case 't': case 'f': return "a boolean";
	case 'n': return "null";
	default: return "a number";
	}
}

/* A string field; null allowed when nullable (stays KGIO_NONE). */
static int field_string(kgio_jp *j, kgio_arena *a, const char *name, int nullable, size_t *off,
                        char *reason, size_t cap)
{
	kgio_jp_ws(j);
	if (j->p < j->end && *j->p == 'n' && nullable) {
		if (kgio_jp_skip(j, 0))
			goto bad;
		*off = KGIO_NONE;
		return 0;
	}
	if (j->p >= j->end || *j->p != '"') {
		kgio_setmsg(reason, cap, "field \"%s\" must be a string, not %s", name,
		            j->p < j->end ? value_kind(*j->p) : "missing");
		return KG_EINVAL;
	}
	*off = a->chars.len;
	if (kgio_jp_string(j, &a->chars))
		goto bad;
	a->chars.len++; /* keep the NUL */
	return 0;
bad:
	kgio_setmsg(reason, cap, "field \"%s\": %s", name, j->err);
	return KG_ECORRUPT;
}

static int field_number(kgio_jp *j, const char *name, double *out, char *reason, size_t cap)
{
	kgio_jp_ws(j);
	if (j->p >= j->end || !(*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))) {
		kgio_setmsg(reason, cap, "field \"%s\" must be a number, not %s", name,
		            j->p < j->end ? value_kind(*j->p) : "missing");
		return KG_EINVAL;
	}
	const char *s = j->p;
	if (skip_number(j)) {
		kgio_setmsg(reason, cap, "field \"%s\": %s", name, j->err);
		return KG_ECORRUPT;
	}
	*out = strtod(s, NULL);
	return 0;
}

static int field_time(kgio_jp *j, kgio_arena *a, const char *name, int64_t *out, char *reason,
                      size_t cap)
{
	size_t mark = a->chars.len, off;
	int rc = field_string(j, a, name, 1, &off, reason, cap);
	if (rc)
		return rc;
	*out = 0;
	if (off != KGIO_NONE) {
		if (kg_parse_time(a->chars.data + off, out)) {
			kgio_setmsg(reason, cap, "field \"%s\": '%.60s' is not an ISO 8601 timestamp", name,
			            a->chars.data + off);
			return KG_EINVAL;
		}
		a->chars.len = mark; /* the text is not kept */
	}
	return 0;
}

static int parse_object_fields(const char *text, size_t len, int kind, kgio_arena *a, kgio_rec *r,
                               char *reason, size_t cap)
{
	kgio_jp j = { text, text + len, "" };
	char key[32];
	kgio_buf kb = { 0 };
	int rc = 0;
	kgio_jp_ws(&j);
	if (j.p >= j.end || *j.p != '{') {
		kgio_setmsg(reason, cap, "a %s must be a JSON object", kind == 1 ? "entity" : "relation");
		return KG_EINVAL;
	}
	j.p++;
	kgio_jp_ws(&j);
	if (j.p < j.end && *j.p == '}') {
		j.p++;
		goto done;
	}
	for (;;) {
		kgio_jp_ws(&j);
		kb.len = 0;
		if (kgio_jp_string(&j, &kb)) {
			kgio_setmsg(reason, cap, "%s", j.err);
			rc = KG_ECORRUPT;
			goto out;
		}
		snprintf(key, sizeof key, "%s", kb.data);
		kgio_jp_ws(&j);
		if (j.p >= j.end || *j.p != ':') {
			kgio_setmsg(reason, cap, "expected ':' after key \"%s\"", key);
			rc = KG_ECORRUPT;
			goto out;
		}
		j.p++;
		kgio_jp_ws(&j);
		if (!strcmp(key, "id")) {
			rc = field_string(&j, a, "id", 0, &r->id, reason, cap);
		} else if (kind == 1 && !strcmp(key, "entity_type")) {
			rc = field_string(&j, a, key, 0, &r->type, reason, cap);
		} else if (kind == 2 && !strcmp(key, "relation_type")) {
			rc = field_string(&j, a, key, 0, &r->type, reason, cap);
		} else if (kind == 2 && !strcmp(key, "source_id")) {
			rc = field_string(&j, a, key, 0, &r->src_id, reason, cap);
		} else if (kind == 2 && !strcmp(key, "target_id")) {
			rc = field_string(&j, a, key, 0, &r->dst_id, reason, cap);
		} else if (!strcmp(key, "source")) {
			rc = field_string(&j, a, key, 1, &r->source, reason, cap);
		} else if (!strcmp(key, "tenant_id")) {
			rc = field_string(&j, a, key, 1, &r->tenant, reason, cap);
		} else if (!strcmp(key, "created_at")) {
			rc = field_time(&j, a, key, &r->created, reason, cap);
		} else if (!strcmp(key, "updated_at")) {
			rc = field_time(&j, a, key, &r->updated, reason, cap);
		} else if (kind == 2 && !strcmp(key, "weight")) {
			rc = field_number(&j, key, &r->weight, reason, cap);
		} else if (!strcmp(key, "properties")) {
			if (j.p < j.end && *j.p == 'n') {
				if (kgio_jp_skip(&j, 0)) {
					kgio_setmsg(reason, cap, "field \"properties\": %s", j.err);
					rc = KG_ECORRUPT;
				}
				r->props = KGIO_NONE;
			} else if (j.p >= j.end || *j.p != '{') {
				kgio_setmsg(reason, cap, "field \"properties\" must be an object, not %s",
				            j.p < j.end ? value_kind(*j.p) : "missing");
				rc = KG_EINVAL;
			} else {
				const char *s = j.p;
				if (kgio_jp_skip(&j, 0)) {
					kgio_setmsg(reason, cap, "field \"properties\": %s", j.err);
					rc = KG_ECORRUPT;
				} else {
					r->props = a->chars.len;
					if (kgio_buf_append(&a->chars, s, (size_t)(j.p - s)))
						rc = KG_ENOMEM;
					a->chars.len++;
				}
			}
		} else if (kind == 1 && !strcmp(key, "embedding")) {
			if (j.p < j.end && *j.p == 'n') {
				if (kgio_jp_skip(&j, 0)) {
					kgio_setmsg(reason, cap, "field \"embedding\": %s", j.err);
					rc = KG_ECORRUPT;
				}
			} else if (j.p >= j.end || *j.p != '[') {
				kgio_setmsg(reason, cap, "field \"embedding\" must be an array of numbers, not %s",
				            j.p < j.end ? value_kind(*j.p) : "missing");
				rc = KG_EINVAL;
			} else {
				j.p++;
				r->emb = a->nfloats;
				r->has_emb = 1;
				r->dim = 0;
				kgio_jp_ws(&j);
				if (j.p < j.end && *j.p == ']') {
					j.p++;
				} else {
					for (;;) {
						double d;
						rc = field_number(&j, "embedding", &d, reason, cap);
						if (rc)
							break;
						if (kgio_arena_push_float(a, (float)d)) {
							rc = KG_ENOMEM;
							break;
						}
						r->dim++;
						kgio_jp_ws(&j);
						if (j.p < j.end && *j.p == ',') {
							j.p++;
							continue;
						}
						if (j.p < j.end && *j.p == ']') {
							j.p++;
							break;
						}
						kgio_setmsg(reason, cap, "field \"embedding\": expected ',' or ']'");
						rc = KG_ECORRUPT;
						break;
					}
				}
				if (!rc && r->dim == 0)
					r->has_emb = 0;
			}
		} else {
			/* Unknown members are ignored (newer or foreign writers). */
			if (kgio_jp_skip(&j, 0)) {
				kgio_setmsg(reason, cap, "field \"%s\": %s", key, j.err);
				rc = KG_ECORRUPT;
			}
		}
		if (rc)
			goto out;
		kgio_jp_ws(&j);
		if (j.p < j.end && *j.p == ',') {
			j.p++;
			continue;
		}
		if (j.p < j.end && *j.p == '}') {
			j.p++;
			break;
		}
		kgio_setmsg(reason, cap, "expected ',' or '}' after field \"%s\"", key);
		rc = KG_ECORRUPT;
		goto out;
	}
done:
	kgio_jp_ws(&j);
	if (j.p < j.end) {
		kgio_setmsg(reason, cap, "unexpected text after the record");
		rc = KG_ECORRUPT;
		goto out;
	}
	if (r->id == KGIO_NONE) {
		kgio_setmsg(reason, cap, "missing field \"id\"");
		rc = KG_EINVAL;
	} else if (r->type == KGIO_NONE) {
		kgio_setmsg(reason, cap, "missing field \"%s\"", kind == 1 ? "entity_type" : "relation_type");
		rc = KG_EINVAL;
	} else if (kind == 2 && r->src_id == KGIO_NONE) {
		kgio_setmsg(reason, cap, "missing field \"source_id\"");
		rc = KG_EINVAL;
	} else if (kind == 2 && r->dst_id == KGIO_NONE) {
		kgio_setmsg(reason, cap, "missing field \"target_id\"");
		rc = KG_EINVAL;
	}
out:
	kgio_buf_free(&kb);
	return rc;
}

int kgio_parse_record(const char *text, size_t len, int kind_hint, kgio_arena *a, kgio_rec *r,
                      char *reason, size_t cap)
{
	memset(r, 0, sizeof *r);
	r->id = r->type = r->props = r->src_id = r->dst_id = r->source = r->tenant = KGIO_NONE;
	r->raw = KGIO_NONE;
	r->weight = 1.0;
	r->kind = kind_hint;
	if (kind_hint)
		return parse_object_fields(text, len, kind_hint, a, r, reason, cap);

	/* A JSONL line: {"type": "entity"|"relation", "data": {...}} in any key
	 * order, or a bare entity when "type" is absent. */
	kgio_jp j = { text, text + len, "" };
	kgio_buf kb = { 0 };
	int rc = 0, kind = 0;
	const char *data = NULL, *data_end = NULL;
	kgio_jp_ws(&j);
	if (j.p >= j.end || *j.p != '{') {
		kgio_setmsg(reason, cap, "invalid JSON: a record must be a JSON object");
		return KG_ECORRUPT;
	}
	j.p++;
	kgio_jp_ws(&j);
	if (j.p < j.end && *j.p == '}') {
		j.p++;
	} else {
		for (;;) {
			kgio_jp_ws(&j);
			kb.len = 0;
			if (kgio_jp_string(&j, &kb))
				goto bad;
			kgio_jp_ws(&j);
			if (j.p >= j.end || *j.p != ':') {
				snprintf(j.err, sizeof j.err, "expected ':' after an object key");
				goto bad;
			}
			j.p++;
			kgio_jp_ws(&j);
			if (!strcmp(kb.data, "type") && j.p < j.end && *j.p == '"') {
				kb.len = 0;
				if (kgio_jp_string(&j, &kb))
					goto bad;
				if (!strcmp(kb.data, "entity"))
					kind = 1;
				else if (!strcmp(kb.data, "relation"))
					kind = 2;
				else
					kind = -1;
				if (kind < 0) {
					kgio_setmsg(reason, cap, "unknown record type \"%.60s\" (expected \"entity\" or \"relation\")",
					            kb.data);
					rc = KG_EINVAL;
					goto out;
				}
			} else if (!strcmp(kb.data, "data")) {
				data = j.p;
				if (kgio_jp_skip(&j, 0))
					goto bad;
				data_end = j.p;
			} else {
				if (kgio_jp_skip(&j, 0))
					goto bad;
			}
			kgio_jp_ws(&j);
			if (j.p < j.end && *j.p == ',') {
				j.p++;
				continue;
			}
			if (j.p < j.end && *j.p == '}') {
				j.p++;
				break;
			}
			snprintf(j.err, sizeof j.err, "expected ',' or '}' in an object");
			goto bad;
		}
	}
	kgio_jp_ws(&j);
	if (j.p < j.end) {
		snprintf(j.err, sizeof j.err, "unexpected text after the JSON object");
		goto bad;
	}
	if (kind == 0) {
		r->kind = 1;
		rc = parse_object_fields(text, len, 1, a, r, reason, cap);
	} else if (!data) {
		kgio_setmsg(reason, cap, "record of type \"%s\" has no \"data\" object",
		            kind == 1 ? "entity" : "relation");
		rc = KG_EINVAL;
	} else {
		r->kind = kind;
		rc = parse_object_fields(data, (size_t)(data_end - data), kind, a, r, reason, cap);
	}
	goto out;
bad:
	kgio_setmsg(reason, cap, "invalid JSON: %s", j.err);
	rc = KG_ECORRUPT;
out:
	kgio_buf_free(&kb);
	return rc;
}

/* ------------------------------------------------------------------ */
/* canonical hash                                                       */
/* ------------------------------------------------------------------ */

/* Two FNV-1a lanes with different bases, finished by a splitmix64 mix:
 * not cryptographic, enough to catch any accidental difference. */
typedef struct hstate {
	uint64_t a, b;
} hstate;

static void h_bytes(hstate *h, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t a = h->a, b = h->b;
	for (size_t i = 0; i < n; i++) {
		a = (a ^ s[i]) * 0x100000001b3ULL;
		b = (b ^ s[i]) * 0x00000100000001b3ULL * 3 + 0x9E3779B97F4A7C15ULL;
	}
	h->a = a;
	h->b = b;
}

static void h_u64(hstate *h, uint64_t v)
{
	unsigned char le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(v >> (8 * i));
	h_bytes(h, le, 8);
}

/* Length-prefixed, so ("ab","c") and ("a","bc") differ; NULL differs from "". */
static void h_str(hstate *h, const char *s)
{
	if (!s) {
		h_u64(h, UINT64_MAX);
		return;
	}
	size_t n = strlen(s);
	h_u64(h, n);
	h_bytes(h, s, n);
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Canonical JSON: keys sorted, compact, numbers as jansson prints them, so
 * key order and spacing (PostgreSQL's JSONB reorders keys) do not count. */
static void h_props(hstate *h, const char *props, kgio_buf *scratch)
{
	if (!props || !*props) {
		h_str(h, "{}");
		return;
	}
	json_error_t err;
	json_t *v = json_loads(props, JSON_DECODE_ANY, &err);
	if (!v) {
		h_str(h, props);
		return;
	}
	scratch->len = 0;
	char *s = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	h_str(h, s ? s : props);
	free(s);
}

static void h_double(hstate *h, double d)
{
	uint64_t bits;
	if (d == 0)
		d = 0; /* -0.0 and 0.0 are the same weight */
	memcpy(&bits, &d, 8);
	h_u64(h, bits);
}

static void h_finish(hstate *st, const char *tenant, kgio_hash *out)
{
	h_str(st, tenant);
	out->a = mix(st->a);
	out->b = mix(st->b ^ 0x5bd1e995ULL);
}

int kgio_hash_entity(const kg_entity *e, const char *tenant, kgio_buf *scratch, kgio_hash *out)
{
	hstate h = { 0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL };
	h_u64(&h, 1);
	h_str(&h, e->id);
	h_str(&h, e->entity_type);
	h_props(&h, e->properties, scratch);
	size_t dim = e->embedding ? e->embedding_dim : 0;
	h_u64(&h, dim);
	for (size_t i = 0; i < dim; i++) {
		uint32_t bits;
		memcpy(&bits, &e->embedding[i], 4);
		h_u64(&h, bits);
	}
	h_u64(&h, (uint64_t)e->created_at);
	h_u64(&h, (uint64_t)e->updated_at);
	h_str(&h, e->source);
	h_finish(&h, tenant, out);
	return 0;
}

int kgio_hash_relation(const kg_relation *r, const char *tenant, kgio_buf *scratch, kgio_hash *out)
{
	hstate h = { 0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL };
	h_u64(&h, 2);
	h_str(&h, r->id);
	h_str(&h, r->relation_type);
	h_str(&h, r->source_id);
	h_str(&h, r->target_id);
	h_props(&h, r->properties, scratch);
	h_double(&h, r->weight);
	h_u64(&h, (uint64_t)r->created_at);
	h_u64(&h, (uint64_t)r->updated_at);
	h_str(&h, r->source);
	h_finish(&h, tenant, out);
	return 0;
}
