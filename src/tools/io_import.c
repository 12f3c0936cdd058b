/*
 * io_import.c - streaming import of JSONL, JSONL.gz, JSON and CSV pairs.
 *
 * Records are parsed into a batch and added with the bulk calls. How the
 * import stays all-or-nothing:
 *  - TXN mode: one transaction on the target handle holds the whole import;
 *    any failure rolls it back. Tenant records need a tenant view of that
 *    transaction; if the core does not offer one (kg_tenant on a transaction
 *    handle), a file that turns out to hold another tenant's records is
 *    started again in UNDO mode.
 *  - UNDO mode (backend without transactions, KG_IMPORT_NO_TRANSACTION, or
 *    several tenants without transaction views): every bulk call commits on
 *    its own and the ids it added are logged to a temporary file; a failure
 *    deletes them again (relations first, then entities).
 * A failed bulk call is retried record by record to find the culprit and its
 * line. A relation whose endpoint is not there yet is deferred (in memory up
 * to max_deferred_memory, then in a temporary file) and added after the last
 * record; if its endpoint is still missing then, it is dangling.
 */
#include <ctype.h>
#include <strings.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tools/io_internal.h"

#define RESTART 1000 /* internal: start again in UNDO mode */

enum { MODE_TXN_VIEWS = 1, MODE_TXN_ONE, MODE_UNDO };

/* ------------------------------------------------------------------ */
/* chunked reader over gzip or plain input                              */
/* ------------------------------------------------------------------ */

typedef struct reader {
	gzFile gz;
	char *buf;
	size_t pos, len;
	int eof;
	uint64_t line; /* lines fully consumed so far */
	char err[256];
} reader;

#define RD_CHUNK (256u * 1024u)

static int rd_open(reader *r, const char *path)
{
	memset(r, 0, sizeof *r);
	if (!strcmp(path, "-")) {
		r->gz = gzdopen(0, "rb");
	} else {
		FILE *probe = fopen(path, "rb");
		if (!probe) {
			kgio_setmsg(r->err, sizeof r->err, "cannot open: %s", strerror(errno));
			return KG_EIO;
		}
		fclose(probe);
		r->gz = gzopen(path, "rb"); /* reads plain files as they are: gzip is found by its magic bytes */
	}
	if (!r->gz) {
		kgio_setmsg(r->err, sizeof r->err, "cannot open: %s", strerror(errno));
		return KG_EIO;
	}
	gzbuffer(r->gz, RD_CHUNK);
	r->buf = malloc(RD_CHUNK);
	if (!r->buf) {
		kgio_setmsg(r->err, sizeof r->err, "out of memory");
		return KG_ENOMEM;
	}
	return 0;
}

static void rd_close(reader *r)
{
	if (r->gz)
		gzclose(r->gz);
	free(r->buf);
	memset(r, 0, sizeof *r);
}

/* Refills the buffer; 1 = data, 0 = end, < 0 = error (r->err). */
static int rd_fill(reader *r)
{
	if (r->eof)
		return 0;
	int n = gzread(r->gz, r->buf, RD_CHUNK);
	int zerr = Z_OK;
	const char *zmsg = gzerror(r->gz, &zerr);
	if (n < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
		if (zerr == Z_BUF_ERROR)
			kgio_setmsg(r->err, sizeof r->err,
			            "the gzip stream is truncated (unexpected end of file): the file is incomplete; "
			            "copy or download it again");
		else
			kgio_setmsg(r->err, sizeof r->err, "the gzip stream is damaged: %s", zmsg ? zmsg : "read error");
		return KG_ECORRUPT;
	}
	r->pos = 0;
	r->len = (size_t)n;
	if (n == 0) {
		r->eof = 1;
		return 0;
	}
	return 1;
}

/* Next line (without '\n', a trailing '\r' removed) into out.
 * 1 = a line, 0 = end of input, < 0 = error. */
static int rd_line(reader *r, kgio_buf *out)
{
	out->len = 0;
	int got = 0;
	for (;;) {
		if (r->pos >= r->len) {
			int rc = rd_fill(r);
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
		}
		char *s = r->buf + r->pos;
		char *nl = memchr(s, '\n', r->len - r->pos);
		size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
		if (kgio_buf_append(out, s, n))
			return KG_ENOMEM;
		got = 1;
		r->pos += n;
		if (nl) {
			r->pos++;
			break;
		}
	}
	if (!got)
		return 0;
	r->line++;
	if (out->len && out->data[out->len - 1] == '\r')
		out->data[--out->len] = 0;
	if (!out->data) /* empty last line */
		kgio_buf_reserve(out, 1);
	out->data[out->len] = 0;
	return 1;
}

/* One byte; -1 at the end, < -1 on error. Counts lines. */
static int rd_getc(reader *r)
{
	if (r->pos >= r->len) {
		int rc = rd_fill(r);
		if (rc < 0)
			return -2;
		if (rc == 0)
			return -1;
	}
	int c = (unsigned char)r->buf[r->pos++];
	if (c == '\n')
		r->line++;
	return c;
}

static int rd_peek(reader *r)
{
	if (r->pos >= r->len) {
		int rc = rd_fill(r);
		if (rc < 0)
			return -2;
		if (rc == 0)
			return -1;
	}
	return (unsigned char)r->buf[r->pos];
}

/* ------------------------------------------------------------------ */
/* the import state                                                     */
/* ------------------------------------------------------------------ */

typedef struct ns_ent {
	char *tenant;     /* NULL = the handle's own namespace */
	kg_store *h;      /* handle to write through */
	int owned;
} ns_ent;

typedef struct batch {
	kgio_arena a;
	kgio_rec *recs;
	size_t n, cap;
	size_t ns;
} batch;

typedef struct imp {
	kg_store *base;
	const kg_import_options *o;
	kg_import_result *res;
	size_t batch_size;
	int mode;
	kg_store *txn;
	ns_ent *ns;
	size_t nns;
	batch eb, rb;
	kg_entity *earr;
	kg_relation *rarr;
	/* deferred relations: binary records, in memory then in a file */
	kgio_buf dmem;
	FILE *dfile;
	uint64_t ndeferred;
	/* undo log (UNDO mode) */
	FILE *undo;
	/* rejects */
	FILE *rej;
	char rej_path[KG_IO_PATH_SIZE];
	const char *file; /* file being read, for messages */
	kgio_arena scratch;
	uint64_t since_progress;
	int can_restart;
	int final_pass; /* adding deferred relations: a missing endpoint is dangling */
} imp;

static int fail(imp *m, int rc, uint64_t line, const char *fmt, ...)
{
	char reason[KG_IO_ERRMSG_SIZE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	kg_import_result *r = m->res;
	snprintf(r->errfile, sizeof r->errfile, "%s", m->file ? m->file : "");
	r->errline = line;
	if (line)
		snprintf(r->errmsg, sizeof r->errmsg, "%.400s:%llu: %.580s", r->errfile, (unsigned long long)line, reason);
	else
		snprintf(r->errmsg, sizeof r->errmsg, "%.400s: %.600s", r->errfile, reason);
	return rc;
}

/* A bad record: rejected (SKIP_BAD) or the end of the import. */
static int bad_record(imp *m, int rc, uint64_t line, const char *raw, size_t raw_len, const char *reason)
{
	if (!(m->o->flags & KG_IMPORT_SKIP_BAD))
		return fail(m, rc, line, "%s", reason);
	if (!m->rej) {
		m->rej = fopen(m->rej_path, "w");
		if (!m->rej)
			return fail(m, KG_EIO, 0, "cannot create the reject file %s: %s", m->rej_path, strerror(errno));
	}
	kgio_buf b = { 0 };
	int e = kgio_buf_append(&b, "{\"file\": ", 9);
	e |= kgio_json_string(&b, m->file ? m->file : "");
	e |= kgio_buf_printf(&b, ", \"line\": %llu, \"reason\": ", (unsigned long long)line);
	e |= kgio_json_string(&b, reason);
	e |= kgio_buf_append(&b, ", \"record\": ", 12);
	/* The raw text is kept as a string: it may not be valid JSON. */
	char *copy = raw ? strndup(raw, raw_len) : NULL;
	e |= kgio_json_string(&b, copy ? copy : "");
	free(copy);
	e |= kgio_buf_append(&b, "}\n", 2);
	if (e || fwrite(b.data, 1, b.len, m->rej) != b.len) {
		kgio_buf_free(&b);
		return fail(m, KG_EIO, 0, "cannot write the reject file %s", m->rej_path);
	}
	kgio_buf_free(&b);
	m->res->rejected++;
	return 0;
}

/* Namespace of a record: index into m->ns. */
static int ns_for(imp *m, const char *tenant, size_t *idx, char *reason, size_t cap)
{
	const char *own = kg_tenant_id(m->base);
	if (!tenant || (m->o->flags & KG_IMPORT_IGNORE_TENANT) || (own && !strcmp(own, tenant))) {
		*idx = 0;
		return 0;
	}
	if (own) {
		kgio_setmsg(reason, cap,
		            "record of tenant '%.255s' cannot go through the view of tenant '%s': import "
		            "through the base store, or ignore the records' tenant ids",
		            tenant, own);
		return KG_EINVAL;
	}
	for (size_t i = 1; i < m->nns; i++)
		if (!strcmp(m->ns[i].tenant, tenant)) {
			*idx = i;
			return 0;
		}
	if (m->mode == MODE_TXN_ONE)
		return RESTART;
	ns_ent *n = realloc(m->ns, (m->nns + 1) * sizeof *n);
	if (!n)
		return KG_ENOMEM;
	m->ns = n;
	ns_ent *e = &m->ns[m->nns];
	memset(e, 0, sizeof *e);
	kg_store *from = m->mode == MODE_TXN_VIEWS ? m->txn : m->base;
	int rc = kg_tenant(from, tenant, &e->h);
	if (rc) {
		kgio_setmsg(reason, cap, "%s", kg_errmsg(from));
		return rc;
	}
	e->tenant = strdup(tenant);
	if (!e->tenant) {
		kg_close(e->h);
		return KG_ENOMEM;
	}
	e->owned = 1;
	*idx = m->nns++;
	return 0;
}

static int progress(imp *m, int force)
{
	if (!m->o->progress)
		return 0;
	if (!force && m->since_progress < m->batch_size)
		return 0;
	m->since_progress = 0;
	uint64_t done = m->res->entity_count + m->res->relation_count + m->res->skipped + m->res->rejected;
	if (m->o->progress(done, 0, "import", m->o->progress_user))
		return fail(m, KG_EIO, 0, "interrupted by the progress callback");
	return 0;
}

/* ---- undo log ---- */

static int undo_log(imp *m, int kind, size_t ns, const char *id)
{
	if (m->mode != MODE_UNDO)
		return 0;
	if (!m->undo && !(m->undo = tmpfile()))
		return fail(m, KG_EIO, 0, "cannot create a temporary file for the undo log: %s", strerror(errno));
	uint32_t hdr[3] = { (uint32_t)kind, (uint32_t)ns, (uint32_t)strlen(id) };
	if (fwrite(hdr, sizeof hdr, 1, m->undo) != 1 || fwrite(id, 1, hdr[2], m->undo) != hdr[2])
		return fail(m, KG_EIO, 0, "cannot write the undo log: %s", strerror(errno));
	return 0;
}

/* Deletes what the import added (UNDO mode). Relations first: deleting an
 * entity would take its relations along anyway, but relations between
 * entities that existed before must go too. */
static int undo_replay(imp *m)
{
	if (!m->undo)
		return 0;
	int worst = 0;
	char *id = NULL;
	for (int pass = 2; pass >= 1; pass--) {
		rewind(m->undo);
		uint32_t hdr[3];
		while (fread(hdr, sizeof hdr, 1, m->undo) == 1) {
			char *n = realloc(id, (size_t)hdr[2] + 1);
			if (!n) {
				worst = KG_ENOMEM;
				break;
			}
			id = n;
			if (fread(id, 1, hdr[2], m->undo) != hdr[2]) {
				worst = KG_EIO;
				break;
			}
			id[hdr[2]] = 0;
			if ((int)hdr[0] != pass || hdr[1] >= m->nns)
				continue;
			kg_store *h = m->ns[hdr[1]].h;
			int rc = pass == 2 ? kg_delete_relation(h, id) : kg_delete_entity(h, id);
			if (rc && rc != KG_ENOTFOUND && !worst)
				worst = rc;
		}
	}
	free(id);
	return worst;
}

/* ---- deferred relations ---- */

static int put_str(kgio_buf *b, const char *s)
{
	uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX;
	int rc = kgio_buf_append(b, &n, 4);
	if (s)
		rc |= kgio_buf_append(b, s, n);
	return rc;
}

static int defer_relation(imp *m, const kgio_rec *r, const kgio_arena *a, size_t ns)
{
	kgio_buf *b = &m->dmem;
	uint64_t hdr[5];
	memcpy(&hdr[0], &r->line, 8);
	memcpy(&hdr[1], &r->weight, 8);
	memcpy(&hdr[2], &r->created, 8);
	memcpy(&hdr[3], &r->updated, 8);
	hdr[4] = ns;
	int rc = kgio_buf_append(b, hdr, sizeof hdr);
	rc |= put_str(b, kgio_str(a, r->id));
	rc |= put_str(b, kgio_str(a, r->type));
	rc |= put_str(b, kgio_str(a, r->src_id));
	rc |= put_str(b, kgio_str(a, r->dst_id));
	rc |= put_str(b, kgio_str(a, r->props));
	rc |= put_str(b, kgio_str(a, r->source));
	if (r->raw != KGIO_NONE) {
		uint32_t n = (uint32_t)r->raw_len;
		rc |= kgio_buf_append(b, &n, 4);
		rc |= kgio_buf_append(b, a->chars.data + r->raw, n);
	} else {
		rc |= put_str(b, NULL);
	}
	if (rc)
		return fail(m, KG_ENOMEM, r->line, "out of memory while deferring a relation");
	m->ndeferred++;
	size_t limit = m->o->max_deferred_memory ? m->o->max_deferred_memory : (64u << 20);
	if (b->len > limit) {
		if (!m->dfile && !(m->dfile = tmpfile()))
			return fail(m, KG_EIO, 0, "cannot create a temporary file for deferred relations: %s",
			            strerror(errno));
		if (fwrite(b->data, 1, b->len, m->dfile) != b->len)
			return fail(m, KG_EIO, 0, "cannot write deferred relations to a temporary file: %s",
			            strerror(errno));
		b->len = 0;
	}
	return 0;
}

/* ---- batches ---- */

static int batch_push(batch *b, kgio_rec **out)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		kgio_rec *n = realloc(b->recs, cap * sizeof *n);
		if (!n)
			return KG_ENOMEM;
		b->recs = n;
		b->cap = cap;
	}
	*out = &b->recs[b->n++];
	return 0;
}

static void batch_clear(batch *b)
{
	b->n = 0;
	kgio_arena_reset(&b->a);
}

static void batch_free(batch *b)
{
	kgio_arena_free(&b->a);
	free(b->recs);
	memset(b, 0, sizeof *b);
}

/* Copies a record parsed in `src` into batch b. */
static int copy_str(kgio_arena *dst, const kgio_arena *src, size_t *off)
{
	if (*off == KGIO_NONE)
		return 0;
	const char *s = src->chars.data + *off;
	size_t n = strlen(s);
	*off = dst->chars.len;
	if (kgio_buf_append(&dst->chars, s, n))
		return KG_ENOMEM;
	dst->chars.len++;
	return 0;
}

static int batch_add(batch *b, const kgio_rec *in, const kgio_arena *src, const char *raw, size_t raw_len)
{
	kgio_rec *r;
	if (batch_push(b, &r))
		return KG_ENOMEM;
	*r = *in;
	int rc = copy_str(&b->a, src, &r->id) | copy_str(&b->a, src, &r->type) |
	         copy_str(&b->a, src, &r->props) | copy_str(&b->a, src, &r->src_id) |
	         copy_str(&b->a, src, &r->dst_id) | copy_str(&b->a, src, &r->source);
	r->tenant = KGIO_NONE; /* resolved to the batch's namespace */
	if (in->has_emb) {
		r->emb = b->a.nfloats;
		for (size_t i = 0; i < in->dim; i++)
			if (kgio_arena_push_float(&b->a, src->floats[in->emb + i]))
				return KG_ENOMEM;
	}
	r->raw = KGIO_NONE;
	if (raw) {
		r->raw = b->a.chars.len;
		r->raw_len = raw_len;
		rc |= kgio_buf_append(&b->a.chars, raw, raw_len);
		b->a.chars.len++;
	}
	return rc ? KG_ENOMEM : 0;
}

static void to_entity(const batch *b, const kgio_rec *r, kg_entity *e)
{
	memset(e, 0, sizeof *e);
	e->id = kgio_str(&b->a, r->id);
	e->entity_type = kgio_str(&b->a, r->type);
	e->properties = kgio_str(&b->a, r->props);
	if (r->has_emb) {
		e->embedding = b->a.floats + r->emb;
		e->embedding_dim = r->dim;
	}
	e->created_at = r->created;
	e->updated_at = r->updated ? r->updated : r->created;
	e->source = kgio_str(&b->a, r->source);
}

static void to_relation(const batch *b, const kgio_rec *r, kg_relation *x)
{
	memset(x, 0, sizeof *x);
	x->id = kgio_str(&b->a, r->id);
	x->relation_type = kgio_str(&b->a, r->type);
	x->source_id = kgio_str(&b->a, r->src_id);
	x->target_id = kgio_str(&b->a, r->dst_id);
	x->properties = kgio_str(&b->a, r->props);
	x->weight = r->weight;
	x->created_at = r->created;
	x->updated_at = r->updated ? r->updated : r->created;
	x->source = kgio_str(&b->a, r->source);
}

/* Request errors: the record is at fault, not the store. */
static int is_record_error(int rc)
{
	return rc == KG_EINVAL || rc == KG_EEXISTS || rc == KG_ENOTFOUND;
}

/* The batch of `kind` (1 entities in m->earr, 2 relations in m->rarr) in
 * one bulk call. Returns 1 when that settled it (*rc set), 0 when it must go
 * record by record: a record is at fault, or UNDO mode with skipping, which
 * must know exactly which ids it added. */
static int add_bulk(imp *m, int kind, int *rc)
{
	batch *b = kind == 1 ? &m->eb : &m->rb;
	kg_store *h = m->ns[b->ns].h;
	int skip = (m->o->flags & KG_IMPORT_SKIP_EXISTING) != 0;
	if (skip && m->mode == MODE_UNDO)
		return 0;
	size_t added = 0;
	unsigned flags = skip ? KG_BULK_SKIP_EXISTING : 0;
	int r = kind == 1 ? kg_add_entities(h, m->earr, b->n, flags, &added)
	                  : kg_add_relations(h, m->rarr, b->n, flags, &added);
	if (r == KG_OK) {
		*(kind == 1 ? &m->res->entity_count : &m->res->relation_count) += added;
		m->res->skipped += b->n - added;
		for (size_t i = 0; i < b->n && !r; i++)
			r = undo_log(m, kind, b->ns, kind == 1 ? m->earr[i].id : m->rarr[i].id);
		*rc = r;
		return 1;
	}
	if (!is_record_error(r)) {
		*rc = fail(m, r, b->recs[b->n - 1].line, "adding %s: %s", kind == 1 ? "entities" : "relations",
		           kg_errmsg(h));
		return 1;
	}
	return 0;
}

static int flush_entities(imp *m)
{
	batch *b = &m->eb;
	if (!b->n)
		return 0;
	kg_store *h = m->ns[b->ns].h;
	int skip = (m->o->flags & KG_IMPORT_SKIP_EXISTING) != 0;
	int rc = 0;
	for (size_t i = 0; i < b->n; i++)
		to_entity(b, &b->recs[i], &m->earr[i]);
	if (add_bulk(m, 1, &rc))
		goto done;
	for (size_t i = 0; i < b->n && !rc; i++) {
		int r = kg_add_entity(h, &m->earr[i]);
		if (r == KG_OK) {
			m->res->entity_count++;
			rc = undo_log(m, 1, b->ns, m->earr[i].id);
		} else if (r == KG_EEXISTS && skip) {
			m->res->skipped++;
		} else if (is_record_error(r)) {
			char reason[KG_IO_ERRMSG_SIZE];
			snprintf(reason, sizeof reason, "%s%s", r == KG_EEXISTS ? "duplicate id: " : "", kg_errmsg(h));
			const kgio_rec *x = &b->recs[i];
			rc = bad_record(m, r, x->line, x->raw == KGIO_NONE ? NULL : b->a.chars.data + x->raw,
			                x->raw_len, reason);
		} else {
			rc = fail(m, r, b->recs[i].line, "adding entity '%s': %s", m->earr[i].id, kg_errmsg(h));
		}
	}
done:
	m->since_progress += b->n;
	batch_clear(b);
	return rc ? rc : progress(m, 0);
}

static int flush_relations(imp *m)
{
	int rc = flush_entities(m);
	batch *b = &m->rb;
	if (rc || !b->n)
		return rc;
	kg_store *h = m->ns[b->ns].h;
	int skip = (m->o->flags & KG_IMPORT_SKIP_EXISTING) != 0;
	for (size_t i = 0; i < b->n; i++)
		to_relation(b, &b->recs[i], &m->rarr[i]);
	if (add_bulk(m, 2, &rc))
		goto done;
	for (size_t i = 0; i < b->n && !rc; i++) {
		int r = kg_add_relation(h, &m->rarr[i]);
		const kgio_rec *x = &b->recs[i];
		if (r == KG_OK) {
			m->res->relation_count++;
			rc = undo_log(m, 2, b->ns, m->rarr[i].id);
		} else if (r == KG_EEXISTS && skip) {
			m->res->skipped++;
		} else if (r == KG_ENOTFOUND && !m->final_pass) {
			/* An endpoint may come later in the file. */
			rc = defer_relation(m, x, &b->a, b->ns);
		} else if (is_record_error(r)) {
			char reason[KG_IO_ERRMSG_SIZE];
			snprintf(reason, sizeof reason, "%s%s",
			         r == KG_EEXISTS ? "duplicate id: " : r == KG_ENOTFOUND ? "dangling relation: " : "",
			         kg_errmsg(h));
			rc = bad_record(m, r, x->line, x->raw == KGIO_NONE ? NULL : b->a.chars.data + x->raw,
			                x->raw_len, reason);
		} else {
			rc = fail(m, r, x->line, "adding relation '%s': %s", m->rarr[i].id, kg_errmsg(h));
		}
	}
done:
	m->since_progress += b->n;
	batch_clear(b);
	return rc ? rc : progress(m, 0);
}

/* A parsed record (in m->scratch) goes to its batch. */
static int take_record(imp *m, kgio_rec *r, const char *raw, size_t raw_len)
{
	char reason[KG_IO_ERRMSG_SIZE];
	size_t ns = 0;
	int rc = ns_for(m, kgio_str(&m->scratch, r->tenant), &ns, reason, sizeof reason);
	if (rc == RESTART)
		return RESTART;
	if (rc == KG_ENOMEM)
		return fail(m, rc, r->line, "out of memory");
	if (rc)
		return bad_record(m, rc, r->line, raw, raw_len, reason);
	batch *b = r->kind == 1 ? &m->eb : &m->rb;
	if (b->n && b->ns != ns && (rc = r->kind == 1 ? flush_entities(m) : flush_relations(m)))
		return rc;
	b->ns = ns;
	if (batch_add(b, r, &m->scratch, (m->o->flags & KG_IMPORT_SKIP_BAD) ? raw : NULL, raw_len))
		return fail(m, KG_ENOMEM, r->line, "out of memory");
	if (b->n >= m->batch_size)
		return r->kind == 1 ? flush_entities(m) : flush_relations(m);
	return 0;
}

static int parsed(imp *m, const char *text, size_t len, int kind, uint64_t line)
{
	char reason[KG_IO_ERRMSG_SIZE];
	kgio_rec r;
	kgio_arena_reset(&m->scratch);
	int rc = kgio_parse_record(text, len, kind, &m->scratch, &r, reason, sizeof reason);
	r.line = line;
	if (rc == KG_ENOMEM)
		return fail(m, rc, line, "out of memory");
	if (rc)
		return bad_record(m, rc, line, text, len, reason);
	return take_record(m, &r, text, len);
}

/* ------------------------------------------------------------------ */
/* formats                                                              */
/* ------------------------------------------------------------------ */

static int read_jsonl(imp *m, reader *rd)
{
	kgio_buf line = { 0 };
	int rc = 0, n;
	while ((n = rd_line(rd, &line)) == 1) {
		m->res->lines++;
		size_t i = 0;
		while (i < line.len && isspace((unsigned char)line.data[i]))
			i++;
		if (i == line.len)
			continue; /* blank lines are skipped, as the original did */
		if ((rc = parsed(m, line.data, line.len, 0, rd->line)))
			break;
	}
	if (n < 0 && !rc)
		rc = fail(m, n, rd->line + 1, "%s", rd->err);
	kgio_buf_free(&line);
	return rc;
}

/* JSON: {"entities": [...], "relations": [...]} read element by element, so
 * the document is never held whole. Each element's bytes are collected by a
 * small scanner (strings and nesting) and parsed as one record. */
static int json_ws(reader *rd)
{
	int c;
	while ((c = rd_peek(rd)) == ' ' || c == '\t' || c == '\n' || c == '\r')
		rd_getc(rd);
	return c;
}

static int json_expect(imp *m, reader *rd, char want, const char *what)
{
	int c = json_ws(rd);
	if (c == -2)
		return fail(m, KG_ECORRUPT, rd->line + 1, "%s", rd->err);
	if (c != want)
		return fail(m, KG_ECORRUPT, rd->line + 1, "invalid JSON: expected %s%s", what,
		            c == -1 ? " but the file ended" : "");
	rd_getc(rd);
	return 0;
}

/* Collects one JSON value (string-aware, nesting-aware) into out. */
static int json_collect(imp *m, reader *rd, kgio_buf *out)
{
	out->len = 0;
	int depth = 0, in_str = 0, esc = 0;
	int c = json_ws(rd);
	if (c == -2)
		return fail(m, KG_ECORRUPT, rd->line + 1, "%s", rd->err);
	for (;;) {
		c = rd_peek(rd);
		if (c == -2)
			return fail(m, KG_ECORRUPT, rd->line + 1, "%s", rd->err);
		if (c == -1)
			return fail(m, KG_ECORRUPT, rd->line + 1, "invalid JSON: the file ended inside a value");
		if (!in_str && depth == 0 && (c == ',' || c == ']' || c == '}') && out->len)
			break;
		rd_getc(rd);
		if (kgio_buf_putc(out, (char)c))
			return fail(m, KG_ENOMEM, rd->line, "out of memory");
		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"') {
				in_str = 0;
				if (depth == 0)
					break; /* a string value (a key) ends here */
			}
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				break;
			if (depth < 0)
				return fail(m, KG_ECORRUPT, rd->line + 1, "invalid JSON: unbalanced '%c'", c);
		}
	}
	return 0;
}

static int read_json(imp *m, reader *rd)
{
	kgio_buf key = { 0 }, val = { 0 };
	int rc = json_expect(m, rd, '{', "'{' at the start of a JSON document");
	if (rc)
		goto out;
	if (json_ws(rd) == '}') {
		rd_getc(rd);
		goto tail;
	}
	for (;;) {
		uint64_t kline = rd->line + 1;
		if ((rc = json_collect(m, rd, &key)))
			goto out;
		kgio_jp j = { key.data, key.data + key.len, "" };
		kgio_buf name = { 0 };
		if (kgio_jp_string(&j, &name)) {
			kgio_buf_free(&name);
			rc = fail(m, KG_ECORRUPT, kline, "invalid JSON: expected a key string");
			goto out;
		}
		int kind = !strcmp(name.data, "entities") ? 1 : !strcmp(name.data, "relations") ? 2 : 0;
		kgio_buf_free(&name);
		if ((rc = json_expect(m, rd, ':', "':' after a key")))
			goto out;
		if (kind) {
			if ((rc = json_expect(m, rd, '[', "'[' (entities and relations are arrays)")))
				goto out;
			if (json_ws(rd) == ']') {
				rd_getc(rd);
			} else {
				for (;;) {
					if (json_ws(rd) == -2) {
						rc = fail(m, KG_ECORRUPT, rd->line + 1, "%s", rd->err);
						goto out;
					}
					uint64_t line = rd->line + 1; /* where the element starts */
					if ((rc = json_collect(m, rd, &val)))
						goto out;
					m->res->lines++;
					if ((rc = parsed(m, val.data, val.len, kind, line)))
						goto out;
					int c = json_ws(rd);
					if (c == ',') {
						rd_getc(rd);
						continue;
					}
					if (c == ']') {
						rd_getc(rd);
						break;
					}
					rc = fail(m, KG_ECORRUPT, rd->line + 1, "invalid JSON: expected ',' or ']' in the %s array%s",
					          kind == 1 ? "entities" : "relations", c == -1 ? " but the file ended" : "");
					goto out;
				}
			}
		} else if ((rc = json_collect(m, rd, &val))) {
			goto out; /* other members are ignored */
		}
		int c = json_ws(rd);
		if (c == ',') {
			rd_getc(rd);
			continue;
		}
		if (c == '}') {
			rd_getc(rd);
			break;
		}
		rc = fail(m, KG_ECORRUPT, rd->line + 1, "invalid JSON: expected ',' or '}'%s",
		          c == -1 ? " but the file ended" : "");
		goto out;
	}
tail:
	if (json_ws(rd) != -1) {
		int c = json_ws(rd);
		rc = c == -2 ? fail(m, KG_ECORRUPT, rd->line + 1, "%s", rd->err)
		             : fail(m, KG_ECORRUPT, rd->line + 1, "invalid JSON: text after the document");
	}
out:
	kgio_buf_free(&key);
	kgio_buf_free(&val);
	return rc;
}

/* ------------------------------------------------------------------ */
/* CSV pairs (nodes, edges)                                             */
/* ------------------------------------------------------------------ */

enum col_role {
	C_PROP = 0, C_ID, C_TYPE, C_PROPS, C_EMB, C_TENANT, C_CREATED, C_UPDATED, C_SOURCE,
	C_SRC, C_DST, C_WEIGHT, C_IGNORE
};
enum col_vtype { V_STRING = 0, V_INT, V_FLOAT, V_BOOL, V_JSON };

typedef struct csv_col {
	int role;
	int vtype;
	int array;   /* neo4j "int[]": ';'-separated values */
	char *name;  /* property name (C_PROP, or the name part of "name:ID") */
} csv_col;

/* Reads one RFC 4180 row: fields NUL-separated in `cells`, their offsets in
 * *offs; the row's text in raw. 1 = a row, 0 = end, < 0 = error. */
static int csv_row(imp *m, reader *rd, kgio_buf *cells, kgio_buf *raw, size_t **offs, size_t *nf,
                   size_t *cap, uint64_t *start)
{
	cells->len = raw->len = 0;
	*nf = 0;
	*start = rd->line + 1;
	int c = rd_peek(rd);
	if (c == -1)
		return 0;
	int quoted = 0, in_field = 0, any = 0;
	size_t fstart = 0;
	for (;;) {
		c = rd_getc(rd);
		if (c == -2)
			return fail(m, KG_ECORRUPT, rd->line + 1, "%s", rd->err);
		if (c >= 0 && kgio_buf_putc(raw, (char)c))
			return KG_ENOMEM;
		if (quoted) {
			if (c == -1)
				return fail(m, KG_ECORRUPT, *start, "CSV: a quoted field is not closed before the end of the file");
			if (c == '"') {
				if (rd_peek(rd) == '"') {
					rd_getc(rd);
					kgio_buf_putc(raw, '"');
					if (kgio_buf_putc(cells, '"'))
						return KG_ENOMEM;
				} else {
					quoted = 0;
				}
			} else if (kgio_buf_putc(cells, (char)c)) {
				return KG_ENOMEM;
			}
			continue;
		}
		if (c == '"' && !in_field) {
			quoted = 1;
			in_field = 1;
			any = 1;
			continue;
		}
		if (c == ',' || c == '\n' || c == -1) {
			if (c == -1 && !any && *nf == 0)
				return 0;
			/* end of field */
			if (cells->len > fstart && cells->data[cells->len - 1] == '\r' && c == '\n')
				cells->len--;
			if (*nf == *cap) {
				size_t nc = *cap ? *cap * 2 : 16;
				size_t *n = realloc(*offs, nc * sizeof *n);
				if (!n)
					return KG_ENOMEM;
				*offs = n;
				*cap = nc;
			}
			(*offs)[(*nf)++] = fstart;
			if (kgio_buf_putc(cells, 0))
				return KG_ENOMEM;
			fstart = cells->len;
			in_field = 0;
			if (c != ',') {
				if (raw->len && raw->data[raw->len - 1] == '\n')
					raw->data[--raw->len] = 0;
				if (raw->len && raw->data[raw->len - 1] == '\r')
					raw->data[--raw->len] = 0;
				return 1;
			}
			continue;
		}
		any = 1;
		in_field = 1;
		if (kgio_buf_putc(cells, (char)c))
			return KG_ENOMEM;
	}
}

static int ieq(const char *a, const char *b) { return !strcasecmp(a, b); }

static void csv_cols_free(csv_col *cols, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(cols[i].name);
	free(cols);
}

/* Header cell -> column. Neo4j style "name:TYPE" or a plain name. */
static int csv_header(const char *cell, int edges, csv_col *col)
{
	memset(col, 0, sizeof *col);
	char *name = strdup(cell);
	if (!name)
		return KG_ENOMEM;
	/* trim */
	char *s = name;
	while (isspace((unsigned char)*s))
		s++;
	memmove(name, s, strlen(s) + 1);
	for (size_t n = strlen(name); n && isspace((unsigned char)name[n - 1]); n--)
		name[n - 1] = 0;
	char *colon = strrchr(name, ':');
	if (colon) {
		*colon = 0;
		char *t = colon + 1;
		char *paren = strchr(t, '(');
		if (paren)
			*paren = 0; /* id spaces "ID(Person)" are not used */
		size_t tl = strlen(t);
		if (tl > 2 && !strcmp(t + tl - 2, "[]")) {
			col->array = 1;
			t[tl - 2] = 0;
		}
		if (ieq(t, "ID")) col->role = C_ID;
		else if (ieq(t, "LABEL")) col->role = C_TYPE;
		else if (ieq(t, "TYPE")) col->role = C_TYPE;
		else if (ieq(t, "START_ID")) col->role = C_SRC;
		else if (ieq(t, "END_ID")) col->role = C_DST;
		else if (ieq(t, "IGNORE")) col->role = C_IGNORE;
		else if (ieq(t, "int") || ieq(t, "long") || ieq(t, "short") || ieq(t, "byte")) col->vtype = V_INT;
		else if (ieq(t, "float") || ieq(t, "double")) col->vtype = V_FLOAT;
		else if (ieq(t, "boolean") || ieq(t, "bool")) col->vtype = V_BOOL;
		else if (ieq(t, "json")) col->vtype = V_JSON;
		else if (ieq(t, "string") || !*t) col->vtype = V_STRING;
		else {
			free(name);
			return KG_EINVAL;
		}
		if (col->role != C_PROP || *name) {
			col->name = *name ? name : NULL;
			if (!*name)
				free(name);
			return 0;
		}
		col->name = name;
		return 0;
	}
	if (ieq(name, "id")) col->role = C_ID;
	else if (ieq(name, "entity_type") && !edges) col->role = C_TYPE;
	else if (ieq(name, "relation_type") && edges) col->role = C_TYPE;
	else if (ieq(name, "type") || ieq(name, "label")) col->role = C_TYPE;
	else if (ieq(name, "properties")) col->role = C_PROPS;
	else if (ieq(name, "embedding") && !edges) col->role = C_EMB;
	else if (ieq(name, "tenant_id")) col->role = C_TENANT;
	else if (ieq(name, "created_at")) col->role = C_CREATED;
	else if (ieq(name, "updated_at")) col->role = C_UPDATED;
	else if (ieq(name, "source")) col->role = C_SOURCE;
	else if (edges && (ieq(name, "source_id") || ieq(name, "from") || ieq(name, "start_id"))) col->role = C_SRC;
	else if (edges && (ieq(name, "target_id") || ieq(name, "to") || ieq(name, "end_id"))) col->role = C_DST;
	else if (edges && ieq(name, "weight")) col->role = C_WEIGHT;
	if (col->role == C_PROP)
		col->name = name;
	else
		free(name);
	return 0;
}

/* Appends one typed value as JSON. 0, or KG_EINVAL with reason. */
static int csv_value(kgio_buf *out, const char *v, int vtype, char *reason, size_t cap, const char *col)
{
	char *end;
	switch (vtype) {
	case V_INT: {
		errno = 0;
		long long x = strtoll(v, &end, 10);
		if (!*v || *end || errno) {
			kgio_setmsg(reason, cap, "column '%s': '%.60s' is not an integer", col, v);
			return KG_EINVAL;
		}
		return kgio_buf_printf(out, "%lld", x);
	}
	case V_FLOAT: {
		double d = strtod(v, &end);
		if (!*v || *end || !isfinite(d)) {
			kgio_setmsg(reason, cap, "column '%s': '%.60s' is not a number", col, v);
			return KG_EINVAL;
		}
		return kgio_json_double(out, d);
	}
	case V_BOOL:
		if (ieq(v, "true") || !strcmp(v, "1"))
			return kgio_buf_append(out, "true", 4);
		if (ieq(v, "false") || !strcmp(v, "0"))
			return kgio_buf_append(out, "false", 5);
		kgio_setmsg(reason, cap, "column '%s': '%.60s' is not a boolean (true/false)", col, v);
		return KG_EINVAL;
	case V_JSON: {
		kgio_jp j = { v, v + strlen(v), "" };
		if (kgio_jp_skip(&j, 0) || (kgio_jp_ws(&j), j.p != j.end)) {
			kgio_setmsg(reason, cap, "column '%s': not valid JSON (%s)", col, j.err[0] ? j.err : "text after the value");
			return KG_EINVAL;
		}
		return kgio_buf_append(out, v, strlen(v));
	}
	default:
		return kgio_json_string(out, v);
	}
}

static int csv_prop(kgio_buf *props, const csv_col *c, const char *v, char *reason, size_t cap)
{
	if (props->len > 1 && kgio_buf_putc(props, ','))
		return KG_ENOMEM;
	if (kgio_json_string(props, c->name) || kgio_buf_putc(props, ':'))
		return KG_ENOMEM;
	if (!c->array)
		return csv_value(props, v, c->vtype, reason, cap, c->name);
	if (kgio_buf_putc(props, '['))
		return KG_ENOMEM;
	char *copy = strdup(v);
	if (!copy)
		return KG_ENOMEM;
	int rc = 0, first = 1;
	for (char *save = NULL, *t = strtok_r(copy, ";", &save); t && !rc; t = strtok_r(NULL, ";", &save)) {
		if (!first)
			rc = kgio_buf_putc(props, ',');
		first = 0;
		if (!rc)
			rc = csv_value(props, t, c->vtype, reason, cap, c->name);
	}
	free(copy);
	return rc ? rc : kgio_buf_putc(props, ']');
}

static int scratch_str(imp *m, const char *s, size_t *off)
{
	*off = m->scratch.chars.len;
	if (kgio_buf_append(&m->scratch.chars, s, strlen(s)))
		return KG_ENOMEM;
	m->scratch.chars.len++;
	return 0;
}

/* One data row -> a record. 0, KG_ENOMEM, or a record error with reason. */
static int csv_record(imp *m, const csv_col *cols, size_t ncols, const char *cells, const size_t *offs,
                      int edges, const char *stem, uint64_t row, kgio_rec *r, kgio_buf *props,
                      char *reason, size_t cap)
{
	memset(r, 0, sizeof *r);
	r->id = r->type = r->props = r->src_id = r->dst_id = r->source = r->tenant = r->raw = KGIO_NONE;
	r->kind = edges ? 2 : 1;
	r->weight = 1.0;
	kgio_arena_reset(&m->scratch);
	props->len = 0;
	int rc = kgio_buf_putc(props, '{');
	const char *base_props = NULL;
	for (size_t i = 0; i < ncols && !rc; i++) {
		const csv_col *c = &cols[i];
		const char *v = cells + offs[i];
		switch (c->role) {
		case C_ID:
			rc = scratch_str(m, v, &r->id);
			if (!rc && c->name && *v)
				rc = csv_prop(props, c, v, reason, cap);
			break;
		case C_TYPE: {
			/* neo4j labels "A;B": the first one is the entity type */
			char *t = strndup(v, strcspn(v, ";"));
			rc = t ? scratch_str(m, t, &r->type) : KG_ENOMEM;
			free(t);
			break;
		}
		case C_SRC: rc = scratch_str(m, v, &r->src_id); break;
		case C_DST: rc = scratch_str(m, v, &r->dst_id); break;
		case C_SOURCE: if (*v) rc = scratch_str(m, v, &r->source); break;
		case C_TENANT: if (*v) rc = scratch_str(m, v, &r->tenant); break;
		case C_PROPS: if (*v) base_props = v; break;
		case C_CREATED:
		case C_UPDATED:
			if (*v && kg_parse_time(v, c->role == C_CREATED ? &r->created : &r->updated)) {
				kgio_setmsg(reason, cap, "column '%s': '%.60s' is not an ISO 8601 timestamp",
				            c->role == C_CREATED ? "created_at" : "updated_at", v);
				rc = KG_EINVAL;
			}
			break;
		case C_WEIGHT: {
			char *end;
			if (*v) {
				r->weight = strtod(v, &end);
				if (*end) {
					kgio_setmsg(reason, cap, "column 'weight': '%.60s' is not a number", v);
					rc = KG_EINVAL;
				}
			}
			break;
		}
		case C_EMB: {
			if (!*v)
				break;
			/* "[0.1, 0.2]" or "0.1;0.2" */
			const char *p = v;
			while (isspace((unsigned char)*p) || *p == '[')
				p++;
			r->has_emb = 1;
			r->emb = m->scratch.nfloats;
			while (*p && *p != ']' && !rc) {
				char *end;
				double d = strtod(p, &end);
				if (end == p) {
					kgio_setmsg(reason, cap, "column 'embedding': expected numbers separated by ';' or a JSON array");
					rc = KG_EINVAL;
					break;
				}
				if (kgio_arena_push_float(&m->scratch, (float)d)) {
					rc = KG_ENOMEM;
					break;
				}
				r->dim++;
				p = end;
				while (isspace((unsigned char)*p) || *p == ',' || *p == ';')
					p++;
			}
			break;
		}
		case C_IGNORE:
			break;
		default:
			if (*v) /* an empty cell is an absent property, as in neo4j-admin */
				rc = csv_prop(props, c, v, reason, cap);
		}
	}
	if (rc)
		return rc;
	if (base_props) {
		kgio_jp j = { base_props, base_props + strlen(base_props), "" };
		kgio_jp_ws(&j);
		if (j.p >= j.end || *j.p != '{' || kgio_jp_skip(&j, 0) || (kgio_jp_ws(&j), j.p != j.end)) {
			kgio_setmsg(reason, cap, "column 'properties' must hold a JSON object%s%s",
			            j.err[0] ? ": " : "", j.err);
			return KG_EINVAL;
		}
		/* Merge: the object's members, then the property columns. */
		const char *close = strrchr(base_props, '}');
		kgio_buf merged = { 0 };
		rc = kgio_buf_append(&merged, base_props, (size_t)(close - base_props));
		const char *q = base_props + 1;
		while (isspace((unsigned char)*q))
			q++;
		int empty = *q == '}';
		if (props->len > 1)
			rc |= (empty ? 0 : kgio_buf_putc(&merged, ',')) | kgio_buf_append(&merged, props->data + 1, props->len - 1);
		rc |= kgio_buf_putc(&merged, '}');
		if (!rc) {
			r->props = m->scratch.chars.len;
			rc = kgio_buf_append(&m->scratch.chars, merged.data, merged.len);
			m->scratch.chars.len++;
		}
		kgio_buf_free(&merged);
		if (rc)
			return KG_ENOMEM;
	} else {
		if (kgio_buf_putc(props, '}'))
			return KG_ENOMEM;
		r->props = m->scratch.chars.len;
		if (kgio_buf_append(&m->scratch.chars, props->data, props->len))
			return KG_ENOMEM;
		m->scratch.chars.len++;
	}
	if (r->id == KGIO_NONE || !m->scratch.chars.data[r->id]) {
		if (!edges) {
			kgio_setmsg(reason, cap, "empty id");
			return KG_EINVAL;
		}
		char gen[KG_IO_PATH_SIZE + 32];
		snprintf(gen, sizeof gen, "%s-%llu", stem, (unsigned long long)row);
		if (scratch_str(m, gen, &r->id))
			return KG_ENOMEM;
	}
	if (r->type == KGIO_NONE || !m->scratch.chars.data[r->type]) {
		kgio_setmsg(reason, cap, "empty %s", edges ? "relation type" : "entity type");
		return KG_EINVAL;
	}
	return 0;
}

int kgio_read_csv(imp *m, reader *rd, int edges, const char *path)
{
	kgio_buf cells = { 0 }, raw = { 0 }, props = { 0 };
	size_t *offs = NULL, nf = 0, cap = 0, ncols = 0;
	csv_col *cols = NULL;
	uint64_t start = 0, row = 0;
	char reason[KG_IO_ERRMSG_SIZE];
	/* Generated relation ids: "<file name without extensions>-<row>". */
	const char *bn = strrchr(path, '/');
	char stem[KG_IO_PATH_SIZE];
	snprintf(stem, sizeof stem, "%s", bn ? bn + 1 : path);
	char *dot = strchr(stem, '.');
	if (dot && dot != stem)
		*dot = 0;

	int rc = csv_row(m, rd, &cells, &raw, &offs, &nf, &cap, &start);
	if (rc <= 0) {
		if (rc == 0)
			rc = fail(m, KG_EINVAL, 1, "the CSV %s file is empty: it needs a header row", edges ? "edges" : "nodes");
		goto out;
	}
	m->res->lines++;
	ncols = nf;
	cols = calloc(ncols, sizeof *cols);
	if (!cols) {
		rc = fail(m, KG_ENOMEM, 1, "out of memory");
		goto out;
	}
	int have[C_IGNORE + 1] = { 0 };
	for (size_t i = 0; i < ncols; i++) {
		rc = csv_header(cells.data + offs[i], edges, &cols[i]);
		if (rc) {
			rc = fail(m, rc, 1, "header column '%s': unknown type after ':' (use int, float, boolean, string, json, "
			          "ID, LABEL, START_ID, END_ID, TYPE or IGNORE)", cells.data + offs[i]);
			goto out;
		}
		have[cols[i].role]++;
	}
	if (!edges && (!have[C_ID] || !have[C_TYPE])) {
		rc = fail(m, KG_EINVAL, 1, "the nodes file needs an id column (id or :ID) and a type column "
		          "(entity_type, type or :LABEL)");
		goto out;
	}
	if (edges && (!have[C_SRC] || !have[C_DST] || !have[C_TYPE])) {
		rc = fail(m, KG_EINVAL, 1, "the edges file needs source_id (or :START_ID, from), target_id (or :END_ID, "
		          "to) and relation_type (or :TYPE, type) columns");
		goto out;
	}
	for (;;) {
		rc = csv_row(m, rd, &cells, &raw, &offs, &nf, &cap, &start);
		if (rc <= 0)
			break;
		m->res->lines++;
		if (nf == 1 && !cells.data[offs[0]])
			continue; /* blank line */
		row++;
		if (nf != ncols) {
			snprintf(reason, sizeof reason, "the row has %zu fields, the header %zu", nf, ncols);
			rc = bad_record(m, KG_EINVAL, start, raw.data, raw.len, reason);
			if (rc)
				break;
			continue;
		}
		kgio_rec r;
		rc = csv_record(m, cols, ncols, cells.data, offs, edges, stem, row, &r, &props, reason, sizeof reason);
		r.line = start;
		if (rc == KG_ENOMEM) {
			rc = fail(m, rc, start, "out of memory");
			break;
		}
		if (rc) {
			if ((rc = bad_record(m, rc, start, raw.data, raw.len, reason)))
				break;
			continue;
		}
		if ((rc = take_record(m, &r, raw.data, raw.len)))
			break;
	}
	if (rc == KG_ENOMEM)
		rc = fail(m, rc, start, "out of memory");
out:
	if (cols)
		csv_cols_free(cols, ncols);
	free(offs);
	kgio_buf_free(&cells);
	kgio_buf_free(&raw);
	kgio_buf_free(&props);
	return rc;
}


/* ------------------------------------------------------------------ */
/* driver                                                               */
/* ------------------------------------------------------------------ */

/* After the last record: pending batches, then the deferred relations
 * (their endpoints have all been read by now). */
static int finish_records(imp *m)
{
	int rc = flush_relations(m);
	if (rc || !m->ndeferred)
		return rc;
	m->final_pass = 1;
	FILE *f = m->dfile;
	kgio_buf chunk = { 0 };
	if (f) {
		if (m->dmem.len && fwrite(m->dmem.data, 1, m->dmem.len, f) != m->dmem.len)
			return fail(m, KG_EIO, 0, "cannot write deferred relations: %s", strerror(errno));
		m->dmem.len = 0;
		rewind(f);
	}
	/* Read records back one at a time: from the file if it was used, else
	 * from memory. */
	size_t pos = 0;
	for (uint64_t k = 0; k < m->ndeferred && !rc; k++) {
		uint64_t hdr[5];
		const char *strs[7];
		uint32_t lens[7];
		kgio_buf rec = { 0 };
		if (f) {
			if (fread(hdr, sizeof hdr, 1, f) != 1)
				rc = KG_EIO;
			for (int i = 0; i < 7 && !rc; i++) {
				uint32_t n;
				if (fread(&n, 4, 1, f) != 1) {
					rc = KG_EIO;
					break;
				}
				lens[i] = n;
				size_t off = rec.len;
				strs[i] = (const char *)(uintptr_t)(n == UINT32_MAX ? 0 : off + 1);
				if (n != UINT32_MAX) {
					if (kgio_buf_reserve(&rec, n + 1)) {
						rc = KG_ENOMEM;
						break;
					}
					if (fread(rec.data + rec.len, 1, n, f) != n) {
						rc = KG_EIO;
						break;
					}
					rec.len += n;
					rec.data[rec.len++] = 0;
				}
			}
		} else {
			memcpy(hdr, m->dmem.data + pos, sizeof hdr);
			pos += sizeof hdr;
			for (int i = 0; i < 7; i++) {
				uint32_t n;
				memcpy(&n, m->dmem.data + pos, 4);
				pos += 4;
				lens[i] = n;
				strs[i] = (const char *)(uintptr_t)(n == UINT32_MAX ? 0 : rec.len + 1);
				if (n != UINT32_MAX) {
					if (kgio_buf_append(&rec, m->dmem.data + pos, n) || kgio_buf_putc(&rec, 0)) {
						rc = KG_ENOMEM;
						break;
					}
					pos += n;
				}
			}
		}
		if (rc) {
			kgio_buf_free(&rec);
			rc = fail(m, rc, 0, "cannot read back deferred relations");
			break;
		}
		/* Rebuild a record in the scratch arena and hand it to the batch. */
		kgio_arena_reset(&m->scratch);
		kgio_rec r;
		memset(&r, 0, sizeof r);
		r.kind = 2;
		memcpy(&r.line, &hdr[0], 8);
		memcpy(&r.weight, &hdr[1], 8);
		memcpy(&r.created, &hdr[2], 8);
		memcpy(&r.updated, &hdr[3], 8);
		size_t *fields[6] = { &r.id, &r.type, &r.src_id, &r.dst_id, &r.props, &r.source };
		for (int i = 0; i < 6; i++) {
			*fields[i] = KGIO_NONE;
			if (strs[i]) {
				*fields[i] = m->scratch.chars.len;
				if (kgio_buf_append(&m->scratch.chars, rec.data + (uintptr_t)strs[i] - 1, lens[i]))
					rc = KG_ENOMEM;
				m->scratch.chars.len++;
			}
		}
		r.tenant = KGIO_NONE;
		r.raw = KGIO_NONE;
		const char *raw = strs[6] ? rec.data + (uintptr_t)strs[6] - 1 : NULL;
		size_t ns = (size_t)hdr[4];
		if (!rc) {
			batch *b = &m->rb;
			if (b->n && b->ns != ns)
				rc = flush_relations(m);
			b->ns = ns;
			if (!rc && batch_add(b, &r, &m->scratch, raw, raw ? lens[6] : 0))
				rc = KG_ENOMEM;
			if (!rc && b->n >= m->batch_size)
				rc = flush_relations(m);
		} else {
			rc = fail(m, rc, r.line, "out of memory");
		}
		kgio_buf_free(&rec);
	}
	kgio_buf_free(&chunk);
	if (!rc)
		rc = flush_relations(m);
	return rc;
}

static int read_file(imp *m, const char *path, kg_io_format fmt, int edges)
{
	reader rd;
	m->file = path;
	int rc = rd_open(&rd, path);
	if (rc) {
		rc = fail(m, rc, 0, "%s", rd.err);
		rd_close(&rd);
		return rc;
	}
	if (fmt == KG_FORMAT_JSON)
		rc = read_json(m, &rd);
	else if (fmt == KG_FORMAT_CSV)
		rc = kgio_read_csv(m, &rd, edges, path);
	else
		rc = read_jsonl(m, &rd);
	rd_close(&rd);
	return rc;
}

/* Views (of the transaction or the base) are closed before the transaction
 * ends, as the core requires. */
static void close_views(imp *m)
{
	for (size_t i = 0; i < m->nns; i++)
		if (m->ns[i].owned) {
			kg_close(m->ns[i].h);
			m->ns[i].owned = 0;
		}
}

static void imp_reset(imp *m)
{
	for (size_t i = 0; i < m->nns; i++) {
		if (m->ns[i].owned)
			kg_close(m->ns[i].h);
		free(m->ns[i].tenant);
	}
	free(m->ns);
	m->ns = NULL;
	m->nns = 0;
	batch_clear(&m->eb);
	batch_clear(&m->rb);
	m->dmem.len = 0;
	if (m->dfile)
		fclose(m->dfile);
	m->dfile = NULL;
	m->ndeferred = 0;
	if (m->undo)
		fclose(m->undo);
	m->undo = NULL;
	m->final_pass = 0;
	m->since_progress = 0;
}

static int run(imp *m, const char *path, const char *edges, kg_io_format fmt)
{
	int rc = 0;
	m->ns = calloc(1, sizeof *m->ns);
	if (!m->ns)
		return fail(m, KG_ENOMEM, 0, "out of memory");
	m->nns = 1;
	if (m->mode != MODE_UNDO) {
		rc = kg_begin(m->base, &m->txn);
		if (rc == KG_EUNSUPPORTED) {
			m->mode = MODE_UNDO;
			rc = 0;
		} else if (rc) {
			return fail(m, rc, 0, "starting the import's transaction: %s", kg_errmsg(m->base));
		} else if (m->mode == MODE_TXN_VIEWS && !kg_tenant_id(m->base)) {
			/* Probe: can a tenant view share this transaction? */
			kg_store *v = NULL;
			if (kg_tenant(m->txn, "kgstore_import_probe", &v) == KG_OK)
				kg_close(v);
			else
				m->mode = MODE_TXN_ONE;
		} else {
			m->mode = MODE_TXN_ONE;
		}
	}
	m->ns[0].h = m->mode == MODE_UNDO ? m->base : m->txn;
	if (path)
		rc = read_file(m, path, fmt, 0);
	if (!rc && edges)
		rc = read_file(m, edges, KG_FORMAT_CSV, 1);
	if (!rc) {
		m->file = edges ? edges : path;
		rc = finish_records(m);
	}
	return rc;
}

int kg_import(kg_store *s, const char *path, const kg_import_options *opts, kg_import_result *res)
{
	kg_import_result local;
	kg_import_options defaults = KG_IMPORT_OPTIONS_INIT;
	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
	if (!opts)
		opts = &defaults;
	imp m;
	memset(&m, 0, sizeof m);
	m.base = s;
	m.o = opts;
	m.res = res;
	m.batch_size = opts->batch_size ? opts->batch_size : 1000;
	if (!s || (!path && !(opts->format == KG_FORMAT_CSV && opts->edges_path)))
		return fail(&m, KG_EINVAL, 0, "kg_import: a store and a file are needed");
	kg_io_format fmt = opts->format ? opts->format : kgio_format_from_name(path);
	const char *edges = fmt == KG_FORMAT_CSV ? opts->edges_path : NULL;
	if (fmt == KG_FORMAT_CSV && !path)
		path = NULL;
	snprintf(m.rej_path, sizeof m.rej_path, "%s",
	         opts->reject_path ? opts->reject_path : "");
	if (!opts->reject_path)
		snprintf(m.rej_path, sizeof m.rej_path, "%s.rejects.jsonl",
		         path && strcmp(path, "-") ? path : edges ? edges : "import");
	m.earr = calloc(m.batch_size, sizeof *m.earr);
	m.rarr = calloc(m.batch_size, sizeof *m.rarr);
	int rc;
	if (!m.earr || !m.rarr) {
		rc = fail(&m, KG_ENOMEM, 0, "out of memory (batch size %zu)", m.batch_size);
		goto out;
	}
	m.mode = (opts->flags & KG_IMPORT_NO_TRANSACTION) ? MODE_UNDO : MODE_TXN_VIEWS;
	rc = run(&m, path, edges, fmt);
	if (rc == RESTART) {
		/* Another tenant showed up and the transaction cannot cover it:
		 * roll back and start over, committing batch by batch with an undo
		 * log. */
		close_views(&m);
		kg_rollback(m.txn);
		m.txn = NULL;
		imp_reset(&m);
		if (m.rej)
			fclose(m.rej);
		m.rej = NULL;
		memset(res, 0, sizeof *res);
		if (path && !strcmp(path, "-")) {
			rc = fail(&m, KG_EUNSUPPORTED, 0,
			          "standard input holds several tenants and this backend cannot hold them in one "
			          "transaction: import from a file, or use KG_IMPORT_NO_TRANSACTION");
		} else {
			m.mode = MODE_UNDO;
			rc = run(&m, path, edges, fmt);
		}
	}
	if (rc == KG_OK && m.txn) {
		close_views(&m);
		rc = kg_commit(m.txn);
		m.txn = NULL;
		if (rc)
			rc = fail(&m, rc, 0, "committing the import: %s (nothing was imported)", kg_errmsg(s));
	}
	if (rc) {
		if (m.txn) {
			close_views(&m);
			kg_rollback(m.txn);
			m.txn = NULL;
		} else if (m.mode == MODE_UNDO) {
			int u = undo_replay(&m);
			if (u) {
				size_t n = strlen(res->errmsg);
				snprintf(res->errmsg + n, sizeof res->errmsg - n,
				         "; undoing the records already added failed too (%s): the store holds part "
				         "of the file", kg_strerror(u));
			}
		}
		res->entity_count = res->relation_count = 0;
	}
	if (m.rej && fclose(m.rej) && !rc)
		rc = fail(&m, KG_EIO, 0, "cannot write the reject file %s", m.rej_path);
	m.rej = NULL;
	if (!rc)
		progress(&m, 1);
out:
	close_views(&m);
	if (m.txn)
		kg_rollback(m.txn);
	imp_reset(&m);
	batch_free(&m.eb);
	batch_free(&m.rb);
	kgio_buf_free(&m.dmem);
	kgio_arena_free(&m.scratch);
	free(m.earr);
	free(m.rarr);
	return rc;
}
