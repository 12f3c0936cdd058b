/*
 * pg_outage.c - graceful degradation against a real PostgreSQL server that
 * dies. A writer thread pushes a steady stream of entity adds through the
 * degrading store; the main thread SIGKILLs the postmaster, lets the writer
 * go on (the store switches to its fallback and journals), restarts the
 * server, waits for the store to recover on its own (lazily, on the
 * writer's calls), lets the writer go on a little, then checks in
 * PostgreSQL that every acknowledged write is there, with its content,
 * and that no id was written twice.
 *
 *   pg_outage SCRIPT DIR [DEGRADED_WRITES]
 *     starts its own server in DIR (scripts/pg-test-server.sh), stops it at
 *     the end; the journal is DIR.journal. Prints the figures.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/degrade.h"
#include "pg_common.h"

#define MAX_WRITES 2000000

static const char *g_script, *g_dir;

typedef struct shared {
	pthread_mutex_t mu;
	kg_store *s;
	int stop;
	int fatal;             /* the writer met an error it must not see */
	long next;             /* next id to write */
	long acked;            /* writes acknowledged */
	long acked_degraded;   /* of which answered by the fallback */
	long acked_by_exists;  /* a retry found its earlier attempt had landed */
	long errors;           /* connection errors returned to the writer (retried) */
	long abandoned;        /* id whose retries the stop cut short, or -1 */
	unsigned char *acked_map; /* 1 acked by the primary, 2 by the fallback */
} shared;

static shared g;

static void *writer(void *arg)
{
	(void)arg;
	char id[32], props[64];
	for (;;) {
		pthread_mutex_lock(&g.mu);
		int stop = g.stop;
		long i = g.next;
		pthread_mutex_unlock(&g.mu);
		if (stop || i >= MAX_WRITES)
			break;
		snprintf(id, sizeof(id), "w%07ld", i);
		snprintf(props, sizeof(props), "{\"n\": %ld}", i);
		kg_entity e = KG_ENTITY_INIT;
		e.id = id;
		e.entity_type = "Write";
		e.properties = props;
		int retried = 0, rc;
		/* An application's loop: retry the same write on an outage. */
		while ((rc = kg_add_entity(g.s, &e)) == KG_ECONNLOST || rc == KG_EPOOL) {
			pthread_mutex_lock(&g.mu);
			g.errors++;
			stop = g.stop;
			pthread_mutex_unlock(&g.mu);
			retried = 1;
			if (stop) {
				/* Never acknowledged, though an attempt may have landed. */
				pthread_mutex_lock(&g.mu);
				g.abandoned = i;
				pthread_mutex_unlock(&g.mu);
				return NULL;
			}
		}
		int degraded = kg_degrade_last_call_degraded(g.s);
		pthread_mutex_lock(&g.mu);
		if (rc == KG_OK || (rc == KG_EEXISTS && retried)) {
			g.acked++;
			g.acked_map[i] = degraded ? 2 : 1;
			if (degraded)
				g.acked_degraded++;
			if (rc == KG_EEXISTS)
				g.acked_by_exists++;
			g.next++;
		} else {
			fprintf(stderr, "writer: %s returned %d: %s\n", id, rc, kg_errmsg(g.s));
			g.fatal = 1;
			g.stop = 1;
		}
		pthread_mutex_unlock(&g.mu);
	}
	return NULL;
}

static long counter(long *p)
{
	pthread_mutex_lock(&g.mu);
	long v = *p;
	int fatal = g.fatal;
	pthread_mutex_unlock(&g.mu);
	return fatal ? -1 : v;
}

/* Waits (polling) until *p reaches n; 0 on timeout or writer failure. */
static int wait_count(long *p, long n, double limit_s)
{
	double t0 = pgt_now();
	for (;;) {
		long v = counter(p);
		if (v < 0)
			return 0;
		if (v >= n)
			return 1;
		if (pgt_now() - t0 > limit_s)
			return 0;
		usleep(2000);
	}
}

static long postmaster_pid(void)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/data/postmaster.pid", g_dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long pid = -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return pid;
}

static void test_outage(long degraded_target)
{
	char base[2048], uri[2048], journal[600], err[1024];
	CHECK(pgt_script(g_script, "start", g_dir, NULL, base, sizeof(base)));
	pgt_uri(uri, sizeof(uri), base, "min_pool_size=1&max_pool_size=2&pool_timeout=2&connect_timeout=2");
	snprintf(journal, sizeof(journal), "%s.journal", g_dir);
	unlink(journal);
	char aux[700];
	snprintf(aux, sizeof(aux), "%s.cursor", journal);
	unlink(aux);
	snprintf(aux, sizeof(aux), "%s.rejected", journal);
	unlink(aux);

	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.max_failures = 3;
	o.journal_path = journal;
	o.recovery_interval = 0.2;
	kg_store *s = NULL;
	int rc = kg_degrade_open(uri, &o, &s, err, sizeof(err));
	CHECK(rc == KG_OK);
	if (rc != KG_OK) {
		fprintf(stderr, "kg_degrade_open: %s\n", err);
		return;
	}
	pthread_mutex_init(&g.mu, NULL);
	g.s = s;
	g.abandoned = -1;
	g.acked_map = calloc(MAX_WRITES, 1);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, writer, NULL) == 0);

	/* Normal operation first. */
	CHECK(wait_count(&g.acked, 200, 120));

	/* The crash: SIGKILL to the postmaster (its backends notice and exit). */
	long pid = postmaster_pid();
	CHECK(pid > 0);
	long acked_before_kill = counter(&g.acked);
	double t_kill = pgt_now();
	if (pid > 0) {
		CHECK(kill((pid_t)pid, SIGKILL) == 0);
		while (kill((pid_t)pid, 0) == 0 && pgt_now() - t_kill < 30)
			usleep(10000);
	}

	/* The writer keeps going: its writes now land in the fallback. */
	CHECK(wait_count(&g.acked_degraded, degraded_target, 300));
	kg_degrade_status st;
	CHECK_OK(NULL, kg_degrade_status_get(s, &st));
	CHECK(st.state == KG_DEGRADE_DEGRADED);
	CHECK(st.pending > 0);
	double t_switch_seen = pgt_now();

	/* The server comes back. A restart right after the kill may find the
	 * old backends still attached to shared memory: retry a while. */
	int resumed = 0;
	double t_resume_start = pgt_now();
	for (int i = 0; i < 60 && !resumed; i++) {
		resumed = pgt_script(g_script, "resume", g_dir, NULL, NULL, 0);
		if (!resumed)
			usleep(500000);
	}
	CHECK(resumed);
	double t_resumed = pgt_now();
	/* pg_ctl may return on the killed server's stale pid file while the
	 * new one still runs crash recovery: note when it really answers. */
	double t_accepting = 0;
	while (pgt_now() - t_resumed < 120) {
		if (PQping(base) == PQPING_OK) {
			t_accepting = pgt_now();
			break;
		}
		usleep(5000);
	}
	CHECK(t_accepting > 0);

	/* Recovery happens on the writer's calls (recovery_interval 0.2 s). */
	int recovered = 0;
	while (pgt_now() - t_resumed < 120 && counter(&g.acked) >= 0) {
		if (kg_degrade_status_get(s, &st) == KG_OK && st.state == KG_DEGRADE_NORMAL) {
			recovered = 1;
			break;
		}
		usleep(2000);
	}
	double t_recovered = pgt_now();
	CHECK(recovered);
	long acked_at_recovery = counter(&g.acked);
	CHECK(wait_count(&g.acked, acked_at_recovery + 100, 120)); /* normal again */

	pthread_mutex_lock(&g.mu);
	g.stop = 1;
	pthread_mutex_unlock(&g.mu);
	pthread_join(th, NULL);
	CHECK(!g.fatal);
	CHECK_OK(NULL, kg_degrade_status_get(s, &st));
	CHECK(st.state == KG_DEGRADE_NORMAL && st.pending == 0);
	CHECK(st.conflicts == 0 && st.rejected == 0);
	kg_close(s);

	/* What PostgreSQL holds. */
	PGconn *pg = pgt_connect(base);
	CHECK(pg != NULL);
	long rows = 0, distinct = 0, found = 0, found_degraded = 0, wrong = 0, extra = 0;
	if (pg) {
		PGresult *r = PQexec(pg, "SELECT id, properties->>'n' FROM graph_entities WHERE entity_type = 'Write'");
		CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
		unsigned char *seen = calloc(MAX_WRITES, 1);
		rows = PQntuples(r);
		for (long i = 0; i < rows; i++) {
			const char *id = PQgetvalue(r, (int)i, 0);
			long n = atol(id + 1);
			if (id[0] != 'w' || n < 0 || n >= MAX_WRITES) {
				extra++;
				continue;
			}
			if (seen[n]++ == 0)
				distinct++;
			if (atol(PQgetvalue(r, (int)i, 1)) != n)
				wrong++;
			if (g.acked_map[n]) {
				found++;
				found_degraded += g.acked_map[n] == 2;
			} else if (n != g.abandoned) {
				extra++; /* written, never acknowledged */
			}
		}
		free(seen);
		PQclear(r);
		PQfinish(pg);
	}
	CHECK(found == g.acked);               /* every acknowledged write is there */
	CHECK(found_degraded == g.acked_degraded);
	CHECK(rows == distinct);               /* none twice */
	CHECK(wrong == 0);                     /* with the content written */
	CHECK(extra == 0);                     /* and nothing else */

	printf("pg_outage: writes acknowledged before the kill: %ld\n", acked_before_kill);
	printf("pg_outage: writes acknowledged during the outage (by the fallback, journaled): %ld\n",
	       g.acked_degraded);
	printf("pg_outage: of those found in PostgreSQL afterwards: %ld (rows %ld, distinct ids %ld, "
	       "wrong content %ld, unacknowledged %ld)\n", found_degraded, rows, distinct, wrong, extra);
	printf("pg_outage: writes acknowledged in all: %ld, found: %ld; errors returned and retried: %ld; "
	       "retries that found their write already there: %ld\n", g.acked, found, g.errors, g.acked_by_exists);
	printf("pg_outage: journal replay: %llu applied, %llu found already applied, %llu conflicts\n",
	       (unsigned long long)st.replayed, (unsigned long long)st.already_applied,
	       (unsigned long long)st.conflicts);
	printf("pg_outage: kill -> %ld degraded writes seen: %.3f s; restart command took %.3f s, then server "
	       "accepting connections after %.3f s\n", degraded_target, t_switch_seen - t_kill,
	       t_resumed - t_resume_start, t_accepting - t_resumed);
	printf("pg_outage: time to recover: server accepting -> store normal: %.3f s (the recovery attempt that "
	       "succeeded, reconnect + replay of %llu records: %.3f s); outage seen by the writer (kill -> normal): "
	       "%.3f s\n", t_recovered - t_accepting, (unsigned long long)(st.replayed + st.already_applied),
	       st.last_recovery_seconds, t_recovered - t_kill);
	free(g.acked_map);
	pthread_mutex_destroy(&g.mu);

	/* The server is down when the store opens: that is an outage, not an
	 * error; the store degrades, journals, and catches up when it is back. */
	CHECK(pgt_script(g_script, "halt", g_dir, NULL, NULL, 0));
	o.max_failures = 2;
	o.recovery_interval = 3600; /* on demand only here */
	rc = kg_degrade_open(uri, &o, &s, err, sizeof(err));
	CHECK(rc == KG_OK);
	if (rc == KG_OK) {
		CHECK_OK(NULL, kg_degrade_status_get(s, &st));
		CHECK(st.state == KG_DEGRADE_NORMAL && st.failures == 1);
		CHECK(strstr(st.last_failure, "connect") != NULL);
		kg_entity e = KG_ENTITY_INIT;
		e.id = "opened-while-down";
		e.entity_type = "Late";
		CHECK_OK(s, kg_add_entity(s, &e)); /* second failure: the fallback */
		CHECK(kg_degrade_last_call_degraded(s) == 1);
		CHECK(pgt_script(g_script, "resume", g_dir, NULL, NULL, 0));
		int back = 0;
		double t0 = pgt_now();
		while (!back && pgt_now() - t0 < 120) {
			back = kg_degrade_try_recover(s, err, sizeof(err)) == KG_OK;
			if (!back)
				usleep(20000);
		}
		CHECK(back);
		kg_close(s);
		PGconn *pg2 = pgt_connect(base);
		char v[64] = "";
		CHECK(pg2 && pgt_value(pg2, "SELECT count(*) FROM graph_entities WHERE id = 'opened-while-down'", v,
		                       sizeof(v)));
		CHECK_STR(v, "1");
		if (pg2)
			PQfinish(pg2);
	} else {
		fprintf(stderr, "kg_degrade_open with the server down: %s\n", err);
	}
	unlink(journal);
	snprintf(aux, sizeof(aux), "%s.cursor", journal);
	unlink(aux);
	CHECK(pgt_script(g_script, "stop", g_dir, NULL, NULL, 0));
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: pg_outage SCRIPT DIR [DEGRADED_WRITES]\n");
		return 2;
	}
	g_script = argv[1];
	g_dir = argv[2];
	long target = argc > 3 ? atol(argv[3]) : 500;
	if (target <= 0)
		target = 500;
	th_current = "test_outage";
	test_outage(target);
	return th_summary("pg_outage");
}
