/*
 * io_internal.h - pieces shared by export, import and migrate: a growable
 * buffer, a buffered (optionally gzip) writer, a small JSON reader made for
 * the record shapes of the export format, record serialisation and the
 * canonical record hash. Only the public API (kgstore.h) is used.
 */
#ifndef KG_TOOLS_IO_INTERNAL_H
#define KG_TOOLS_IO_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "kgstore.h"
#include "kgstore/io.h"

/* ---- growable byte buffer ---- */
typedef struct kgio_buf {
	char *data;
	size_t len, cap;
} kgio_buf;

int kgio_buf_reserve(kgio_buf *b, size_t extra);               /* 0 or KG_ENOMEM */
int kgio_buf_append(kgio_buf *b, const void *p, size_t n);
int kgio_buf_putc(kgio_buf *b, char c);
int kgio_buf_printf(kgio_buf *b, const char *fmt, ...);
void kgio_buf_free(kgio_buf *b);

/* ---- error text ---- */
void kgio_setmsg(char *dst, size_t cap, const char *fmt, ...);

/* ---- writer: plain file or gzip, buffered ---- */
typedef struct kgio_writer {
	FILE *f;       /* plain output (owned unless borrowed) */
	gzFile gz;     /* gzip output, or NULL */
	int borrowed;  /* f belongs to the caller */
	kgio_buf buf;
	int failed;
	char err[256];
} kgio_writer;

int kgio_writer_open(kgio_writer *w, const char *path, int gzip, int level);
int kgio_writer_from_stream(kgio_writer *w, FILE *f, int gzip, int level);
int kgio_writer_flush(kgio_writer *w);
/* Flushes, closes; returns 0 or KG_EIO (message in w->err). */
int kgio_writer_close(kgio_writer *w);

/* JSON writers (append to a buffer). */
int kgio_json_string(kgio_buf *b, const char *s);
int kgio_json_double(kgio_buf *b, double d);
int kgio_json_entity(kgio_buf *b, const kg_entity *e);     /* the "data" object */
int kgio_json_relation(kgio_buf *b, const kg_relation *r);

/* ---- JSON reader over a NUL-terminated span ---- */
typedef struct kgio_jp {
	const char *p, *end;
	char err[200];
} kgio_jp;

void kgio_jp_ws(kgio_jp *j);
/* Decodes a JSON string at j->p into b (NUL appended, not counted in the
 * returned length). Returns 0 or -1 (j->err set). */
int kgio_jp_string(kgio_jp *j, kgio_buf *b);
/* Skips (and validates) any JSON value. */
int kgio_jp_skip(kgio_jp *j, int depth);

/* A parsed record. Strings are offsets into an arena (SIZE_MAX = absent) so
 * the arena may grow while a batch is built. */
#define KGIO_NONE ((size_t)-1)
typedef struct kgio_rec {
	int kind;            /* 1 entity, 2 relation */
	size_t id, type, props, src_id, dst_id, source, tenant;
	size_t emb;          /* index into the float arena */
	size_t dim;
	int has_emb;
	double weight;
	int64_t created, updated;
	uint64_t line;
	size_t raw;          /* the record's text (for rejects and deferral) */
	size_t raw_len;
} kgio_rec;

typedef struct kgio_arena {
	kgio_buf chars;
	float *floats;
	size_t nfloats, capfloats;
} kgio_arena;

void kgio_arena_reset(kgio_arena *a);
void kgio_arena_free(kgio_arena *a);
/* Appends one float to a->floats: 0 or KG_ENOMEM. */
int kgio_arena_push_float(kgio_arena *a, float f);
static inline const char *kgio_str(const kgio_arena *a, size_t off)
{
	return off == KGIO_NONE ? NULL : a->chars.data + off;
}

/*
 * Parses one record (a JSONL line or a JSON array element) of [text,
 * text+len) (text[len] must be readable and be NUL or a byte that ends a
 * number). kind_hint: 0 = JSONL line ({"type","data"} or a bare entity),
 * 1 = entity object, 2 = relation object. On failure returns KG_EINVAL or
 * KG_ECORRUPT with the reason in reason[].
 */
int kgio_parse_record(const char *text, size_t len, int kind_hint, kgio_arena *a,
                      kgio_rec *r, char *reason, size_t reason_cap);

/* ---- canonical record hash (128 bits) ---- */
typedef struct kgio_hash {
	uint64_t a, b;
} kgio_hash;

/* Hash of an entity / relation in its canonical form; tenant NULL = global.
 * scratch is reused between calls (freed by the caller). */
int kgio_hash_entity(const kg_entity *e, const char *tenant, kgio_buf *scratch, kgio_hash *h);
int kgio_hash_relation(const kg_relation *r, const char *tenant, kgio_buf *scratch, kgio_hash *h);

/* The namespaces an operation covers: tenants[i] NULL = global. */
typedef struct kgio_ns_list {
	kg_store **handles; /* views made here are closed by kgio_namespaces_free */
	const char **tenants;
	int *owned;
	size_t n;
	char **tenant_block; /* from kg_list_tenants */
} kgio_ns_list;

/* all: global + every tenant (s must be a base handle); else one_tenant
 * (a view made from base s) or s's own namespace. */
int kgio_namespaces(kg_store *s, int all, const char *one_tenant, kgio_ns_list *l, char *msg,
                    size_t cap);
void kgio_namespaces_free(kgio_ns_list *l);

/* Path suffix helpers. */
int kgio_has_suffix(const char *s, const char *suffix);
kg_io_format kgio_format_from_name(const char *path);

#endif
