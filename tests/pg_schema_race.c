/*
 * pg_schema_race.c - several processes open a database with no kgstore
 * tables at the same moment: all of them succeed, the tables are made
 * once. The same for a tenant's schema in separate-schema mode.
 *
 *   pg_schema_race URI
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "pg_common.h"

enum { PROCS = 4, ROUNDS = 3 };

static const char *g_uri;

/* Child: wait for the go byte, open, write one entity; exit code = rc. */
static int child(int go_fd, const char *uri, const char *tenant, int n)
{
	char b;
	if (read(go_fd, &b, 1) != 1)
		return 90;
	kg_store *s = NULL, *v = NULL;
	int rc = kg_open(uri, &s);
	if (rc == 0 && tenant)
		rc = kg_tenant(s, tenant, &v);
	if (rc == 0) {
		char id[16];
		snprintf(id, sizeof(id), "p%d", n);
		kg_entity e = KG_ENTITY_INIT;
		e.id = id;
		e.entity_type = "Racer";
		rc = kg_add_entity(v ? v : s, &e);
	}
	if (rc != 0)
		fprintf(stderr, "child %d: %s\n", n, kg_errmsg(v ? v : s));
	kg_close(v);
	kg_close(s);
	return rc == 0 ? 0 : 100 - rc;
}

static void race(const char *extra, const char *tenant)
{
	char uri[2048];
	pgt_uri(uri, sizeof(uri), g_uri, extra);
	int pipefd[2];
	if (pipe(pipefd) != 0) {
		CHECK(0);
		return;
	}
	pid_t pids[PROCS];
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(pipefd[1]);
			_exit(child(pipefd[0], uri, tenant, i));
		}
	}
	close(pipefd[0]);
	char go[PROCS] = { 0 };
	CHECK(write(pipefd[1], go, PROCS) == PROCS); /* all at once */
	close(pipefd[1]);
	int all_ok = 1;
	for (int i = 0; i < PROCS; i++) {
		int st = 0;
		waitpid(pids[i], &st, 0);
		all_ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	CHECK(all_ok);
	kg_store *s = NULL, *v = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	if (s && tenant)
		CHECK_OK(s, kg_tenant(s, tenant, &v));
	kg_stats *st = NULL;
	if (s)
		CHECK_OK(s, kg_get_stats(v ? v : s, &st));
	CHECK(st && st->entity_count == PROCS);
	kg_stats_free(st);
	kg_close(v);
	kg_close(s);
}

static void test_races(void)
{
	PGconn *pg = pgt_connect(g_uri);
	CHECK(pg != NULL);
	if (!pg)
		return;
	char extra[256], sql[256];
	for (int r = 0; r < ROUNDS; r++) {
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS kg_race_%d CASCADE", r);
		pgt_exec(pg, sql);
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"kg_race_%d_racers\" CASCADE", r);
		pgt_exec(pg, sql);
		snprintf(extra, sizeof(extra), "schema=kg_race_%d", r);
		race(extra, NULL);
		/* One schema per tenant, made by whichever process comes first. */
		snprintf(extra, sizeof(extra), "schema=kg_race_%d&tenancy=schema", r);
		race(extra, "racers");
	}
	char val[64];
	CHECK(pgt_value(pg, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	                    " WHERE n.nspname = 'kg_race_0' AND c.relname = 'graph_entities'", val, sizeof(val)));
	CHECK_STR(val, "1");
	PQfinish(pg);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pg_schema_race URI\n");
		return 2;
	}
	g_uri = argv[1];
	RUN(test_races);
	return th_summary("pg_schema_race");
}
