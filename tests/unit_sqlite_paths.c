/*
 * unit_sqlite_paths.c - the SQLite backend's own find_paths gives the same
 * answer as the core's generic algorithm run over the same file through the
 * backend's required operations (same paths, same order, same scores) on random graphs with parallel edges, self-loops and cycles, in
 * the global namespace and in a tenant, and sees another process's writes
 * made between two searches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/backend.h"

static char db[512];

static unsigned long long rng = 12345;
static unsigned next_rand(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng >> 33);
}

/* A second handle on the same file whose find_paths is the core's generic
 * algorithm over the SQLite backend's required operations. */
static int open_generic(kg_store **s)
{
	kg_options o = KG_OPTIONS_INIT;
	o.backend = KG_BACKEND_SQLITE;
	o.path = db;
	kg_backend *b = NULL;
	char err[512];
	*s = NULL;
	int rc = kg_sqlite_backend_new(&o, &b, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		return rc;
	}
	b->find_paths = NULL;
	return kg_store_from_backend(b, s);
}

/* A random graph. */
static void fill(kg_store *a, int n, int m)
{
	char id[32], rid[32];
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "n%d", i);
		kg_entity e = KG_ENTITY_INIT;
		e.id = id;
		e.entity_type = "Node";
		CHECK_OK(a, kg_add_entity(a, &e));
	}
	for (int j = 0; j < m; j++) {
		char s[32], t[32];
		snprintf(s, sizeof(s), "n%u", next_rand() % (unsigned)n);
		/* Some self-loops and parallel edges on purpose. */
		if (j % 17 == 0)
			snprintf(t, sizeof(t), "%s", s);
		else
			snprintf(t, sizeof(t), "n%u", next_rand() % (unsigned)n);
		snprintf(rid, sizeof(rid), "r%d", j);
		kg_relation r = KG_RELATION_INIT;
		r.id = rid;
		r.relation_type = j % 2 ? "A" : "B";
		r.source_id = s;
		r.target_id = t;
		r.weight = (j % 11) / 10.0;
		CHECK_OK(a, kg_add_relation(a, &r));
		if (j % 13 == 0) { /* a parallel edge */
			snprintf(rid, sizeof(rid), "r%d-p", j);
			CHECK_OK(a, kg_add_relation(a, &r));
		}
	}
}

/* 1 if both path lists hold the same paths in the same order. */
static int same_paths(const kg_path_list *x, const kg_path_list *y)
{
	if (x->count != y->count)
		return 0;
	for (size_t p = 0; p < x->count; p++) {
		const kg_path *a = &x->items[p], *b = &y->items[p];
		if (a->n_nodes != b->n_nodes || a->score != b->score)
			return 0;
		for (size_t i = 0; i < a->n_nodes; i++)
			if (strcmp(a->nodes[i]->id, b->nodes[i]->id) != 0)
				return 0;
		for (size_t i = 0; i + 1 < a->n_nodes; i++)
			if (strcmp(a->edges[i]->id, b->edges[i]->id) != 0 || a->edges[i]->weight != b->edges[i]->weight)
				return 0;
	}
	return 1;
}

static void compare(kg_store *sq, kg_store *gen, int n)
{
	int differ = 0, found = 0;
	char s[32], t[32];
	for (int q = 0; q < 300; q++) {
		snprintf(s, sizeof(s), "n%u", next_rand() % (unsigned)n);
		snprintf(t, sizeof(t), "n%u", q % 25 == 0 ? 0 : next_rand() % (unsigned)n);
		int depth = 1 + q % 6;
		size_t max_paths = q % 3 ? 10 : 0;
		kg_path_list *a = NULL, *b = NULL;
		CHECK_OK(sq, kg_find_paths(sq, s, t, depth, max_paths, &a));
		CHECK_OK(gen, kg_find_paths(gen, s, t, depth, max_paths, &b));
		if (a && b) {
			found += a->count > 0;
			if (!same_paths(a, b) && differ++ < 3)
				fprintf(stderr, "find_paths %s -> %s depth %d: sqlite %zu paths, generic %zu\n", s, t, depth, a->count,
				        b->count);
		}
		kg_path_list_free(a);
		kg_path_list_free(b);
	}
	CHECK(differ == 0);
	CHECK(found > 20); /* the graph is dense enough that the comparison means something */
	kg_path_list *l = NULL;
	CHECK_RC(sq, kg_find_paths(sq, "n0", "missing", 3, 10, &l), KG_ENOTFOUND);
	CHECK_RC(sq, kg_find_paths(sq, "missing", "n0", 3, 10, &l), KG_ENOTFOUND);
}

static void test_same_as_generic(void)
{
	char uri[600];
	snprintf(uri, sizeof(uri), "sqlite:%s", db);
	th_remove_sqlite(db);
	kg_store *sq = NULL, *gen = NULL, *tsq = NULL, *tgen = NULL;
	CHECK_OK(sq, kg_open(uri, &sq));
	CHECK_OK(gen, open_generic(&gen));
	fill(sq, 60, 200);
	compare(sq, gen, 60);
	/* In a tenant, with other data in the global namespace. */
	CHECK_OK(sq, kg_tenant(sq, "t-1", &tsq));
	CHECK_OK(gen, kg_tenant(gen, "t-1", &tgen));
	fill(tsq, 40, 150);
	compare(tsq, tgen, 40);
	/* Inside a transaction, its own uncommitted writes included. */
	kg_store *txn = NULL;
	CHECK_OK(sq, kg_begin(sq, &txn));
	kg_relation r = KG_RELATION_INIT;
	r.id = "in-txn";
	r.relation_type = "A";
	r.source_id = "n1";
	r.target_id = "n2";
	CHECK_OK(txn, kg_add_relation(txn, &r));
	kg_path_list *l = NULL;
	CHECK_OK(txn, kg_find_paths(txn, "n1", "n2", 1, 0, &l));
	int seen = 0;
	for (size_t i = 0; l && i < l->count; i++)
		seen |= strcmp(l->items[i].edges[0]->id, "in-txn") == 0;
	CHECK(seen);
	kg_path_list_free(l);
	CHECK_OK(txn, kg_rollback(txn));
	kg_close(tsq);
	kg_close(tgen);
	kg_close(sq);
	kg_close(gen);
	th_remove_sqlite(db);
}

/* Another process adds an edge between two searches: the second sees it. */
static void test_other_process_writes(void)
{
	char uri[600];
	snprintf(uri, sizeof(uri), "sqlite:%s", db);
	th_remove_sqlite(db);
	kg_store *s = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	const char *ids[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		kg_entity e = KG_ENTITY_INIT;
		e.id = ids[i];
		e.entity_type = "Node";
		CHECK_OK(s, kg_add_entity(s, &e));
	}
	kg_relation r = KG_RELATION_INIT;
	r.id = "ab";
	r.relation_type = "X";
	r.source_id = "a";
	r.target_id = "b";
	CHECK_OK(s, kg_add_relation(s, &r));
	kg_path_list *l = NULL;
	CHECK_OK(s, kg_find_paths(s, "a", "c", 4, 10, &l));
	CHECK(l && l->count == 0);
	kg_path_list_free(l);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		kg_store *o = NULL;
		kg_relation bc = KG_RELATION_INIT;
		bc.id = "bc";
		bc.relation_type = "X";
		bc.source_id = "b";
		bc.target_id = "c";
		int rc = kg_open(uri, &o) == KG_OK && kg_add_relation(o, &bc) == KG_OK ? 0 : 1;
		kg_close(o);
		_exit(rc);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	l = NULL;
	CHECK_OK(s, kg_find_paths(s, "a", "c", 4, 10, &l));
	CHECK(l && l->count == 1 && l->items[0].n_nodes == 3);
	kg_path_list_free(l);
	kg_close(s);
	th_remove_sqlite(db);
}

int main(void)
{
	snprintf(db, sizeof(db), "unit_sqlite_paths_%d.db", (int)getpid());
	RUN(test_same_as_generic);
	RUN(test_other_process_writes);
	return th_summary("unit_sqlite_paths");
}
