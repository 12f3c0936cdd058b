/*
 * sqlite_crash.c - durability of the SQLite backend under SIGKILL.
 *
 * A child process bulk-loads batches into one file, each batch in one
 * transaction, and after each commit writes the batch number to a pipe. The
 * parent kills it with SIGKILL after a random delay, many times. After each
 * kill the file must open with kgstore, pass PRAGMA integrity_check, hold
 * every batch the child reported committed, hold each batch either whole or
 * not at all, and hold nothing past the one batch that may have committed
 * after the last report (killed between COMMIT and the pipe write).
 *
 * Batches take three shapes so that every write path is killed at some
 * point: a kg_begin transaction with bulk entity and relation adds; one
 * implicit-transaction kg_add_entities call; a kg_begin transaction of single
 * adds (each a savepoint) plus relations.
 *
 * Usage: sqlite_crash DB_PATH [KILLS [MAX_DELAY_MS [SEED [KILLS_PER_FILE]]]]
 *   defaults 100 kills, 40 ms, seed from the clock (printed, to replay),
 *   the file is started over every 20 kills to keep checks fast.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"

#define BATCH_E 120 /* entities of a full batch */
#define BATCH_R 100 /* relations of shapes 0 and 2 */
#define MAX_BATCHES 100000

static const char *db_path;
/* Extra URI options for the writer (KG_CRASH_WRITER_OPTIONS, e.g.
 * "journal_mode=OFF" to see the test catch an unsafe setting). */
static const char *writer_opts;

/* What batch k holds when it is complete. */
static int expect_entities(long k) { return k % 3 == 2 ? BATCH_E / 2 : BATCH_E; }
static int expect_relations(long k) { return k % 3 == 1 ? 0 : BATCH_R; }

static void die_child(kg_store *s, const char *what, long k)
{
	fprintf(stderr, "child: batch %ld: %s failed: %s\n", k, what, s ? kg_errmsg(s) : "");
	_exit(3);
}

/* Writes batch k in one transaction; returns only on success. */
static void write_batch(kg_store *s, long k)
{
	int ne = expect_entities(k), nr = expect_relations(k);
	static char ids[BATCH_E][48], props[BATCH_E][160], rids[BATCH_R][48];
	static float emb[BATCH_E][8];
	kg_entity ents[BATCH_E];
	kg_relation rels[BATCH_R];
	for (int i = 0; i < ne; i++) {
		snprintf(ids[i], sizeof(ids[i]), "b%ld-e%d", k, i);
		/* Padding makes rows big enough that a batch spans many pages. */
		snprintf(props[i], sizeof(props[i]), "{\"batch\": %ld, \"i\": %d, \"pad\": \"%0*d\"}", k, i, 60 + i % 40, i);
		for (int d = 0; d < 8; d++)
			emb[i][d] = (float)(k * 1000 + i * 10 + d);
		kg_entity e = KG_ENTITY_INIT;
		e.id = ids[i];
		e.entity_type = i % 2 ? "Even" : "Odd";
		e.properties = props[i];
		e.embedding = emb[i];
		e.embedding_dim = 8;
		e.source = "crash-test";
		ents[i] = e;
	}
	for (int i = 0; i < nr; i++) {
		snprintf(rids[i], sizeof(rids[i]), "b%ld-r%d", k, i);
		kg_relation r = KG_RELATION_INIT;
		r.id = rids[i];
		r.relation_type = "NEXT";
		r.source_id = ids[i % ne];
		r.target_id = ids[(i + 1) % ne];
		r.properties = props[i % ne];
		r.weight = (double)(i % 10) / 10.0;
		rels[i] = r;
	}
	if (k % 3 == 1) {
		if (kg_add_entities(s, ents, (size_t)ne, 0, NULL) != KG_OK)
			die_child(s, "kg_add_entities", k);
		return;
	}
	kg_store *t = NULL;
	if (kg_begin(s, &t) != KG_OK)
		die_child(s, "kg_begin", k);
	if (k % 3 == 0) {
		if (kg_add_entities(t, ents, (size_t)ne, 0, NULL) != KG_OK)
			die_child(t, "kg_add_entities in a transaction", k);
	} else {
		for (int i = 0; i < ne; i++)
			if (kg_add_entity(t, &ents[i]) != KG_OK)
				die_child(t, "kg_add_entity in a transaction", k);
	}
	if (kg_add_relations(t, rels, (size_t)nr, 0, NULL) != KG_OK)
		die_child(t, "kg_add_relations in a transaction", k);
	if (kg_commit(t) != KG_OK)
		die_child(s, "kg_commit", k);
}

static void child(long start, int fd)
{
	char uri[1400];
	snprintf(uri, sizeof(uri), "sqlite:%s%s%s", db_path, writer_opts ? "?" : "", writer_opts ? writer_opts : "");
	kg_store *s = NULL;
	if (kg_open(uri, &s) != KG_OK)
		die_child(s, "kg_open", start);
	for (long k = start; k < MAX_BATCHES; k++) {
		write_batch(s, k);
		/* The report follows the commit: a 4-byte write to a pipe is atomic. */
		int32_t v = (int32_t)k;
		if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			_exit(4);
	}
	_exit(0);
}

/* One SQL answer as an integer (-1 on error). */
static long long sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Per-batch row counts of a table: counts[k], for k < MAX_BATCHES. Returns
 * the highest batch present, or -1 if none, -2 on error. */
static long batch_counts(sqlite3 *db, const char *sql, int *counts)
{
	sqlite3_stmt *st = NULL;
	long hi = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
		return -2;
	}
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		long k = (long)sqlite3_column_int64(st, 0);
		if (k < 0 || k >= MAX_BATCHES) {
			hi = -2;
			break;
		}
		counts[k] = sqlite3_column_int(st, 1);
		if (k > hi)
			hi = k;
	}
	if (src != SQLITE_DONE && src != SQLITE_ROW)
		hi = -2;
	sqlite3_finalize(st);
	return hi;
}

/* Checks the file after a kill; returns the highest complete batch (the next
 * child starts after it), or -2 when a check failed. */
static long verify(long start, long reported, int kill_no)
{
	char uri[1100];
	snprintf(uri, sizeof(uri), "sqlite:%s", db_path);
	kg_store *s = NULL;
	/* kgstore opens first: it is what recovers the WAL for a user. */
	CHECK_OK(s, kg_open(uri, &s));
	if (!s)
		return -2;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		CHECK(!"raw sqlite3 open");
		sqlite3_close(db);
		kg_close(s);
		return -2;
	}
	sqlite3_stmt *st = NULL;
	const char *ic = "?";
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		ic = (const char *)sqlite3_column_text(st, 0);
	if (!ic || strcmp(ic, "ok") != 0)
		fprintf(stderr, "kill %d: integrity_check: %s\n", kill_no, ic ? ic : "(null)");
	CHECK(ic && strcmp(ic, "ok") == 0);
	sqlite3_finalize(st);

	static int ecount[MAX_BATCHES], rcount[MAX_BATCHES], scount[MAX_BATCHES];
	memset(ecount, 0, sizeof(ecount));
	memset(rcount, 0, sizeof(rcount));
	memset(scount, 0, sizeof(scount));
	long ehi = batch_counts(db, "SELECT json_extract(properties, '$.batch'), count(*) FROM entities "
	                            "WHERE tenant_id IS NULL GROUP BY 1", ecount);
	long rhi = batch_counts(db, "SELECT CAST(substr(id, 2, instr(id, '-') - 2) AS INTEGER), count(*) "
	                            "FROM relations WHERE tenant_id IS NULL GROUP BY 1", rcount);
	long shi = batch_counts(db, "SELECT CAST(substr(id, 2, instr(id, '-') - 2) AS INTEGER), count(*) "
	                            "FROM kgstore_sources WHERE kind = 0 GROUP BY 1", scount);
	CHECK(ehi >= -1 && rhi >= -1 && shi >= -1);
	long hi = ehi;
	int bad = 0;
	for (long k = 0; ehi >= -1 && k <= ehi + 1 && k < MAX_BATCHES; k++) {
		int present = ecount[k] > 0;
		int whole = ecount[k] == expect_entities(k) && rcount[k] == expect_relations(k) &&
		            scount[k] == expect_entities(k);
		int none = ecount[k] == 0 && rcount[k] == 0 && scount[k] == 0;
		/* Every batch up to the last report is there; at most one more. */
		int ok = k <= reported ? whole : k == reported + 1 ? (whole || none) : none;
		if (k < start && !whole)
			ok = 0;
		if (!ok && bad++ < 5)
			fprintf(stderr, "kill %d: batch %ld (reported up to %ld): %d entities, %d relations, %d sources; "
			                "expected %s\n",
			        kill_no, k, reported, ecount[k], rcount[k], scount[k],
			        k <= reported + 1 ? "all or (last only) none" : "none");
		CHECK(ok);
		(void)present;
	}
	CHECK(rhi <= ehi && shi <= ehi);

	/* kgstore sees the same: counts, and the last entity of the last batch. */
	kg_stats *stats = NULL;
	long long raw_e = sql_int(db, "SELECT count(*) FROM entities");
	long long raw_r = sql_int(db, "SELECT count(*) FROM relations");
	CHECK_OK(s, kg_get_stats(s, &stats));
	if (stats) {
		CHECK((long long)stats->entity_count == raw_e);
		CHECK((long long)stats->relation_count == raw_r);
	}
	kg_stats_free(stats);
	if (hi >= 0) {
		char id[64];
		snprintf(id, sizeof(id), "b%ld-e%d", hi, expect_entities(hi) - 1);
		kg_entity *e = NULL;
		CHECK_OK(s, kg_get_entity(s, id, &e));
		if (e) {
			CHECK(e->embedding_dim == 8 && e->embedding &&
			      e->embedding[7] == (float)(hi * 1000 + (expect_entities(hi) - 1) * 10 + 7));
			CHECK_STR(e->source, "crash-test");
		}
		kg_entity_free(e);
	}
	sqlite3_close(db);
	kg_close(s);
	return bad ? -2 : hi;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DB_PATH [KILLS [MAX_DELAY_MS [SEED [KILLS_PER_FILE]]]]\n", argv[0]);
		return 2;
	}
	db_path = argv[1];
	writer_opts = getenv("KG_CRASH_WRITER_OPTIONS");
	int kills = argc > 2 ? atoi(argv[2]) : 100;
	int max_delay_ms = argc > 3 ? atoi(argv[3]) : 40;
	unsigned seed = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
	int per_file = argc > 5 ? atoi(argv[5]) : 20;
	if (kills < 1 || max_delay_ms < 1 || per_file < 1) {
		fprintf(stderr, "KILLS, MAX_DELAY_MS and KILLS_PER_FILE must be positive\n");
		return 2;
	}
	printf("sqlite_crash: %d kills, delays up to %d ms, seed %u (rerun with it to replay the delays)\n", kills,
	       max_delay_ms, seed);
	fflush(stdout);
	srand(seed);
	th_current = "sigkill";
	th_remove_sqlite(db_path);
	long next = 0;
	long total_batches = 0, killed_mid = 0;
	for (int n = 1; n <= kills; n++) {
		if ((n - 1) % per_file == 0 && n > 1) {
			th_remove_sqlite(db_path);
			next = 0;
		}
		int fds[2];
		if (pipe(fds) != 0) {
			perror("pipe");
			return 1;
		}
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			close(fds[0]);
			child(next, fds[1]);
		}
		close(fds[1]);
		/* Mostly uniform delays, with one in eight very short, so that opening
		 * and the schema set-up of a new file get killed too. */
		long us = rand() % 8 == 0 ? rand() % 2000 : rand() % (max_delay_ms * 1000);
		struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status = 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		long reported = next - 1;
		int32_t v;
		ssize_t got;
		while ((got = read(fds[0], &v, sizeof(v))) == (ssize_t)sizeof(v))
			reported = v;
		close(fds[0]);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
			fprintf(stderr, "kill %d: the writer ended by itself (status %d) instead of being killed\n", n, status);
			CHECK(!"writer killed");
			break;
		}
		long hi = verify(next, reported, n);
		if (hi < -1) {
			fprintf(stderr, "kill %d (seed %u, delay %ld us): checks failed\n", n, seed, us);
			break;
		}
		total_batches += hi + 1 - next;
		killed_mid += hi == reported + 1 ? 1 : 0;
		next = hi + 1;
	}
	printf("sqlite_crash: %ld batches committed across the kills; %ld kills fell between a commit and its report\n",
	       total_batches, killed_mid);
	th_remove_sqlite(db_path);
	return th_summary("sqlite_crash");
}
