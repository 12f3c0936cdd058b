/*
 * io_export.c - streaming export in the original's formats (JSONL, JSON,
 * optionally gzip). Records come from kg_entity_iter / kg_relation_iter and
 * go straight to a 1 MB output buffer, so memory does not grow with the
 * graph.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kgstore/backend.h" /* kg_relation_dup */
#include "tools/io_internal.h"

void kgio_namespaces_free(kgio_ns_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->owned[i])
			kg_close(l->handles[i]);
	free(l->handles);
	free(l->tenants);
	free(l->owned);
	free(l->tenant_block);
	memset(l, 0, sizeof *l);
}

static int ns_alloc(kgio_ns_list *l, size_t n)
{
	l->handles = calloc(n ? n : 1, sizeof *l->handles);
	l->tenants = calloc(n ? n : 1, sizeof *l->tenants);
	l->owned = calloc(n ? n : 1, sizeof *l->owned);
	return l->handles && l->tenants && l->owned ? 0 : KG_ENOMEM;
}

int kgio_namespaces(kg_store *s, int all, const char *one_tenant, kgio_ns_list *l, char *msg, size_t cap)
{
	memset(l, 0, sizeof *l);
	if (all && kg_tenant_id(s)) {
		kgio_setmsg(msg, cap, "all tenants: give the base store, not the view of tenant %s",
		            kg_tenant_id(s));
		return KG_EINVAL;
	}
	if (all) {
		size_t nt = 0;
		int rc = kg_list_tenants(s, &l->tenant_block, &nt);
		if (rc) {
			kgio_setmsg(msg, cap, "listing tenants: %s", kg_errmsg(s));
			return rc;
		}
		if (ns_alloc(l, nt + 1))
			return KG_ENOMEM;
		l->handles[0] = s;
		l->tenants[0] = NULL;
		l->n = 1;
		for (size_t i = 0; i < nt; i++) {
			rc = kg_tenant(s, l->tenant_block[i], &l->handles[l->n]);
			if (rc) {
				kgio_setmsg(msg, cap, "tenant %s: %s", l->tenant_block[i], kg_errmsg(s));
				return rc;
			}
			l->owned[l->n] = 1;
			l->tenants[l->n] = l->tenant_block[i];
			l->n++;
		}
		return 0;
	}
	if (ns_alloc(l, 1))
		return KG_ENOMEM;
	if (one_tenant) {
		if (kg_tenant_id(s)) {
			kgio_setmsg(msg, cap, "tenant %s: give the base store, not the view of tenant %s",
			            one_tenant, kg_tenant_id(s));
			return KG_EINVAL;
		}
		int rc = kg_tenant(s, one_tenant, &l->handles[0]);
		if (rc) {
			kgio_setmsg(msg, cap, "%s", kg_errmsg(s));
			return rc;
		}
		l->owned[0] = 1;
		l->tenants[0] = kg_tenant_id(l->handles[0]);
	} else {
		l->handles[0] = s;
		l->tenants[0] = kg_tenant_id(s);
	}
	l->n = 1;
	return 0;
}

/* One export run: where records go and what has been written. */
typedef struct exp_ctx {
	kgio_writer *w;
	kg_io_format fmt;
	const kg_export_options *o;
	kg_export_result *res;
	uint64_t done, total;
	int first; /* no record yet in the current JSON array */
} exp_ctx;

static int report(const kg_export_options *o, uint64_t done, uint64_t total)
{
	if (o->progress && o->progress(done, total, "export", o->progress_user)) {
		return KG_EIO;
	}
	return 0;
}

/* Writes one record (e, or else r) of namespace `tenant`, counts it and
 * reports progress. */
static int emit(exp_ctx *x, const kg_entity *e, const kg_relation *r, const char *tenant)
{
	kgio_buf *b = &x->w->buf;
	int rc;
	if (x->fmt == KG_FORMAT_JSON)
		rc = kgio_buf_append(b, x->first ? "\n" : ",\n", x->first ? 1 : 2);
	else if (e)
		rc = kgio_buf_append(b, "{\"type\": \"entity\", \"data\": ", 27);
	else
		rc = kgio_buf_append(b, "{\"type\": \"relation\", \"data\": ", 29);
	if (e) {
		kg_entity copy = *e;
		copy.tenant_id = tenant;
		rc |= kgio_json_entity(b, &copy);
	} else {
		kg_relation copy = *r;
		copy.tenant_id = tenant;
		rc |= kgio_json_relation(b, &copy);
	}
	if (x->fmt != KG_FORMAT_JSON)
		rc |= kgio_buf_append(b, "}\n", 2);
	x->first = 0;
	if (rc)
		return KG_ENOMEM;
	if (e)
		x->res->entity_count++;
	else
		x->res->relation_count++;
	if (b->len >= (1u << 20) - 65536 && (rc = kgio_writer_flush(x->w)))
		return rc;
	if ((++x->done & 4095) == 0)
		return report(x->o, x->done, x->total);
	return 0;
}

/* Relations under an entity type filter wait here, so their endpoints are
 * looked up with one kg_get_entities per batch, not one get per endpoint. */
#define PENDING_MAX 256

typedef struct pending {
	kg_relation *rels[PENDING_MAX];
	size_t n;
} pending;

static void pending_clear(pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		kg_relation_free(p->rels[i]);
	p->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int has_id(const char **ids, size_t n, const char *id)
{
	return n && bsearch(&id, ids, n, sizeof *ids, cmp_str) != NULL;
}

/* Writes the pending relations whose two endpoints are of the filter's
 * type, in their order, and empties the batch. */
static int flush_pending(exp_ctx *x, pending *p, kg_store *h, const char *tenant)
{
	if (!p->n)
		return 0;
	const char *ids[2 * PENDING_MAX];
	for (size_t i = 0; i < p->n; i++) {
		ids[2 * i] = p->rels[i]->source_id;
		ids[2 * i + 1] = p->rels[i]->target_id;
	}
	kg_entity_list *found = NULL;
	int rc = kg_get_entities(h, ids, 2 * p->n, &found);
	if (rc) {
		kgio_setmsg(x->res->errmsg, sizeof x->res->errmsg, "reading relations: %s", kg_errmsg(h));
		pending_clear(p);
		return rc;
	}
	/* The ids of the filter's type, sorted for lookup (reusing ids[]). */
	size_t m = 0;
	for (size_t i = 0; i < found->count; i++)
		if (!strcmp(found->items[i]->entity_type, x->o->entity_type))
			ids[m++] = found->items[i]->id;
	qsort(ids, m, sizeof *ids, cmp_str);
	for (size_t i = 0; i < p->n && !rc; i++) {
		const kg_relation *r = p->rels[i];
		if (has_id(ids, m, r->source_id) && has_id(ids, m, r->target_id))
			rc = emit(x, NULL, r, tenant);
	}
	kg_entity_list_free(found);
	pending_clear(p);
	return rc;
}

static int export_to(kg_store *s, kgio_writer *w, kg_io_format fmt, const kg_export_options *o,
                     kg_export_result *res)
{
	kgio_ns_list l;
	int rc = kgio_namespaces(s, o->all_tenants, o->tenant_id, &l, res->errmsg, sizeof res->errmsg);
	exp_ctx x = { w, fmt, o, res, 0, 0, 1 };
	pending pend = { .n = 0 };
	if (rc)
		goto out;

	/* Total for the progress bar (unknown under a filter). */
	if (!o->entity_type && !o->relation_type) {
		for (size_t i = 0; i < l.n; i++) {
			kg_stats *st = NULL;
			if (kg_get_stats(l.handles[i], &st) == KG_OK) {
				x.total += st->entity_count + (o->no_relations ? 0 : st->relation_count);
				kg_stats_free(st);
			}
		}
	}

	kgio_buf *b = &w->buf;
	if (fmt == KG_FORMAT_JSON && kgio_buf_append(b, "{\"entities\": [", 14)) {
		rc = KG_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < l.n && !rc; i++) {
		kg_entity_iter *it = NULL;
		rc = kg_entity_iter_new(l.handles[i], o->entity_type, &it);
		if (rc) {
			kgio_setmsg(res->errmsg, sizeof res->errmsg, "reading entities: %s", kg_errmsg(l.handles[i]));
			break;
		}
		const kg_entity *e;
		int n;
		while ((n = kg_entity_iter_next(it, &e)) == 1 && !(rc = emit(&x, e, NULL, l.tenants[i])))
			;
		if (n < 0 && !rc) {
			rc = n;
			kgio_setmsg(res->errmsg, sizeof res->errmsg, "reading entities: %s", kg_errmsg(l.handles[i]));
		}
		kg_entity_iter_free(it);
	}
	if (!rc && fmt == KG_FORMAT_JSON && kgio_buf_append(b, "\n], \"relations\": [", 18))
		rc = KG_ENOMEM;
	x.first = 1;
	for (size_t i = 0; i < l.n && !rc && !o->no_relations; i++) {
		kg_relation_iter *it = NULL;
		rc = kg_relation_iter_new(l.handles[i], o->relation_type, &it);
		if (rc) {
			kgio_setmsg(res->errmsg, sizeof res->errmsg, "reading relations: %s", kg_errmsg(l.handles[i]));
			break;
		}
		const kg_relation *r;
		int n;
		while ((n = kg_relation_iter_next(it, &r)) == 1) {
			if (!o->entity_type) {
				rc = emit(&x, NULL, r, l.tenants[i]);
			} else if (!(pend.rels[pend.n] = kg_relation_dup(r))) {
				rc = KG_ENOMEM;
			} else if (++pend.n == PENDING_MAX) {
				rc = flush_pending(&x, &pend, l.handles[i], l.tenants[i]);
			}
			if (rc)
				break;
		}
		if (n < 0 && !rc) {
			rc = n;
			kgio_setmsg(res->errmsg, sizeof res->errmsg, "reading relations: %s", kg_errmsg(l.handles[i]));
		}
		if (!rc)
			rc = flush_pending(&x, &pend, l.handles[i], l.tenants[i]);
		kg_relation_iter_free(it);
	}
	if (!rc && fmt == KG_FORMAT_JSON && kgio_buf_append(b, "\n]}\n", 4))
		rc = KG_ENOMEM;
	if (!rc)
		rc = report(o, x.done, x.total ? x.total : x.done);
	if (rc == KG_EIO && !res->errmsg[0]) {
		if (w->failed)
			kgio_setmsg(res->errmsg, sizeof res->errmsg, "%s", w->err);
		else
			kgio_setmsg(res->errmsg, sizeof res->errmsg, "interrupted by the progress callback");
	}
out:
	pending_clear(&pend);
	kgio_namespaces_free(&l);
	if (rc == KG_ENOMEM && !res->errmsg[0])
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "out of memory");
	return rc;
}

static void res_init(kg_export_result *res)
{
	memset(res, 0, sizeof *res);
}

int kg_export(kg_store *s, const char *path, const kg_export_options *opts, kg_export_result *res)
{
	kg_export_result local;
	kg_export_options defaults = KG_EXPORT_OPTIONS_INIT;
	if (!res)
		res = &local;
	res_init(res);
	if (!opts)
		opts = &defaults;
	if (!s || !path || !*path) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "kg_export: store and path must be given");
		return KG_EINVAL;
	}
	if (opts->format == KG_FORMAT_CSV) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg,
		            "export to CSV is not offered: export JSONL or JSON (CSV is an import format)");
		return KG_EUNSUPPORTED;
	}
	int gz = opts->gzip || kgio_has_suffix(path, ".gz");
	size_t plen = strlen(path);
	if (plen + 8 >= sizeof res->filepath) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "kg_export: path too long");
		return KG_EINVAL;
	}
	/* As the original: asking for compression appends ".gz". */
	snprintf(res->filepath, sizeof res->filepath, "%s%s", path,
	         gz && !kgio_has_suffix(path, ".gz") ? ".gz" : "");
	res->compressed = gz;
	kg_io_format fmt = opts->format ? opts->format : kgio_format_from_name(res->filepath);
	if (fmt == KG_FORMAT_CSV)
		fmt = KG_FORMAT_JSONL;

	char tmp[KG_IO_PATH_SIZE + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", res->filepath);
	kgio_writer w;
	int rc = kgio_writer_open(&w, tmp, gz, opts->gzip_level);
	if (rc) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "%s", w.err);
		kgio_writer_close(&w);
		remove(tmp); /* created before the failure */
		return rc;
	}
	rc = export_to(s, &w, fmt, opts, res);
	int crc = kgio_writer_close(&w);
	if (!rc && crc) {
		rc = crc;
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "%s: %s", res->filepath, w.err);
	}
	if (!rc && rename(tmp, res->filepath)) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "cannot rename %s to %s: %s", tmp, res->filepath,
		            strerror(errno));
		rc = KG_EIO;
	}
	if (rc) {
		remove(tmp);
		res->entity_count = res->relation_count = 0;
	}
	return rc;
}

int kg_export_stream(kg_store *s, void *stdio_file, const kg_export_options *opts, kg_export_result *res)
{
	kg_export_result local;
	kg_export_options defaults = KG_EXPORT_OPTIONS_INIT;
	if (!res)
		res = &local;
	res_init(res);
	if (!opts)
		opts = &defaults;
	if (!s || !stdio_file) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "kg_export_stream: store and stream must be given");
		return KG_EINVAL;
	}
	snprintf(res->filepath, sizeof res->filepath, "-");
	res->compressed = opts->gzip != 0;
	kg_io_format fmt = opts->format == KG_FORMAT_JSON ? KG_FORMAT_JSON : KG_FORMAT_JSONL;
	kgio_writer w;
	int rc = kgio_writer_from_stream(&w, stdio_file, opts->gzip, opts->gzip_level);
	if (rc) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "%s", w.err);
		kgio_writer_close(&w);
		return rc;
	}
	rc = export_to(s, &w, fmt, opts, res);
	int crc = kgio_writer_close(&w);
	if (!rc && crc) {
		rc = crc;
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "output: %s", w.err);
	}
	return rc;
}
