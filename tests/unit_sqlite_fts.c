/*
 * unit_sqlite_fts.c - the SQLite backend's FTS5 text search gives exactly
 * the core's generic answer (same entities, same order, bit-identical
 * scores) for every method, with tenants, type filters, thresholds and k,
 * on random texts (case, digits, UTF-8, nested and escaped JSON strings):
 * after the first load, after updates, upserts, deletes, clears and adds
 * that reuse a rowid, inside a transaction and after its rollback, and
 * after another connection changed the entities with plain SQL (inserts,
 * in-place updates, a delete and insert that reuses the rowid, text that is
 * not JSON) - in the same session and in the next one. The generic answer
 * comes from a second handle on the same file whose text_search is NULL
 * (the core scans through the backend's iterator), and for
 * sqlite::memory: from the "generic:" store (memory backend, no optional
 * operations) fed the same writes.
 */
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/backend.h"

static char db[512];
static int round_no; /* keeps ids of repeated loads apart */

static unsigned long long rng = 20261125;
static unsigned next_rand(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng >> 33);
}

/* Words with case, digits, UTF-8 and JSON escapes (as they appear inside a
 * JSON string literal). */
static const char *const WORDS[] = {
	"cat",     "Cat",    "CAT",         "dog",        "feline",  "canine", "lion",       "tiger",
	"x1",      "2024",   "a",           "the",        "of",      "big",    "small",      "caf\\u00e9",
	"café",    "naïve",  "na\\u00efve", "zebra",      "yak",     "B52",    "hello-world", "snake_case",
	"it's",    "e.g.",   "\\\"quoted\\\"", "tab\\tsep", "Ünïcödé", "日本語", "x",          "xy",
};
#define N_WORDS (sizeof(WORDS) / sizeof(*WORDS))
static const char *const TYPES[] = { "Animal", "Place", "Thing" };
static const char *const QUERIES[] = {
	"cat",         "CAT dog",       "feline lion tiger", "cafe café", "naïve",  "the of a",    "x1 2024",
	"zebra zebra yak", "hello world", "snake_case",   "B52 b52",  "日本語",  "quoted tab", "nothingmatches",
	"Ünïcödé x",   "e g it s",      "big small big",     "Animal",    "e12",    "cat cat cat dog",
};
#define N_QUERIES (sizeof(QUERIES) / sizeof(*QUERIES))

static void words(char *out, size_t cap, unsigned n)
{
	size_t len = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < n && len + 40 < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? (next_rand() % 3 ? " " : ", ") : "",
		                        WORDS[next_rand() % N_WORDS]);
}

/* Random properties: strings, nested objects and arrays, numbers and
 * booleans (which are not text), keys (which are not text either). */
static void random_props(char *out, size_t cap)
{
	char a[400], b[400], d[200];
	words(a, sizeof(a), 1 + next_rand() % 8);
	words(b, sizeof(b), next_rand() % 4);
	words(d, sizeof(d), 1 + next_rand() % 2);
	switch (next_rand() % 4) {
	case 0:
		snprintf(out, cap, "{\"name\": \"%s\"}", a);
		break;
	case 1:
		snprintf(out, cap, "{\"name\": \"%s\", \"n\": %u, \"ok\": true, \"tags\": [\"%s\", 7, \"%s\"]}", a,
		         next_rand() % 100, b, d);
		break;
	case 2:
		snprintf(out, cap, "{\"lion\": {\"deep\": {\"deeper\": [\"%s\", {\"x\": \"%s\"}]}}, \"gloss\": \"%s\"}", a,
		         b, d);
		break;
	default:
		snprintf(out, cap, "{}");
		break;
	}
}

typedef struct pair {
	kg_store *fts, *gen;
	int shared; /* gen reads the same file: writes go to fts only */
	const char *name;
} pair;

static kg_store *tenant_of(kg_store *s, const char *tenant, kg_store **view)
{
	*view = NULL;
	if (!tenant)
		return s;
	if (kg_tenant(s, tenant, view) != KG_OK)
		return NULL;
	return *view;
}

/* A random entity written to both stores: added, or (upsert) replacing
 * the one with that id. */
static void write_random(pair *p, const char *tenant, const char *id, int upsert)
{
	char props[1500];
	random_props(props, sizeof(props));
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = TYPES[next_rand() % 3];
	e.properties = props;
	kg_store *v1, *v2;
	kg_store *a = tenant_of(p->fts, tenant, &v1);
	CHECK_OK(a, upsert ? kg_upsert_entity(a, &e) : kg_add_entity(a, &e));
	if (!p->shared) {
		kg_store *b = tenant_of(p->gen, tenant, &v2);
		CHECK_OK(b, upsert ? kg_upsert_entity(b, &e) : kg_add_entity(b, &e));
		kg_close(v2);
	}
	kg_close(v1);
}

static void add_random(pair *p, const char *tenant, const char *id) { write_random(p, tenant, id, 0); }
static void upsert_random(pair *p, const char *tenant, const char *id) { write_random(p, tenant, id, 1); }

static void delete_one(pair *p, const char *tenant, const char *id)
{
	kg_store *v1, *v2;
	kg_store *a = tenant_of(p->fts, tenant, &v1);
	CHECK_OK(a, kg_delete_entity(a, id));
	if (!p->shared) {
		kg_store *b = tenant_of(p->gen, tenant, &v2);
		CHECK_OK(b, kg_delete_entity(b, id));
		kg_close(v2);
	}
	kg_close(v1);
}

/* Both answers, entity by entity: same ids, same order, equal scores.
 * Adds the answer's length to *found. */
static int same_answer(kg_store *a, kg_store *b, const char *query, const char *type, size_t k, double threshold,
                       kg_text_method m, const char *where, size_t *found)
{
	kg_entity_list *la = NULL, *lb = NULL;
	int ra = kg_text_search(a, query, type, k, threshold, m, &la);
	int rb = kg_text_search(b, query, type, k, threshold, m, &lb);
	int ok = ra == rb;
	if (ok && ra == 0) {
		ok = la->count == lb->count;
		*found += la->count;
		for (size_t i = 0; ok && i < la->count; i++)
			ok = strcmp(la->items[i]->id, lb->items[i]->id) == 0 && la->scores[i] == lb->scores[i] &&
			     strcmp(la->items[i]->properties, lb->items[i]->properties) == 0 &&
			     strcmp(la->items[i]->entity_type, lb->items[i]->entity_type) == 0;
	}
	if (!ok) {
		fprintf(stderr, "MISMATCH %s: query '%s' type %s k %zu threshold %g method %d: rc %d vs %d\n", where, query,
		        type ? type : "-", k, threshold, (int)m, ra, rb);
		for (size_t i = 0; ra == 0 && i < la->count; i++)
			fprintf(stderr, "  fts     %s %.17g\n", la->items[i]->id, la->scores[i]);
		for (size_t i = 0; rb == 0 && i < lb->count; i++)
			fprintf(stderr, "  generic %s %.17g\n", lb->items[i]->id, lb->scores[i]);
	}
	kg_entity_list_free(la);
	kg_entity_list_free(lb);
	return ok;
}

/* Every query x method x type filter, k and threshold varying along, in a
 * tenant or the global namespace. Returns how many entities the answers
 * held (so a test can tell that it compared something). */
static size_t compare_all(pair *p, const char *tenant, const char *where)
{
	static const kg_text_method M[] = { KG_TEXT_BM25, KG_TEXT_JACCARD, KG_TEXT_COSINE, KG_TEXT_LEVENSHTEIN };
	static const char *const F[] = { NULL, "Animal", "Thing", "NoSuchType" };
	static const size_t K[] = { 3, 1000 };
	static const double T[] = { 0.0, 0.25 };
	kg_store *v1, *v2;
	kg_store *a = tenant_of(p->fts, tenant, &v1), *b = tenant_of(p->gen, tenant, &v2);
	size_t found = 0, mismatches = 0;
	for (size_t q = 0; q < N_QUERIES; q++)
		for (size_t m = 0; m < 4; m++)
			for (size_t f = 0; f < 4; f++) {
				/* Levenshtein scans on both sides; a few of its cases suffice. */
				if (m == 3 && f > 1)
					continue;
				if (!same_answer(a, b, QUERIES[q], F[f], K[(q + f + m) % 2], T[(q + f) % 2], M[m], where, &found))
					mismatches++;
			}
	CHECK(mismatches == 0);
	kg_close(v1);
	kg_close(v2);
	return found;
}

static void compare_everywhere(pair *p, const char *where)
{
	th_current = where;
	size_t n = compare_all(p, NULL, where) + compare_all(p, "t1", where) + compare_all(p, "t2", where);
	CHECK(n > 1000); /* the comparisons were about real results */
}

static void load(pair *p, int n)
{
	char id[64];
	round_no++;
	for (int i = 0; i < n; i++) {
		const char *tenant = i % 5 == 0 ? "t1" : i % 7 == 0 ? "t2" : NULL;
		/* Ids carry words too (e.g. "cat-12"). */
		if (round_no == 1)
			snprintf(id, sizeof(id), "%s-%d", i % 3 ? "e" : WORDS[next_rand() % 8], i);
		else
			snprintf(id, sizeof(id), "%s-%d-r%d", i % 3 ? "e" : WORDS[next_rand() % 8], i, round_no);
		add_random(p, tenant, id);
	}
	/* A bulk add as well (one call, many rows). */
	kg_entity ents[50];
	char ids[50][32], props[50][1500];
	for (int i = 0; i < 50; i++) {
		snprintf(ids[i], sizeof(ids[i]), "bulk-%d-r%d", i, round_no);
		random_props(props[i], sizeof(props[i]));
		ents[i] = (kg_entity)KG_ENTITY_INIT;
		ents[i].id = ids[i];
		ents[i].entity_type = TYPES[i % 3];
		ents[i].properties = props[i];
	}
	size_t added = 0;
	CHECK_OK(p->fts, kg_add_entities(p->fts, ents, 50, 0, &added));
	if (!p->shared)
		CHECK_OK(p->gen, kg_add_entities(p->gen, ents, 50, 0, &added));
}

/* Updates, upserts, deletes, re-adds, a clear of a tenant. */
static void churn(pair *p)
{
	char id[64];
	round_no++;
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof(id), "e-%d", 3 * (int)(next_rand() % 100) + 1);
		kg_entity *e = NULL;
		if (kg_get_entity(p->fts, id, &e) == 0) {
			kg_entity_free(e);
			if (i % 3 == 0)
				delete_one(p, NULL, id);
			else
				upsert_random(p, NULL, id);
		}
	}
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "new-%d-r%d", i, round_no);
		upsert_random(p, i % 4 ? NULL : "t1", id); /* upsert of absent ids: adds */
	}
	/* A search indexes everything so far; then the newest entity is
	 * deleted and another added: SQLite gives the new row the freed rowid,
	 * which is below the index's watermark. */
	kg_entity_list *l = NULL;
	CHECK_OK(p->fts, kg_text_search(p->fts, "cat", NULL, 5, 0.0, KG_TEXT_BM25, &l));
	kg_entity_list_free(l);
	snprintf(id, sizeof(id), "new-19-r%d", round_no);
	delete_one(p, NULL, id);
	snprintf(id, sizeof(id), "reused-rowid-r%d", round_no);
	add_random(p, NULL, id);
	kg_store *v1, *v2;
	kg_store *a = tenant_of(p->fts, "t2", &v1);
	CHECK_OK(a, kg_clear(a));
	if (!p->shared) {
		kg_store *b = tenant_of(p->gen, "t2", &v2);
		CHECK_OK(b, kg_clear(b));
		kg_close(v2);
	}
	kg_close(v1);
	for (int i = 0; i < 15; i++) {
		snprintf(id, sizeof(id), "t2-again-%d-r%d", i, round_no);
		add_random(p, "t2", id);
	}
}

/* Writes inside a transaction are searched with the index inside it, and
 * a rollback takes them (and their index entries) away. */
static void in_transaction(pair *p)
{
	th_current = "transaction";
	kg_store *tx = NULL;
	CHECK_OK(p->fts, kg_begin(p->fts, &tx));
	if (!tx)
		return;
	char id[64], props[1500];
	kg_entity e = KG_ENTITY_INIT;
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "tx-%d", i);
		snprintf(props, sizeof(props), "{\"name\": \"zebra yak transaction%d\"}", i);
		e.id = id;
		e.entity_type = "Animal";
		e.properties = props;
		CHECK_OK(tx, kg_add_entity(tx, &e));
	}
	e.id = "e-1";
	e.properties = "{\"name\": \"zebra zebra\"}";
	CHECK_OK(tx, kg_upsert_entity(tx, &e));
	kg_entity_list *l = NULL;
	CHECK_OK(tx, kg_text_search(tx, "transaction3", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	CHECK(l && l->count == 1 && strcmp(l->items[0]->id, "tx-3") == 0);
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(tx, kg_text_search(tx, "zebra", NULL, 1000, 0.0, KG_TEXT_JACCARD, &l));
	int seen = 0;
	for (size_t i = 0; l && i < l->count; i++)
		seen += strncmp(l->items[i]->id, "tx-", 3) == 0 || strcmp(l->items[i]->id, "e-1") == 0;
	CHECK(seen == 11);
	kg_entity_list_free(l);
	CHECK_OK(tx, kg_rollback(tx));
	l = NULL;
	CHECK_OK(p->fts, kg_text_search(p->fts, "transaction3", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
}

/* Another program writes the entities table with plain SQL: the index must
 * not answer from what it held before. */
static void foreign_writes(pair *p, sqlite3 *x, const char *where)
{
	th_current = where;
	char *err = NULL, sql[1024];
	round_no++;
	/* An in-place update that changes neither the count nor the rowids. */
	int rc = sqlite3_exec(x,
	                      "UPDATE entities SET properties = '{\"name\": \"foreignword yak\"}' WHERE rowid = "
	                      "(SELECT min(rowid) FROM entities WHERE tenant_id IS NULL);"
	                      "UPDATE entities SET entity_type = 'Thing', properties = '{\"gloss\": \"feline foreignword\"}' "
	                      "WHERE rowid = (SELECT min(rowid) + 7 FROM entities WHERE tenant_id IS NULL);",
	                      NULL, NULL, &err);
	CHECK(rc == SQLITE_OK);
	sqlite3_free(err);
	kg_entity_list *l = NULL;
	CHECK_OK(p->fts, kg_text_search(p->fts, "foreignword", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	CHECK(l && l->count >= 1);
	kg_entity_list_free(l);
	compare_everywhere(p, where);
	/* The newest row deleted and another inserted: it gets the same rowid,
	 * so count and max(rowid) are as before; plus rows the original could
	 * write: a tenant, text that is not JSON. */
	snprintf(sql, sizeof(sql),
	         "DELETE FROM entities WHERE rowid = (SELECT max(rowid) FROM entities);"
	         "INSERT INTO entities (id, tenant_id, entity_type, properties) VALUES "
	         "('sql-1-r%d', NULL, 'Animal', '{\"name\": \"sqlword%d zebra\"}');"
	         "INSERT INTO entities (id, tenant_id, entity_type, properties) VALUES "
	         "('sql-2-r%d', 't1', 'Animal', '{\"name\": \"sqlword%d cat\"}');"
	         "INSERT INTO entities (id, tenant_id, entity_type, properties) VALUES "
	         "('sql-3-r%d', NULL, 'Place', 'not json: cat zebra');",
	         round_no, round_no, round_no, round_no, round_no);
	rc = sqlite3_exec(x, sql, NULL, NULL, &err);
	CHECK(rc == SQLITE_OK);
	sqlite3_free(err);
	l = NULL;
	char word[32], want[32];
	snprintf(word, sizeof(word), "sqlword%d", round_no);
	snprintf(want, sizeof(want), "sql-1-r%d", round_no);
	CHECK_OK(p->fts, kg_text_search(p->fts, word, NULL, 10, 0.0, KG_TEXT_BM25, &l));
	CHECK(l && l->count == 1 && strcmp(l->items[0]->id, want) == 0);
	kg_entity_list_free(l);
	compare_everywhere(p, where);
}

/* The index's own tables hold what they should: every row indexed (the
 * watermark is the highest rowid) and the FTS5 table finds a word's rows.
 * Shows that the searches above went through the index. */
static void index_in_file(void)
{
	th_current = "index tables";
	sqlite3 *x = NULL;
	CHECK(sqlite3_open(db, &x) == SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK(sqlite3_prepare_v2(x, "SELECT (SELECT watermark FROM kgstore_fts_state), (SELECT max(rowid) FROM entities), "
	                            "(SELECT docs FROM kgstore_fts_state), (SELECT count(*) FROM entities), "
	                            "(SELECT sum(docs) FROM kgstore_fts_totals)",
	                         -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK(sqlite3_column_int64(st, 0) == sqlite3_column_int64(st, 1));
	CHECK(sqlite3_column_int64(st, 2) == sqlite3_column_int64(st, 3));
	CHECK(sqlite3_column_int64(st, 4) == sqlite3_column_int64(st, 3));
	sqlite3_finalize(st);
	CHECK(sqlite3_prepare_v2(x, "SELECT count(*) FROM kgstore_fts WHERE kgstore_fts MATCH '\"zebra\"'", -1, &st,
	                         NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0);
	sqlite3_finalize(st);
	/* The original's tables are as the original made them: no trigger. */
	CHECK(sqlite3_prepare_v2(x, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'", -1, &st, NULL) ==
	      SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 0);
	sqlite3_finalize(st);
	sqlite3_close(x);
}

static void threads(pair *p);

/* A second handle on the file whose text search is the core's scan. */
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
	b->text_search = NULL;
	return kg_store_from_backend(b, s);
}

static void test_file(void)
{
	char uri[600];
	snprintf(uri, sizeof(uri), "sqlite:%s", db);
	th_remove_sqlite(db);
	pair p = { .shared = 1, .name = "file" };
	CHECK_OK(NULL, kg_open(uri, &p.fts));
	CHECK_OK(NULL, open_generic(&p.gen));
	if (!p.fts || !p.gen)
		return;
	load(&p, 400);
	compare_everywhere(&p, "file: after load");
	index_in_file();
	churn(&p);
	compare_everywhere(&p, "file: after updates and deletes");
	in_transaction(&p);
	compare_everywhere(&p, "file: after a rolled-back transaction");
	/* More adds after the index exists: the next search indexes them. */
	load(&p, 60);
	compare_everywhere(&p, "file: after more adds");
	index_in_file();

	sqlite3 *x = NULL;
	CHECK(sqlite3_open(db, &x) == SQLITE_OK);
	sqlite3_busy_timeout(x, 5000);
	foreign_writes(&p, x, "file: plain SQL while open");
	kg_close(p.fts);
	kg_close(p.gen);

	/* Changes made while kgstore is not running, seen by the next opening. */
	char *err = NULL;
	CHECK(sqlite3_exec(x, "UPDATE entities SET properties = '{\"name\": \"closedword cat\"}' WHERE rowid = "
	                      "(SELECT min(rowid) + 3 FROM entities WHERE tenant_id IS NULL)",
	                   NULL, NULL, &err) == SQLITE_OK);
	sqlite3_free(err);
	/* Rowids are the writer's choice: one below every other. */
	CHECK(sqlite3_exec(x, "INSERT INTO entities (rowid, id, tenant_id, entity_type, properties) VALUES "
	                      "(-5, 'negative-rowid', NULL, 'Animal', '{\"name\": \"negword cat\"}')",
	                   NULL, NULL, &err) == SQLITE_OK);
	sqlite3_free(err);
	CHECK_OK(NULL, kg_open(uri, &p.fts));
	CHECK_OK(NULL, open_generic(&p.gen));
	if (!p.fts || !p.gen) {
		sqlite3_close(x);
		return;
	}
	kg_entity_list *l = NULL;
	CHECK_OK(p.fts, kg_text_search(p.fts, "closedword", NULL, 10, 0.0, KG_TEXT_COSINE, &l));
	CHECK(l && l->count == 1);
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(p.fts, kg_text_search(p.fts, "negword", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	CHECK(l && l->count == 1 && strcmp(l->items[0]->id, "negative-rowid") == 0);
	kg_entity_list_free(l);
	compare_everywhere(&p, "file: plain SQL while closed");
	foreign_writes(&p, x, "file: plain SQL after reopening");
	/* kgstore writes after a foreign write: the index is checked first. */
	churn(&p);
	compare_everywhere(&p, "file: kgstore writes after plain SQL");
	CHECK(sqlite3_exec(x, "UPDATE entities SET properties = '{\"name\": \"lastword\"}' WHERE id = 'e-4'", NULL, NULL,
	                   &err) == SQLITE_OK);
	sqlite3_free(err);
	upsert_random(&p, NULL, "e-4"); /* kgstore changes the row another program changed */
	compare_everywhere(&p, "file: kgstore update of a row changed by plain SQL");
	index_in_file();
	threads(&p);
	sqlite3_close(x);
	kg_close(p.fts);
	kg_close(p.gen);
}

/* Searches on several threads while another thread writes: every search
 * answers (no deadlock between the read snapshots and the writer checks),
 * and afterwards the answers are the generic ones again. */
typedef struct searcher {
	kg_store *s;
	int failures, answers;
} searcher;

static void *search_loop(void *arg)
{
	searcher *w = arg;
	for (int i = 0; i < 150; i++) {
		kg_entity_list *l = NULL;
		if (kg_text_search(w->s, QUERIES[i % N_QUERIES], i % 2 ? "Animal" : NULL, 5, 0.0,
		                   (kg_text_method)(i % 3), &l) != 0)
			w->failures++;
		else
			w->answers += l->count > 0;
		kg_entity_list_free(l);
	}
	return NULL;
}

static void threads(pair *p)
{
	th_current = "threads";
	searcher w[3];
	pthread_t t[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (searcher){ p->fts, 0, 0 };
		CHECK(pthread_create(&t[i], NULL, search_loop, &w[i]) == 0);
	}
	char id[64];
	for (int i = 0; i < 150; i++) {
		snprintf(id, sizeof(id), "thread-%d", i % 40);
		upsert_random(p, i % 3 ? NULL : "t1", id);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		CHECK(w[i].failures == 0);
		CHECK(w[i].answers > 0);
	}
	compare_everywhere(p, "file: after concurrent searches and writes");
}

/* generic: as in the conformance suite: the memory backend with every
 * optional operation removed. */
static int open_memory_generic(kg_store **s)
{
	kg_options o = KG_OPTIONS_INIT;
	o.backend = KG_BACKEND_MEMORY;
	kg_backend *b = NULL;
	char err[512];
	*s = NULL;
	int rc = kg_memory_backend_new(&o, &b, err, sizeof(err));
	if (rc < 0)
		return rc;
	b->neighbors = NULL;
	b->traverse = NULL;
	b->find_paths = NULL;
	b->subgraph = NULL;
	b->list_entities = NULL;
	b->vector_search = NULL;
	b->text_search = NULL;
	b->add_indexed_property = NULL;
	b->lookup_by_property = NULL;
	return kg_store_from_backend(b, s);
}

static void test_memory(void)
{
	pair p = { .shared = 0, .name = "memory" };
	CHECK_OK(NULL, kg_open("sqlite::memory:", &p.fts));
	CHECK_OK(NULL, open_memory_generic(&p.gen));
	if (!p.fts || !p.gen)
		return;
	load(&p, 300);
	compare_everywhere(&p, "memory: after load");
	churn(&p);
	compare_everywhere(&p, "memory: after updates and deletes");
	load(&p, 40);
	compare_everywhere(&p, "memory: after more adds");
	kg_close(p.fts);
	kg_close(p.gen);
}

/* A query without words is refused as the core refuses it. */
static void test_no_words(void)
{
	kg_store *s = NULL;
	CHECK_OK(NULL, kg_open("sqlite::memory:", &s));
	if (!s)
		return;
	kg_entity e = KG_ENTITY_INIT;
	e.id = "a";
	e.entity_type = "T";
	CHECK_OK(s, kg_add_entity(s, &e));
	kg_entity_list *l = NULL;
	CHECK_RC(s, kg_text_search(s, "  ?! ", NULL, 5, 0.0, KG_TEXT_BM25, &l), KG_EINVAL);
	CHECK(strstr(kg_errmsg(s), "no words") != NULL);
	kg_close(s);
}

int main(void)
{
	const char *dir = getenv("TMPDIR");
	snprintf(db, sizeof(db), "%s/unit_sqlite_fts_%d.db", dir ? dir : "/tmp", (int)getpid());
	RUN(test_no_words);
	RUN(test_memory);
	RUN(test_file);
	th_remove_sqlite(db);
	return th_summary("unit_sqlite_fts");
}
