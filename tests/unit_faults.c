/*
 * unit_faults.c - what kgstore does when an allocation or a write fails.
 *
 * The program is linked with -Wl,--wrap for malloc, calloc, realloc,
 * strdup, strndup, fwrite and gzwrite (tests/CMakeLists.txt), so that the
 * library's own calls to them come here first; the library itself has no
 * hook and no state for it (its shared dependencies, SQLite, libpq,
 * jansson, are not wrapped: their own failures are theirs to test). A
 * sweep runs an operation again and again, failing its first allocation
 * (or write), then its second, and so on until it runs through without
 * reaching the failure. Each time the operation must either succeed with
 * the result a clean run gives, or fail with an error code and a message
 * and leave the store exactly as it was (state.h compares every field);
 * after a failure the store must still work (the operation, run again,
 * succeeds). ASan and valgrind runs of this program check that nothing
 * leaks on the way out of a failure.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/io.h"
#include "state.h"

/* ------------------------------------------------------------------ */
/* The wrappers                                                          */
/* ------------------------------------------------------------------ */

static atomic_long alloc_left = -1; /* allocations to let through; -1: never fail */
static atomic_long write_left = -1; /* writes to let through; -1: never fail */
static atomic_long hits;            /* failures injected */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __real_gzwrite(gzFile f, voidpc buf, unsigned len);

/* 1 when this call is the one to fail (each armed counter fails once). */
static int fail_now(atomic_long *left)
{
	if (atomic_load(left) < 0)
		return 0;
	if (atomic_fetch_sub(left, 1) == 0) {
		atomic_fetch_add(&hits, 1);
		return 1;
	}
	return 0;
}

void *__wrap_malloc(size_t n) { return fail_now(&alloc_left) ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now(&alloc_left) ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_now(&alloc_left) ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_now(&alloc_left) ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_now(&alloc_left) ? NULL : __real_strndup(s, n); }

size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	if (fail_now(&write_left)) {
		errno = ENOSPC;
		return 0;
	}
	return __real_fwrite(p, size, n, f);
}

int __wrap_gzwrite(gzFile f, voidpc buf, unsigned len)
{
	if (fail_now(&write_left))
		return 0;
	return __real_gzwrite(f, buf, len);
}

static void arm(long allocs, long writes)
{
	atomic_store(&hits, 0);
	atomic_store(&alloc_left, allocs);
	atomic_store(&write_left, writes);
}

/* Disarms; returns how many failures were injected. */
static long disarm(void)
{
	atomic_store(&alloc_left, -1);
	atomic_store(&write_left, -1);
	return atomic_load(&hits);
}

/* ------------------------------------------------------------------ */
/* Stores and their state                                               */
/* ------------------------------------------------------------------ */

static const char *g_uri;
static char g_file[300];

static kg_store *open_fresh(void)
{
	kg_store *s = NULL;
	if (!strncmp(g_uri, "sqlite:", 7) && strcmp(g_uri, "sqlite::memory:") != 0)
		th_remove_sqlite(g_file);
	if (kg_open(g_uri, &s) != 0) {
		CHECK_FAIL("open %s: %s", g_uri, s ? kg_errmsg(s) : "?");
		kg_close(s);
		return NULL;
	}
	/* A server's store is emptied instead (the global namespace and "ft"). */
	kg_store *t = NULL;
	if (kg_clear(s) != 0 || kg_tenant(s, "ft", &t) != 0 || kg_clear(t) != 0)
		CHECK_FAIL("clearing %s: %s", g_uri, kg_errmsg(t ? t : s));
	kg_close(t);
	return s;
}

/* The global namespace and tenant "ft", as one text. */
static char *state_of(kg_store *s)
{
	kg_store *t = NULL;
	char *a = ns_state(s), *b = NULL, *all = NULL;
	if (kg_tenant(s, "ft", &t) == 0)
		b = ns_state(t);
	kg_close(t);
	if (a && b && (all = malloc(strlen(a) + strlen(b) + 16)))
		sprintf(all, "%s-- ft --\n%s", a, b);
	free(a);
	free(b);
	return all;
}

/* Records with fixed timestamps, so that two runs give the same state. */
#define T0 1700000000000000

static kg_entity ent(const char *id, const char *type, const char *props)
{
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = type;
	e.properties = props;
	e.created_at = e.updated_at = T0;
	return e;
}

static kg_relation rel(const char *id, const char *type, const char *src, const char *dst)
{
	kg_relation r = KG_RELATION_INIT;
	r.id = id;
	r.relation_type = type;
	r.source_id = src;
	r.target_id = dst;
	r.created_at = r.updated_at = T0;
	return r;
}

static const float emb3[3] = { 0.5f, -1, 2 };

/* The starting point: a small graph in the global namespace and in "ft". */
static int build(kg_store *s)
{
	kg_store *t = NULL;
	int rc = kg_tenant(s, "ft", &t);
	kg_store *ns[2] = { s, t };
	for (int n = 0; n < 2 && rc == 0; n++) {
		kg_entity e[4] = { ent("a", "P", "{\"name\":\"apple fox\"}"), ent("b", "P", "{\"name\":\"banana\"}"),
			               ent("c", "Q", "{\"tags\":[\"x\",\"fox\"]}"), ent("d", "Q", "{}") };
		e[0].embedding = emb3;
		e[0].embedding_dim = 3;
		e[0].source = "src";
		e[2].embedding = emb3;
		e[2].embedding_dim = 3;
		kg_relation r[4] = { rel("ab", "R", "a", "b"), rel("bc", "R", "b", "c"), rel("cd", "S", "c", "d"),
			                 rel("aa", "R", "a", "a") };
		r[0].source = "rs";
		r[1].weight = 0.25;
		rc = kg_add_entities(ns[n], e, 4, 0, NULL);
		if (!rc)
			rc = kg_add_relations(ns[n], r, 4, 0, NULL);
	}
	kg_close(t);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The sweep                                                             */
/* ------------------------------------------------------------------ */

typedef int (*op_fn)(kg_store *s);

static long total_faults;

enum {
	FAIL_WRITES = 1, /* fail writes to files, not allocations */
	OWN_MESSAGE = 2, /* the operation checks its error message itself */
};

/*
 * Runs `op` on a freshly built store, failing its k-th allocation (or
 * write) for k = 0, 1, ... until it runs through without reaching the
 * failure.
 */
static void sweep(const char *what, op_fn op, unsigned flags)
{
	int writes = flags & FAIL_WRITES;
	th_current = what;
	kg_store *s = open_fresh();
	if (!s)
		return;
	CHECK_OK(s, build(s));
	int rc = op(s);
	CHECK_MSG(rc == 0, "%s without faults: %d %s", what, rc, kg_errmsg(s));
	char *want = state_of(s);
	kg_close(s);
	long failures = 0;
	for (long k = 0; k < 20000; k++) {
		if (!(s = open_fresh()))
			break;
		CHECK_OK(s, build(s));
		char *before = state_of(s);
		arm(writes ? -1 : k, writes ? k : -1);
		rc = op(s);
		long hit = disarm();
		char *after = state_of(s);
		if (!hit) { /* ran through: done */
			CHECK_MSG(rc == 0 && state_same(after, want), "%s, %ld faults in: %d %s", what, k, rc, kg_errmsg(s));
			free(before);
			free(after);
			kg_close(s);
			break;
		}
		failures++;
		if (rc == 0) {
			CHECK_MSG(state_same(after, want), "%s, fault %ld: succeeded with another result", what, k);
		} else {
			CHECK_MSG(rc < 0 && ((flags & OWN_MESSAGE) || kg_errmsg(s)[0]), "%s, fault %ld: %d with no message",
			          what, k, rc);
			CHECK_MSG(state_same(after, before), "%s, fault %ld (%d: %s): the store changed", what, k, rc,
			          kg_errmsg(s));
			/* Still usable: the operation goes through now. */
			rc = op(s);
			char *again = state_of(s);
			CHECK_MSG(rc == 0 && state_same(again, want), "%s, fault %ld: the store does not work after it: %d %s",
			          what, k, rc, kg_errmsg(s));
			free(again);
		}
		free(before);
		free(after);
		kg_close(s);
	}
	total_faults += failures; /* an operation may allocate nothing (a delete in memory) */
	fprintf(stderr, "   %-36s %4ld faults\n", what, failures);
	free(want);
	th_current = "";
}

/* ---- writes: each one call, which does all or nothing ---- */

static int op_add_entity(kg_store *s)
{
	kg_entity e = ent("n", "New", "{\"k\":[1,\"two\"]}");
	e.embedding = emb3;
	e.embedding_dim = 3;
	e.source = "new";
	return kg_add_entity(s, &e);
}

static int op_add_relation(kg_store *s)
{
	kg_relation r = rel("rn", "NEW", "d", "a");
	r.properties = "{\"w\":1}";
	r.source = "new";
	return kg_add_relation(s, &r);
}

static int op_bulk_entities(kg_store *s)
{
	char ids[12][8];
	kg_entity e[12];
	for (int i = 0; i < 12; i++) {
		snprintf(ids[i], sizeof ids[i], "m%d", i);
		e[i] = ent(ids[i], i % 2 ? "M" : "N", "{\"i\":\"many\"}");
	}
	e[3].id = "a"; /* skipped: already there */
	size_t added = 0;
	return kg_add_entities(s, e, 12, KG_BULK_SKIP_EXISTING, &added);
}

static int op_bulk_relations(kg_store *s)
{
	static const char *const ends[] = { "a", "b", "c", "d" };
	char rids[12][8];
	kg_relation r[12];
	for (int i = 0; i < 12; i++) {
		snprintf(rids[i], sizeof rids[i], "rm%d", i);
		r[i] = rel(rids[i], "M", ends[i % 4], ends[(i * 3 + 1) % 4]);
	}
	size_t added = 0;
	return kg_add_relations(s, r, 12, 0, &added);
}

static int op_update_entity(kg_store *s)
{
	kg_entity e = ent("a", "Changed", "{\"name\":\"changed\"}");
	return kg_update_entity(s, &e);
}

static int op_update_relation(kg_store *s)
{
	kg_relation r = rel("bc", "CHANGED", "c", "a");
	r.weight = 0.75;
	return kg_update_relation(s, &r);
}

static int op_upsert_entity(kg_store *s)
{
	kg_entity e = ent("b", "Up", "{}");
	return kg_upsert_entity(s, &e);
}

static int op_upsert_relation(kg_store *s)
{
	kg_relation r = rel("ab", "UP", "b", "a");
	return kg_upsert_relation(s, &r);
}

static int op_delete_entity(kg_store *s) { return kg_delete_entity(s, "b"); }
static int op_delete_relation(kg_store *s) { return kg_delete_relation(s, "cd"); }
static int op_clear(kg_store *s) { return kg_clear(s); }

static int op_tenant_write(kg_store *s)
{
	kg_store *t = NULL;
	int rc = kg_tenant(s, "ft", &t);
	if (!rc && (rc = kg_delete_entity(t, "c")) != 0)
		CHECK_MSG(kg_errmsg(t)[0], "a failed delete in a tenant says nothing");
	kg_close(t);
	return rc;
}

/* A transaction: begin, writes in two namespaces, commit; on any failure
 * rolled back, so the store is as it was. */
static int op_transaction(kg_store *s)
{
	kg_store *t = NULL, *v = NULL, *failed = NULL;
	int rc = kg_begin(s, &t);
	if (rc)
		return rc;
	if ((rc = op_add_entity(t)) || (rc = op_update_relation(t)) || (rc = op_bulk_entities(t)))
		failed = t;
	else if ((rc = kg_tenant(t, "ft", &v)))
		failed = t;
	else if ((rc = op_delete_entity(v)) || (rc = op_add_relation(v)))
		failed = v;
	if (failed)
		CHECK_MSG(kg_errmsg(failed)[0], "a failed call in a transaction says nothing");
	kg_close(v);
	if (rc) {
		kg_rollback(t);
		return rc;
	}
	rc = kg_commit(t);
	if (rc)
		CHECK_MSG(kg_errmsg(s)[0], "a failed commit says nothing");
	return rc;
}

/* A rolled-back transaction leaves the store as it was, even when calls
 * in it fail on the way. */
static int op_rollback(kg_store *s)
{
	kg_store *t = NULL;
	int rc = kg_begin(s, &t);
	if (rc)
		return rc;
	op_add_entity(t);
	op_update_entity(t);
	op_update_relation(t);
	op_delete_entity(t);
	op_bulk_relations(t);
	kg_rollback(t);
	return 0;
}

/* ---- reads: they change nothing, fail cleanly or answer ---- */

static int op_reads(kg_store *s)
{
	kg_path_list *pl = NULL;
	kg_entity_list *l = NULL;
	kg_relation_list *rl = NULL;
	kg_subgraph *g = NULL;
	kg_stats *st = NULL;
	int rc = kg_traverse(s, "a", NULL, 4, 0, &pl);
	kg_path_list_free(pl);
	pl = NULL;
	if (!rc)
		rc = kg_find_paths(s, "a", "d", 4, 0, &pl);
	kg_path_list_free(pl);
	const char *ids[] = { "a", "c", "zz" };
	if (!rc)
		rc = kg_subgraph_get(s, ids, 3, &g);
	kg_subgraph_free(g);
	if (!rc)
		rc = kg_neighbors(s, "b", NULL, KG_BOTH, &l);
	kg_entity_list_free(l);
	l = NULL;
	if (!rc)
		rc = kg_relations_of(s, "a", NULL, KG_BOTH, &rl);
	kg_relation_list_free(rl);
	if (!rc)
		rc = kg_get_entities(s, ids, 3, &l);
	kg_entity_list_free(l);
	l = NULL;
	if (!rc)
		rc = kg_list_entities(s, "P", 0, 0, &l);
	kg_entity_list_free(l);
	l = NULL;
	if (!rc)
		rc = kg_get_stats(s, &st);
	kg_stats_free(st);
	for (int m = KG_TEXT_BM25; m <= KG_TEXT_LEVENSHTEIN && !rc; m++) {
		rc = kg_text_search(s, "fox apple", NULL, 5, 0.0, (kg_text_method)m, &l);
		kg_entity_list_free(l);
		l = NULL;
	}
	if (!rc)
		rc = kg_vector_search(s, emb3, 3, NULL, 5, 0.0, &l);
	kg_entity_list_free(l);
	l = NULL;
	if (!rc)
		rc = kg_lookup_by_property(s, "name", "\"banana\"", &l);
	kg_entity_list_free(l);
	char **tenants = NULL;
	size_t nt = 0;
	if (!rc)
		rc = kg_list_tenants(s, &tenants, &nt);
	free(tenants);
	return rc;
}

/* The reads a server answers with rows of several records. */
static int op_graph_reads(kg_store *s)
{
	kg_path_list *pl = NULL;
	kg_entity_list *l = NULL;
	int rc = kg_traverse(s, "a", NULL, 4, 0, &pl);
	kg_path_list_free(pl);
	pl = NULL;
	if (!rc)
		rc = kg_find_paths(s, "a", "d", 4, 0, &pl);
	kg_path_list_free(pl);
	if (!rc)
		rc = kg_list_entities(s, NULL, 0, 0, &l);
	kg_entity_list_free(l);
	return rc;
}

/* ---- export and import ---- */

static char g_dir[256];

/* Exports the store (every namespace) and imports the file into a new
 * memory store in one go; both must fail cleanly: no file left behind by
 * a failed export, nothing added by a failed import. */
static int op_export_import(kg_store *s)
{
	char path[512], tmp[600];
	snprintf(path, sizeof path, "%s/x.jsonl.gz", g_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(path);
	kg_export_options eo = KG_EXPORT_OPTIONS_INIT;
	eo.all_tenants = 1;
	kg_export_result er;
	int rc = kg_export(s, path, &eo, &er);
	if (rc) {
		CHECK_MSG(er.errmsg[0] != '\0', "a failed export (%d) says nothing", rc);
		CHECK_MSG(access(path, F_OK) != 0 && access(tmp, F_OK) != 0, "a failed export (%d: %s) left a file behind",
		          rc, er.errmsg);
		return rc;
	}
	kg_store *dst = NULL;
	int orc = kg_open("memory:", &dst); /* may fail under a fault: that is fine */
	if (orc) {
		kg_close(dst);
		return orc;
	}
	kg_import_result ir;
	kg_import_options io = KG_IMPORT_OPTIONS_INIT;
	io.batch_size = 3;
	rc = kg_import(dst, path, &io, &ir);
	long hit = disarm(); /* compare without faults */
	char *st = state_of(dst);
	if (rc) {
		CHECK_MSG(ir.errmsg[0] != '\0', "a failed import says nothing");
		CHECK_MSG(st && !strcmp(st, "stats 0 0 |\n-- ft --\nstats 0 0 |\n"), "a failed import left records: %s",
		          st ? st : "?");
	} else {
		char *want = state_of(s);
		CHECK_MSG(state_same(st, want), "the imported store differs");
		free(want);
	}
	free(st);
	if (hit) /* keep the sweep's count */
		atomic_store(&hits, hit);
	kg_close(dst);
	return rc;
}

/* ------------------------------------------------------------------ */

/* All the sweeps; `some` (a server, where every run opens connections and
 * takes a second): one of each kind of write, a transaction, graph reads. */
static void run_all(const char *uri, int some)
{
	g_uri = uri;
	fprintf(stderr, "== %s\n", uri);
	sweep("add entity", op_add_entity, 0);
	if (!some)
		sweep("add relation", op_add_relation, 0);
	if (!some)
		sweep("bulk add entities", op_bulk_entities, 0);
	sweep("bulk add relations", op_bulk_relations, 0);
	if (!some)
		sweep("update entity", op_update_entity, 0);
	sweep("update relation", op_update_relation, 0);
	if (!some)
		sweep("upsert entity", op_upsert_entity, 0);
	sweep("upsert relation", op_upsert_relation, 0);
	sweep("delete entity", op_delete_entity, 0);
	if (!some) {
		sweep("delete relation", op_delete_relation, 0);
		sweep("clear", op_clear, 0);
		sweep("tenant write", op_tenant_write, OWN_MESSAGE);
	}
	sweep("transaction", op_transaction, OWN_MESSAGE);
	if (!some)
		sweep("rollback", op_rollback, 0);
	if (!some)
		sweep("reads", op_reads, 0);
	else
		sweep("graph reads", op_graph_reads, 0);
	if (!some) {
		sweep("export and import", op_export_import, OWN_MESSAGE);
		sweep("export and import, failing writes", op_export_import, OWN_MESSAGE | FAIL_WRITES);
	}
	CHECK_MSG(total_faults > 0, "no fault was reached (is the program linked with --wrap?)");
	fprintf(stderr, "   %ld faults injected\n", total_faults);
	total_faults = 0;
}

int main(int argc, char **argv)
{
	snprintf(g_dir, sizeof g_dir, "/tmp/kg_faults_XXXXXX");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(g_file, sizeof g_file, "%s/faults.db", g_dir);
	char file_uri[320];
	snprintf(file_uri, sizeof file_uri, "sqlite:%s", g_file);
	if (argc > 1) {
		run_all(argv[1], 0);
	} else {
		run_all("memory:", 0);
		run_all("sqlite::memory:", 0);
		run_all(file_uri, 0);
		/* Under ctest, the PostgreSQL test server too. */
		const char *pg = getenv("KG_TEST_PG_URI");
		if (pg && *pg)
			run_all(pg, 1);
	}
	th_remove_sqlite(g_file);
	char path[600];
	snprintf(path, sizeof path, "%s/x.jsonl.gz", g_dir);
	unlink(path);
	rmdir(g_dir);
	return th_summary("unit_faults");
}
