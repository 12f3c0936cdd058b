/*
 * unit_sqlite_bulk.c - large bulk loads on SQLite drop the original's
 * secondary indexes and build them again before the commit (sqlite.c,
 * "Bulk loads"). What must hold: after a commit the file has exactly the
 * indexes it had, with the same definitions, and they answer queries; a
 * rollback, or a process killed in the middle, leaves the indexes and the
 * rows as they were; another connection never sees the table without them.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"

#define ROWS 60000 /* above the backend's DEFER_MIN_ROWS (50000) */
#define BATCH 10000

static char path[512], uri[600];

/* The file's index definitions, one string (plain SQL, its own connection). */
static char *index_sql(void)
{
	sqlite3 *db = NULL;
	char *out = calloc(1, 1);
	size_t len = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st = NULL;
		sqlite3_prepare_v2(db,
		                   "SELECT name || ':' || sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
		                   "AND tbl_name IN ('entities', 'relations') ORDER BY name",
		                   -1, &st, NULL);
		while (st && sqlite3_step(st) == SQLITE_ROW) {
			const char *t = (const char *)sqlite3_column_text(st, 0);
			size_t n = strlen(t);
			char *o = realloc(out, len + n + 2);
			if (!o)
				break;
			out = o;
			memcpy(out + len, t, n);
			len += n;
			out[len++] = '\n';
			out[len] = '\0';
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return out;
}

/* The file's schema cookie: DDL (the indexes dropped and built again)
 * moves it, plain inserts do not, so it tells that the load really took the
 * bulk path. */
static int schema_cookie(void)
{
	sqlite3 *db = NULL;
	int v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st = NULL;
		sqlite3_prepare_v2(db, "PRAGMA schema_version", -1, &st, NULL);
		if (st && sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

static int integrity_ok(void)
{
	sqlite3 *db = NULL;
	int ok = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
		sqlite3_stmt *st = NULL;
		sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
		ok = st && sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return ok;
}

/* Adds ROWS entities (type T0..T4) and ROWS relations (a chain) in BATCH
 * calls on txn; returns the number of failed calls. */
static int load(kg_store *txn)
{
	static kg_entity ents[BATCH];
	static kg_relation rels[BATCH];
	static char ids[BATCH][2][24];
	static const char *types[] = { "T0", "T1", "T2", "T3", "T4" };
	int bad = 0;
	for (int b = 0; b < ROWS / BATCH; b++) {
		for (int i = 0; i < BATCH; i++) {
			int n = b * BATCH + i;
			snprintf(ids[i][0], sizeof ids[i][0], "e%d", n);
			ents[i] = (kg_entity)KG_ENTITY_INIT;
			ents[i].id = ids[i][0];
			ents[i].entity_type = types[n % 5];
			ents[i].properties = "{\"k\": 1}";
		}
		bad += kg_add_entities(txn, ents, BATCH, 0, NULL) != KG_OK;
	}
	for (int b = 0; b < ROWS / BATCH; b++) {
		for (int i = 0; i < BATCH; i++) {
			int n = b * BATCH + i;
			snprintf(ids[i][0], sizeof ids[i][0], "e%d", n);
			snprintf(ids[i][1], sizeof ids[i][1], "e%d", (n + 1) % ROWS);
			rels[i] = (kg_relation)KG_RELATION_INIT;
			rels[i].id = ids[i][0]; /* relation ids live apart from entity ids */
			rels[i].relation_type = "NEXT";
			rels[i].source_id = ids[i][0];
			rels[i].target_id = ids[i][1];
		}
		bad += kg_add_relations(txn, rels, BATCH, 0, NULL) != KG_OK;
	}
	return bad;
}

static void test_commit_keeps_indexes(void)
{
	th_remove_sqlite(path);
	kg_store *s = NULL, *txn = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	char *before = index_sql();
	int cookie = schema_cookie();
	CHECK(strstr(before, "idx_") != NULL);
	CHECK_OK(s, kg_begin(s, &txn));
	CHECK(load(txn) == 0);
	/* Another connection still sees the committed file, indexes and all. */
	char *during = index_sql();
	CHECK(!strcmp(before, during));
	CHECK_OK(s, kg_commit(txn));
	char *after = index_sql();
	CHECK(!strcmp(before, after));
	CHECK(schema_cookie() > cookie); /* the indexes were dropped and built again */
	CHECK(integrity_ok());
	kg_stats *st = NULL;
	CHECK_OK(s, kg_get_stats(s, &st));
	CHECK(st && st->entity_count == ROWS && st->relation_count == ROWS && st->n_entity_types == 5);
	kg_stats_free(st);
	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_list_entities(s, "T3", 2, 1, &l));
	CHECK(l && l->count == 2 && !strcmp(l->items[0]->id, "e8") && !strcmp(l->items[1]->id, "e13"));
	kg_entity_list_free(l);
	kg_relation_list *rl = NULL;
	CHECK_OK(s, kg_relations_of(s, "e100", NULL, KG_IN, &rl));
	CHECK(rl && rl->count == 1 && !strcmp(rl->items[0]->source_id, "e99"));
	kg_relation_list_free(rl);
	free(before);
	free(during);
	free(after);
	kg_close(s);
}

static void test_rollback_keeps_indexes(void)
{
	th_remove_sqlite(path);
	kg_store *s = NULL, *txn = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	char *before = index_sql();
	int cookie = schema_cookie();
	CHECK_OK(s, kg_begin(s, &txn));
	CHECK(load(txn) == 0);
	CHECK_OK(s, kg_rollback(txn));
	char *after = index_sql();
	CHECK(!strcmp(before, after));
	CHECK(schema_cookie() == cookie); /* the drops went with the rollback */
	kg_stats *st = NULL;
	CHECK_OK(s, kg_get_stats(s, &st));
	CHECK(st && st->entity_count == 0 && st->relation_count == 0);
	kg_stats_free(st);
	/* The same load again, committed: nothing of the first one is in the way. */
	CHECK_OK(s, kg_begin(s, &txn));
	CHECK(load(txn) == 0);
	CHECK_OK(s, kg_commit(txn));
	char *again = index_sql();
	CHECK(!strcmp(before, again));
	free(before);
	free(after);
	free(again);
	kg_close(s);
}

/* A writer killed after the indexes were dropped, before the commit. */
static void test_killed_mid_load(void)
{
	th_remove_sqlite(path);
	kg_store *s = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	char *before = index_sql();
	kg_close(s);
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		kg_store *cs = NULL, *txn = NULL;
		if (kg_open(uri, &cs) != KG_OK || kg_begin(cs, &txn) != KG_OK || load(txn) != 0)
			_exit(2);
		if (write(fds[1], "x", 1) != 1)
			_exit(3);
		pause(); /* killed here, the transaction open */
		_exit(0);
	}
	char x = 0;
	close(fds[1]);
	CHECK(read(fds[0], &x, 1) == 1 && x == 'x');
	close(fds[0]);
	kill(pid, SIGKILL);
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status));
	CHECK(integrity_ok());
	char *after = index_sql();
	CHECK(!strcmp(before, after));
	CHECK_OK(s, kg_open(uri, &s));
	kg_stats *st = NULL;
	CHECK_OK(s, kg_get_stats(s, &st));
	CHECK(st && st->entity_count == 0);
	kg_stats_free(st);
	kg_close(s);
	free(before);
	free(after);
}

/* A batch into an empty tenant skips the per-row id lookups: repeats in
 * the batch must still be refused (or skipped with KG_BULK_SKIP_EXISTING),
 * in the global namespace too, where the original's key lets NULL-tenant
 * duplicates in. */
static void test_empty_tenant_repeats(void)
{
	th_remove_sqlite(path);
	kg_store *s = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	enum { N = 200 };
	static kg_entity ents[N];
	static char ids[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof ids[i], "r%d", i % (N / 2)); /* every id twice */
		ents[i] = (kg_entity)KG_ENTITY_INIT;
		ents[i].id = ids[i];
		ents[i].entity_type = "T";
	}
	size_t added = 0;
	int cookie = schema_cookie();
	CHECK(kg_add_entities(s, ents, N, 0, &added) == KG_EEXISTS && added == 0);
	CHECK_OK(s, kg_add_entities(s, ents, N, KG_BULK_SKIP_EXISTING, &added));
	CHECK(added == N / 2);
	kg_stats *st = NULL;
	CHECK_OK(s, kg_get_stats(s, &st));
	CHECK(st && st->entity_count == N / 2);
	kg_stats_free(st);
	CHECK(schema_cookie() == cookie); /* a small load keeps its indexes up to date */
	/* Not empty any more: the lookups are back, and refuse the same ids. */
	CHECK(kg_add_entities(s, ents, N / 2, 0, &added) == KG_EEXISTS);
	kg_close(s);
}

int main(void)
{
	snprintf(path, sizeof path, "%s/unit_sqlite_bulk.db", getenv("TMPDIR") ? getenv("TMPDIR") : ".");
	snprintf(uri, sizeof uri, "sqlite:%s", path);
	RUN(test_commit_keeps_indexes);
	RUN(test_rollback_keeps_indexes);
	RUN(test_killed_mid_load);
	RUN(test_empty_tenant_repeats);
	th_remove_sqlite(path);
	return th_summary("unit_sqlite_bulk");
}
