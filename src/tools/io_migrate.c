/*
 * io_migrate.c - content checksums, kg_verify and kg_migrate.
 *
 * Migration streams each namespace (global, then tenants sorted) from the
 * source's iterators into the destination's bulk calls, one batch per call
 * (a bulk call is all-or-nothing and commits on its own), entities before
 * relations so every relation finds its endpoints.
 *
 * Resume: after each committed batch the resume file records the namespace,
 * the phase and how many source records (in insertion order) are done, plus
 * the last id. A restarted migration skips that many records of the source
 * iterator (checking the last id, to notice a changed source) and adds its
 * first batch with KG_BULK_SKIP_EXISTING, since the process may have died
 * between a commit and the resume file's update.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/io_internal.h"

/* ------------------------------------------------------------------ */
/* checksums                                                            */
/* ------------------------------------------------------------------ */

static void sum_add(kg_checksum *c, const kgio_hash *h)
{
	c->count++;
	c->sum_lo += h->a;
	c->sum_hi += h->b;
}

static void sum_merge(kg_checksum *into, const kg_checksum *c)
{
	into->count += c->count;
	into->sum_lo += c->sum_lo;
	into->sum_hi += c->sum_hi;
}

typedef struct prog {
	kg_progress_fn fn;
	void *user;
	uint64_t done, total;
	const char *phase;
} prog;

static int prog_tick(prog *p, uint64_t n, int force)
{
	uint64_t before = p->done;
	p->done += n;
	if (!p->fn)
		return 0;
	if (!force && (before >> 12) == (p->done >> 12))
		return 0;
	return p->fn(p->done, p->total, p->phase, p->user) ? KG_EIO : 0;
}

/* Checksums of one namespace through handle h; tenant is what the hash
 * records (NULL when comparing two handles' own namespaces). */
static int ns_checksum(kg_store *h, const char *tenant, kg_checksum *ents, kg_checksum *rels, prog *p,
                       char *msg, size_t cap)
{
	kgio_buf scratch = { 0 };
	kg_entity_iter *ei = NULL;
	kg_relation_iter *ri = NULL;
	memset(ents, 0, sizeof *ents);
	memset(rels, 0, sizeof *rels);
	int rc = kg_entity_iter_new(h, NULL, &ei);
	if (rc) {
		kgio_setmsg(msg, cap, "reading entities: %s", kg_errmsg(h));
		goto out;
	}
	const kg_entity *e;
	int n;
	while ((n = kg_entity_iter_next(ei, &e)) == 1) {
		kgio_hash hh;
		kgio_hash_entity(e, tenant, &scratch, &hh);
		sum_add(ents, &hh);
		if ((rc = prog_tick(p, 1, 0))) {
			kgio_setmsg(msg, cap, "interrupted by the progress callback");
			goto out;
		}
	}
	if (n < 0) {
		rc = n;
		kgio_setmsg(msg, cap, "reading entities: %s", kg_errmsg(h));
		goto out;
	}
	rc = kg_relation_iter_new(h, NULL, &ri);
	if (rc) {
		kgio_setmsg(msg, cap, "reading relations: %s", kg_errmsg(h));
		goto out;
	}
	const kg_relation *r;
	while ((n = kg_relation_iter_next(ri, &r)) == 1) {
		kgio_hash hh;
		kgio_hash_relation(r, tenant, &scratch, &hh);
		sum_add(rels, &hh);
		if ((rc = prog_tick(p, 1, 0))) {
			kgio_setmsg(msg, cap, "interrupted by the progress callback");
			goto out;
		}
	}
	if (n < 0) {
		rc = n;
		kgio_setmsg(msg, cap, "reading relations: %s", kg_errmsg(h));
	}
out:
	kg_entity_iter_free(ei);
	kg_relation_iter_free(ri);
	kgio_buf_free(&scratch);
	return rc;
}

static uint64_t total_of(kgio_ns_list *l)
{
	uint64_t t = 0;
	for (size_t i = 0; i < l->n; i++) {
		kg_stats *st = NULL;
		if (kg_get_stats(l->handles[i], &st) == KG_OK) {
			t += st->entity_count + st->relation_count;
			kg_stats_free(st);
		}
	}
	return t;
}

int kg_store_checksum_compute(kg_store *s, const kg_verify_options *opts, kg_store_checksum *out,
                              char errmsg[KG_IO_ERRMSG_SIZE])
{
	kg_verify_options defaults = KG_VERIFY_OPTIONS_INIT;
	char local[KG_IO_ERRMSG_SIZE];
	if (!errmsg)
		errmsg = local;
	errmsg[0] = 0;
	if (!opts)
		opts = &defaults;
	if (!s || !out) {
		kgio_setmsg(errmsg, KG_IO_ERRMSG_SIZE, "kg_store_checksum_compute: store and out must be given");
		return KG_EINVAL;
	}
	memset(out, 0, sizeof *out);
	int all = !opts->own_namespace_only && !kg_tenant_id(s);
	kgio_ns_list l;
	int rc = kgio_namespaces(s, all, NULL, &l, errmsg, KG_IO_ERRMSG_SIZE);
	prog p = { opts->progress, opts->progress_user, 0, 0, "checksum" };
	if (!rc && p.fn)
		p.total = total_of(&l);
	for (size_t i = 0; i < l.n && !rc; i++) {
		kg_checksum e, r;
		rc = ns_checksum(l.handles[i], all ? l.tenants[i] : NULL, &e, &r, &p, errmsg, KG_IO_ERRMSG_SIZE);
		sum_merge(&out->entities, &e);
		sum_merge(&out->relations, &r);
		if (e.count || r.count)
			out->namespaces++;
	}
	kgio_namespaces_free(&l);
	return rc;
}

static int same(const kg_checksum *a, const kg_checksum *b)
{
	return a->count == b->count && a->sum_lo == b->sum_lo && a->sum_hi == b->sum_hi;
}

static void describe(char *msg, size_t cap, const char *tenant, const char *table, const kg_checksum *a,
                     const kg_checksum *b)
{
	if (a->count != b->count)
		kgio_setmsg(msg, cap, "%s%s: %s: count %llu vs %llu", tenant ? "tenant " : "",
		            tenant ? tenant : "global namespace", table, (unsigned long long)a->count,
		            (unsigned long long)b->count);
	else
		kgio_setmsg(msg, cap, "%s%s: %s: same count (%llu) but different content (checksum %016llx%016llx vs %016llx%016llx)",
		            tenant ? "tenant " : "", tenant ? tenant : "global namespace", table,
		            (unsigned long long)a->count, (unsigned long long)a->sum_hi,
		            (unsigned long long)a->sum_lo, (unsigned long long)b->sum_hi,
		            (unsigned long long)b->sum_lo);
}

int kg_verify(kg_store *a, kg_store *b, const kg_verify_options *opts, kg_verify_result *res)
{
	kg_verify_result local;
	kg_verify_options defaults = KG_VERIFY_OPTIONS_INIT;
	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
	if (!opts)
		opts = &defaults;
	if (!a || !b) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "kg_verify: two stores are needed");
		return KG_EINVAL;
	}
	int all = !opts->own_namespace_only && !kg_tenant_id(a) && !kg_tenant_id(b);
	kgio_ns_list la, lb;
	memset(&lb, 0, sizeof lb);
	int rc = kgio_namespaces(a, all, NULL, &la, res->errmsg, sizeof res->errmsg);
	if (!rc)
		rc = kgio_namespaces(b, all, NULL, &lb, res->errmsg, sizeof res->errmsg);
	prog p = { opts->progress, opts->progress_user, 0, 0, "verify" };
	if (!rc && p.fn)
		p.total = total_of(&la) + total_of(&lb);
	res->equal = 1;
	/* Tenant lists are sorted: walk both like a merge. */
	size_t i = 0, j = 0;
	while (!rc && (i < la.n || j < lb.n)) {
		const char *ta = i < la.n ? la.tenants[i] : NULL, *tb = j < lb.n ? lb.tenants[j] : NULL;
		int cmp;
		if (i == 0 && j == 0)
			cmp = 0; /* both global (or both own namespaces) */
		else if (i >= la.n)
			cmp = 1;
		else if (j >= lb.n)
			cmp = -1;
		else
			cmp = strcmp(ta, tb);
		kg_checksum ea = { 0 }, ra = { 0 }, eb = { 0 }, rb = { 0 };
		const char *name = cmp <= 0 ? ta : tb;
		if (cmp <= 0) {
			rc = ns_checksum(la.handles[i], all ? ta : NULL, &ea, &ra, &p, res->errmsg, sizeof res->errmsg);
			i++;
		}
		if (!rc && cmp >= 0) {
			rc = ns_checksum(lb.handles[j], all ? tb : NULL, &eb, &rb, &p, res->errmsg, sizeof res->errmsg);
			j++;
		}
		if (rc)
			break;
		sum_merge(&res->a.entities, &ea);
		sum_merge(&res->a.relations, &ra);
		sum_merge(&res->b.entities, &eb);
		sum_merge(&res->b.relations, &rb);
		if (ea.count || ra.count)
			res->a.namespaces++;
		if (eb.count || rb.count)
			res->b.namespaces++;
		if (res->equal && !same(&ea, &eb)) {
			res->equal = 0;
			describe(res->errmsg, sizeof res->errmsg, all ? name : NULL, "entities", &ea, &eb);
		} else if (res->equal && !same(&ra, &rb)) {
			res->equal = 0;
			describe(res->errmsg, sizeof res->errmsg, all ? name : NULL, "relations", &ra, &rb);
		}
	}
	if (!rc && p.fn && p.fn(p.done, p.total, p.phase, p.user)) {
		rc = KG_EIO;
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "interrupted by the progress callback");
	}
	if (rc)
		res->equal = 0;
	kgio_namespaces_free(&la);
	kgio_namespaces_free(&lb);
	return rc;
}

/* ------------------------------------------------------------------ */
/* resume file                                                          */
/* ------------------------------------------------------------------ */

typedef struct resume {
	int valid;
	size_t ns;
	char tenant[256]; /* "-" = global */
	int phase;        /* 1 entities, 2 relations */
	uint64_t done;
	char *last;       /* malloc'd */
} resume;

static void hex_encode(const char *s, kgio_buf *b)
{
	static const char hx[] = "0123456789abcdef";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		kgio_buf_putc(b, hx[*p >> 4]);
		kgio_buf_putc(b, hx[*p & 15]);
	}
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int resume_read(const char *path, resume *r, char *msg, size_t cap)
{
	memset(r, 0, sizeof *r);
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		kgio_setmsg(msg, cap, "cannot read the resume file %s: %s", path, strerror(errno));
		return KG_EIO;
	}
	char line[4096], *hex = NULL;
	int ok = fgets(line, sizeof line, f) && !strcmp(line, "kgstore-migrate-resume 1\n");
	unsigned long long ns = 0, done = 0;
	char phase[32] = "";
	size_t hexcap = 0;
	ssize_t got;
	if (ok)
		ok = fscanf(f, "namespace %llu\ntenant %255s\nphase %31s\ndone %llu\nlast ", &ns, r->tenant, phase,
		            &done) == 4;
	if (ok && (got = getline(&hex, &hexcap, f)) > 0) {
		if (hex[got - 1] == '\n')
			hex[--got] = 0;
		r->last = malloc((size_t)got / 2 + 1);
		ok = r->last != NULL && got % 2 == 0;
		for (ssize_t i = 0; ok && i < got; i += 2) {
			int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
			if (hi < 0 || lo < 0)
				ok = 0;
			else
				r->last[i / 2] = (char)(hi * 16 + lo);
		}
		if (ok)
			r->last[got / 2] = 0;
	} else {
		ok = 0;
	}
	free(hex);
	fclose(f);
	if (!ok || (strcmp(phase, "entities") && strcmp(phase, "relations"))) {
		free(r->last);
		r->last = NULL;
		kgio_setmsg(msg, cap, "the resume file %s is damaged: delete it and migrate again with "
		            "KG_MIGRATE_SKIP_EXISTING (--skip-existing)", path);
		return KG_ECORRUPT;
	}
	r->ns = (size_t)ns;
	r->phase = strcmp(phase, "entities") ? 2 : 1;
	r->done = done;
	r->valid = 1;
	return 0;
}

static int resume_write(const char *path, size_t ns, const char *tenant, int phase, uint64_t done,
                        const char *last, char *msg, size_t cap)
{
	char tmp[KG_IO_PATH_SIZE + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	kgio_buf b = { 0 };
	kgio_buf_printf(&b, "kgstore-migrate-resume 1\nnamespace %zu\ntenant %s\nphase %s\ndone %llu\nlast ", ns,
	                tenant ? tenant : "-", phase == 1 ? "entities" : "relations", (unsigned long long)done);
	hex_encode(last, &b);
	kgio_buf_putc(&b, '\n');
	FILE *f = fopen(tmp, "w");
	int ok = f && b.data && fwrite(b.data, 1, b.len, f) == b.len;
	if (f && fclose(f))
		ok = 0;
	kgio_buf_free(&b);
	/* rename is atomic: a crash leaves the old or the new record, never half. */
	if (!ok || rename(tmp, path)) {
		kgio_setmsg(msg, cap, "cannot write the resume file %s: %s", path, strerror(errno));
		remove(tmp);
		return KG_EIO;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* migrate                                                              */
/* ------------------------------------------------------------------ */

typedef struct mig {
	const kg_migrate_options *o;
	kg_migrate_result *res;
	size_t batch;
	kgio_arena a;
	size_t *offs; /* per item: string offsets (6 per item) */
	size_t *emb;  /* per item: float offset */
	kg_entity *ents;
	kg_relation *rels;
	prog p;
} mig;

static size_t put(kgio_arena *a, const char *s)
{
	if (!s)
		return KGIO_NONE;
	size_t off = a->chars.len;
	if (kgio_buf_append(&a->chars, s, strlen(s)))
		return (size_t)-2;
	a->chars.len++;
	return off;
}

/* Adds the gathered batch to dst; skip_first: resume's first batch. */
static int add_batch(mig *m, kg_store *dst, int kind, size_t n, int skip, const char *tenant)
{
	size_t added = 0;
	int rc;
	unsigned flags = skip ? KG_BULK_SKIP_EXISTING : 0;
	if (kind == 1) {
		for (size_t i = 0; i < n; i++) {
			size_t *o = &m->offs[i * 6];
			m->ents[i].id = kgio_str(&m->a, o[0]);
			m->ents[i].entity_type = kgio_str(&m->a, o[1]);
			m->ents[i].properties = kgio_str(&m->a, o[2]);
			m->ents[i].source = kgio_str(&m->a, o[3]);
			if (m->ents[i].embedding_dim)
				m->ents[i].embedding = m->a.floats + m->emb[i];
		}
		rc = kg_add_entities(dst, m->ents, n, flags, &added);
		m->res->entity_count += added;
	} else {
		for (size_t i = 0; i < n; i++) {
			size_t *o = &m->offs[i * 6];
			m->rels[i].id = kgio_str(&m->a, o[0]);
			m->rels[i].relation_type = kgio_str(&m->a, o[1]);
			m->rels[i].properties = kgio_str(&m->a, o[2]);
			m->rels[i].source = kgio_str(&m->a, o[3]);
			m->rels[i].source_id = kgio_str(&m->a, o[4]);
			m->rels[i].target_id = kgio_str(&m->a, o[5]);
		}
		rc = kg_add_relations(dst, m->rels, n, flags, &added);
		m->res->relation_count += added;
	}
	if (rc) {
		kgio_setmsg(m->res->errmsg, sizeof m->res->errmsg, "%s%s: writing %s: %s%s", tenant ? "tenant " : "",
		            tenant ? tenant : "global namespace", kind == 1 ? "entities" : "relations", kg_errmsg(dst),
		            rc == KG_EEXISTS ? " (the destination already holds this id: migrate into an empty "
		                               "store, or use KG_MIGRATE_SKIP_EXISTING / --skip-existing)"
		                             : "");
		return rc;
	}
	m->res->skipped += n - added;
	return 0;
}

/* One phase (entities or relations) of one namespace. */
static int copy_phase(mig *m, kg_store *src, kg_store *dst, size_t nsi, const char *tenant, int kind,
                      const resume *rs)
{
	kg_entity_iter *ei = NULL;
	kg_relation_iter *ri = NULL;
	int rc = kind == 1 ? kg_entity_iter_new(src, NULL, &ei) : kg_relation_iter_new(src, NULL, &ri);
	uint64_t done = 0, skip_to = 0;
	int skip_first = (m->o->flags & KG_MIGRATE_SKIP_EXISTING) != 0;
	char last[1] = "";
	const char *last_id = last;
	char *last_copy = NULL;
	if (rc) {
		kgio_setmsg(m->res->errmsg, sizeof m->res->errmsg, "reading the source: %s", kg_errmsg(src));
		return rc;
	}
	if (rs && rs->valid && rs->ns == nsi && rs->phase == kind) {
		skip_to = rs->done;
		skip_first = 1;
	}
	size_t n = 0;
	kgio_arena_reset(&m->a);
	for (;;) {
		const kg_entity *e = NULL;
		const kg_relation *r = NULL;
		int got = kind == 1 ? kg_entity_iter_next(ei, &e) : kg_relation_iter_next(ri, &r);
		if (got < 0) {
			rc = got;
			kgio_setmsg(m->res->errmsg, sizeof m->res->errmsg, "reading the source: %s", kg_errmsg(src));
			break;
		}
		if (got == 1 && done < skip_to) {
			/* Already committed by the interrupted run. */
			done++;
			m->res->skipped++;
			if (done == skip_to) {
				const char *id = e ? e->id : r->id;
				if (rs->last && strcmp(id, rs->last)) {
					kgio_setmsg(m->res->errmsg, sizeof m->res->errmsg,
					            "the source changed since the interrupted migration (record %llu is '%s', the "
					            "resume file says '%s'): delete the resume file and migrate again with "
					            "KG_MIGRATE_SKIP_EXISTING (--skip-existing)",
					            (unsigned long long)done, id, rs->last);
					rc = KG_EINVAL;
					break;
				}
			}
			if ((rc = prog_tick(&m->p, 1, 0)))
				break;
			continue;
		}
		if (got == 1) {
			size_t *o = &m->offs[n * 6];
			if (e) {
				kg_entity *d = &m->ents[n];
				*d = *e;
				d->tenant_id = NULL;
				o[0] = put(&m->a, e->id);
				o[1] = put(&m->a, e->entity_type);
				o[2] = put(&m->a, e->properties);
				o[3] = put(&m->a, e->source);
				d->embedding = NULL;
				d->embedding_dim = e->embedding ? e->embedding_dim : 0;
				m->emb[n] = m->a.nfloats;
				for (size_t k = 0; k < d->embedding_dim; k++) {
					if (kgio_arena_push_float(&m->a, e->embedding[k])) {
						rc = KG_ENOMEM;
						break;
					}
				}
			} else {
				kg_relation *d = &m->rels[n];
				*d = *r;
				d->tenant_id = NULL;
				o[0] = put(&m->a, r->id);
				o[1] = put(&m->a, r->relation_type);
				o[2] = put(&m->a, r->properties);
				o[3] = put(&m->a, r->source);
				o[4] = put(&m->a, r->source_id);
				o[5] = put(&m->a, r->target_id);
			}
			for (int k = 0; k < 6; k++)
				if (o[k] == (size_t)-2)
					rc = KG_ENOMEM;
			if (rc) {
				kgio_setmsg(m->res->errmsg, sizeof m->res->errmsg, "out of memory");
				break;
			}
			n++;
		}
		if (n && (n == m->batch || got == 0)) {
			rc = add_batch(m, dst, kind, n, skip_first, tenant);
			if (rc)
				break;
			skip_first = (m->o->flags & KG_MIGRATE_SKIP_EXISTING) != 0;
			done += n;
			last_id = kind == 1 ? m->ents[n - 1].id : m->rels[n - 1].id;
			if (m->o->resume_path) {
				rc = resume_write(m->o->resume_path, nsi, tenant, kind, done, last_id, m->res->errmsg,
				                  sizeof m->res->errmsg);
				if (rc)
					break;
			}
			uint64_t k = n;
			n = 0;
			kgio_arena_reset(&m->a);
			if (m->p.fn) {
				m->p.done += k;
				if (m->p.fn(m->p.done, m->p.total, m->p.phase, m->p.user)) {
					rc = KG_EIO;
					kgio_setmsg(m->res->errmsg, sizeof m->res->errmsg,
					            "interrupted by the progress callback%s", m->o->resume_path
					            ? ": run the migration again with the same resume file to continue" : "");
					break;
				}
			}
		}
		if (got == 0)
			break;
	}
	if (rc == KG_EIO && !m->res->errmsg[0])
		kgio_setmsg(m->res->errmsg, sizeof m->res->errmsg, "interrupted by the progress callback");
	free(last_copy);
	kg_entity_iter_free(ei);
	kg_relation_iter_free(ri);
	return rc;
}

int kg_migrate(kg_store *src, kg_store *dst, const kg_migrate_options *opts, kg_migrate_result *res)
{
	kg_migrate_result local;
	kg_migrate_options defaults = KG_MIGRATE_OPTIONS_INIT;
	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
	if (!opts)
		opts = &defaults;
	if (!src || !dst || src == dst) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "kg_migrate: two different stores are needed");
		return KG_EINVAL;
	}
	int all = !kg_tenant_id(src);
	if (all && kg_tenant_id(dst)) {
		kgio_setmsg(res->errmsg, sizeof res->errmsg,
		            "the source is a whole store (every tenant) but the destination is the view of tenant %s: "
		            "give the destination's base store, or migrate one tenant's view",
		            kg_tenant_id(dst));
		return KG_EINVAL;
	}
	mig m;
	memset(&m, 0, sizeof m);
	m.o = opts;
	m.res = res;
	m.batch = opts->batch_size ? opts->batch_size : 5000;
	m.p.fn = opts->progress;
	m.p.user = opts->progress_user;
	m.p.phase = "migrate";
	resume rs;
	memset(&rs, 0, sizeof rs);
	kgio_ns_list l;
	memset(&l, 0, sizeof l);
	int rc = 0;
	m.offs = malloc(m.batch * 6 * sizeof *m.offs);
	m.emb = malloc(m.batch * sizeof *m.emb);
	m.ents = calloc(m.batch, sizeof *m.ents);
	m.rels = calloc(m.batch, sizeof *m.rels);
	if (!m.offs || !m.emb || !m.ents || !m.rels) {
		rc = KG_ENOMEM;
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "out of memory (batch size %zu)", m.batch);
		goto out;
	}
	if (opts->resume_path && (rc = resume_read(opts->resume_path, &rs, res->errmsg, sizeof res->errmsg)))
		goto out;
	res->resumed = rs.valid;
	rc = kgio_namespaces(src, all, NULL, &l, res->errmsg, sizeof res->errmsg);
	if (rc)
		goto out;
	if (rs.valid) {
		const char *t = rs.ns < l.n ? l.tenants[rs.ns] : NULL;
		if (rs.ns >= l.n || strcmp(t ? t : "-", rs.tenant)) {
			rc = KG_EINVAL;
			kgio_setmsg(res->errmsg, sizeof res->errmsg,
			            "the source's tenants changed since the interrupted migration (resume file %s names "
			            "namespace %zu '%s'): delete the resume file and migrate again with "
			            "KG_MIGRATE_SKIP_EXISTING (--skip-existing)",
			            opts->resume_path, rs.ns, rs.tenant);
			goto out;
		}
	}
	m.p.total = total_of(&l);
	res->namespaces = l.n;
	for (size_t i = 0; i < l.n && !rc; i++) {
		if (rs.valid && i < rs.ns) {
			/* Done by the interrupted run. */
			kg_stats *st = NULL;
			if (kg_get_stats(l.handles[i], &st) == KG_OK) {
				res->skipped += st->entity_count + st->relation_count;
				m.p.done += st->entity_count + st->relation_count;
				kg_stats_free(st);
			}
			continue;
		}
		kg_store *d = dst, *view = NULL;
		if (all && l.tenants[i]) {
			rc = kg_tenant(dst, l.tenants[i], &view);
			if (rc) {
				kgio_setmsg(res->errmsg, sizeof res->errmsg, "destination tenant %s: %s", l.tenants[i],
				            kg_errmsg(dst));
				break;
			}
			d = view;
		}
		const resume *r = rs.valid && rs.ns == i ? &rs : NULL;
		if (!(r && r->phase == 2))
			rc = copy_phase(&m, l.handles[i], d, i, l.tenants[i], 1, r);
		else {
			kg_stats *st = NULL;
			if (kg_get_stats(l.handles[i], &st) == KG_OK) {
				res->skipped += st->entity_count;
				m.p.done += st->entity_count;
				kg_stats_free(st);
			}
		}
		if (!rc && !(opts->flags & KG_MIGRATE_NO_RELATIONS))
			rc = copy_phase(&m, l.handles[i], d, i, l.tenants[i], 2, r);
		kg_close(view);
	}
	if (rc)
		goto out;
	if (opts->progress && opts->progress(m.p.done, m.p.total, "migrate", opts->progress_user)) {
		rc = KG_EIO;
		kgio_setmsg(res->errmsg, sizeof res->errmsg, "interrupted by the progress callback");
		goto out;
	}
	if (!(opts->flags & KG_MIGRATE_NO_VERIFY) && !(opts->flags & KG_MIGRATE_NO_RELATIONS)) {
		kg_verify_options vo = KG_VERIFY_OPTIONS_INIT;
		vo.own_namespace_only = !all;
		vo.progress = opts->progress;
		vo.progress_user = opts->progress_user;
		rc = kg_verify(src, dst, &vo, &res->verify);
		if (rc) {
			kgio_setmsg(res->errmsg, sizeof res->errmsg, "verify: %s", res->verify.errmsg);
			goto out;
		}
		if (!res->verify.equal) {
			rc = KG_ECORRUPT;
			kgio_setmsg(res->errmsg, sizeof res->errmsg,
			            "verify: the destination differs from the source: %s (was the destination empty?)",
			            res->verify.errmsg);
			goto out;
		}
		res->verified = 1;
	}
	if (opts->resume_path)
		remove(opts->resume_path);
out:
	kgio_namespaces_free(&l);
	free(rs.last);
	kgio_arena_free(&m.a);
	free(m.offs);
	free(m.emb);
	free(m.ents);
	free(m.rels);
	return rc;
}
