/*
 * unit_sqlite_writer.c - waiting for the SQLite backend's writer connection
 * inside one process: calls that take turns on it (every call does, on
 * sqlite::memory:, where reads use it too) never fail for waiting, however
 * short the timeout; another handle's open transaction is waited for up to
 * the timeout (a fraction of a second counts), then KG_EBUSY names it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "kgstore.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int add_e(kg_store *s, const char *id)
{
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = "T";
	return kg_add_entity(s, &e);
}

typedef struct reader {
	kg_store *s;
	atomic_int *stop;
	atomic_long reads;
	long errors;
} reader;

static void *read_loop(void *p)
{
	reader *r = p;
	while (!atomic_load(r->stop)) {
		kg_entity *e = NULL;
		int rc = kg_get_entity(r->s, "hub", &e);
		kg_entity_free(e);
		kg_entity_list *l = NULL;
		if (rc == 0)
			rc = kg_neighbors(r->s, "hub", NULL, KG_OUT, &l);
		kg_entity_list_free(l);
		r->errors += rc != 0;
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

/* Three threads read in a loop while one writes, on one connection, with a
 * timeout of a millisecond: turns are short but a thread may wait for
 * many of them, which used to fail with KG_EBUSY. */
static void test_turns_never_time_out(const char *uri)
{
	kg_store *s = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	if (!s)
		return;
	CHECK_OK(s, add_e(s, "hub"));
	atomic_int stop;
	atomic_init(&stop, 0);
	enum { READERS = 3 };
	reader rd[READERS];
	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++) {
		rd[i].s = s;
		rd[i].stop = &stop;
		atomic_init(&rd[i].reads, 0);
		rd[i].errors = 0;
		pthread_create(&th[i], NULL, read_loop, &rd[i]);
	}
	for (int i = 0; i < READERS; i++)
		while (atomic_load(&rd[i].reads) == 0)
			sched_yield();
	int write_errors = 0;
	char id[32], rid[32];
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof id, "w%d", i);
		snprintf(rid, sizeof rid, "r%d", i);
		kg_relation r = KG_RELATION_INIT;
		r.id = rid, r.relation_type = "HAS", r.source_id = "hub", r.target_id = id;
		int rc = add_e(s, id);
		if (rc == 0)
			rc = kg_add_relation(s, &r);
		if (rc != 0 && write_errors++ == 0)
			fprintf(stderr, "  write %d: %s\n", i, kg_errmsg(s));
	}
	atomic_store(&stop, 1);
	long errors = 0;
	for (int i = 0; i < READERS; i++) {
		pthread_join(th[i], NULL);
		errors += rd[i].errors;
	}
	CHECK(write_errors == 0);
	CHECK(errors == 0);
	kg_close(s);
}

/* Another handle's transaction: waited for the whole timeout (0.3 s, not
 * rounded to whole seconds), then KG_EBUSY with what is in the way. */
static void test_foreign_transaction_times_out(const char *uri)
{
	kg_store *s = NULL, *t = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	if (!s)
		return;
	CHECK_OK(s, kg_begin(s, &t));
	if (!t) {
		kg_close(s);
		return;
	}
	CHECK_OK(t, add_e(t, "in-txn"));
	double t0 = now_s();
	CHECK_RC(s, add_e(s, "outside"), KG_EBUSY);
	double waited = now_s() - t0;
	CHECK(waited >= 0.29);
	CHECK(strstr(kg_errmsg(s), "transaction") != NULL);
	CHECK_OK(t, kg_commit(t));
	CHECK_OK(s, add_e(s, "outside")); /* free again */
	kg_close(s);
}

int main(void)
{
	const char *file = "unit_sqlite_writer.db";
	char uri[256];
	th_current = "turns, memory";
	test_turns_never_time_out("sqlite::memory:?timeout=0.001");
	th_current = "turns, memory, tables";
	test_turns_never_time_out("sqlite::memory:?tenancy=tables&timeout=0.001");
	th_remove_sqlite(file);
	snprintf(uri, sizeof uri, "sqlite:%s?timeout=0.001", file);
	th_current = "turns, file";
	test_turns_never_time_out(uri);
	th_remove_sqlite(file);
	th_current = "foreign transaction, memory";
	test_foreign_transaction_times_out("sqlite::memory:?timeout=0.3");
	snprintf(uri, sizeof uri, "sqlite:%s?timeout=0.3", file);
	th_current = "foreign transaction, file";
	test_foreign_transaction_times_out(uri);
	th_remove_sqlite(file);
	return th_summary("unit_sqlite_writer");
}
