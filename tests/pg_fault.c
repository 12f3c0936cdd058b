/*
 * pg_fault.c - the server goes away and comes back. Calls made while it
 * is down return KG_ECONNLOST quickly (never hang); a transaction whose
 * connection died reports it and rolls back; once the server is back the
 * pool replaces its dead connections and calls succeed again. Connections
 * killed by the server (pg_terminate_backend) are replaced without a
 * failed call when they were idle.
 *
 *   pg_fault SCRIPT DIR    (starts its own server in DIR, stops it at the end)
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/postgres.h"
#include "pg_common.h"

static const char *g_script, *g_dir;

static int add(kg_store *s, const char *id)
{
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = "T";
	return kg_add_entity(s, &e);
}

static int has(kg_store *s, const char *id)
{
	kg_entity *e = NULL;
	int rc = kg_get_entity(s, id, &e);
	kg_entity_free(e);
	return rc;
}

static void test_restart(void)
{
	char uri[2048], base[2048];
	CHECK(pgt_script(g_script, "start", g_dir, NULL, base, sizeof(base)));
	pgt_uri(uri, sizeof(uri), base, "min_pool_size=2&max_pool_size=4&pool_timeout=5&connect_timeout=3");
	kg_store *s = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	if (!s)
		return;
	CHECK_OK(s, add(s, "before"));
	kg_store *t = NULL;
	CHECK_OK(s, kg_begin(s, &t));
	CHECK_OK(t, add(t, "in-txn"));

	/* Down: immediate stop, as a crash. */
	CHECK(pgt_script(g_script, "halt", g_dir, NULL, NULL, 0));
	double t0 = pgt_now();
	CHECK_RC(s, has(s, "before"), KG_ECONNLOST);
	CHECK(pgt_now() - t0 < 15.0);
	CHECK(strstr(kg_errmsg(s), "connect") != NULL);
	t0 = pgt_now();
	CHECK_RC(t, add(t, "in-txn-2"), KG_ECONNLOST);
	CHECK_RC(s, kg_commit(t), KG_ECONNLOST); /* frees the handle */
	CHECK(pgt_now() - t0 < 15.0);
	CHECK_RC(s, add(s, "while-down"), KG_ECONNLOST);

	/* Back: the next calls succeed, committed data is there. */
	CHECK(pgt_script(g_script, "resume", g_dir, NULL, NULL, 0));
	CHECK_OK(s, has(s, "before"));
	CHECK_RC(s, has(s, "in-txn"), KG_ENOTFOUND);
	CHECK_OK(s, add(s, "after"));
	kg_pg_pool_stats st;
	CHECK_OK(s, kg_pg_store_pool_stats(s, &st));
	CHECK(st.replaced >= 2);
	CHECK(st.in_use == 0);

	/* The server kills every session: idle ones are replaced unseen, a
	 * transaction's pinned one reports the loss. */
	CHECK_OK(s, kg_begin(s, &t));
	CHECK_OK(t, add(t, "doomed"));
	PGconn *admin = pgt_connect(base);
	CHECK(admin != NULL);
	if (admin) {
		CHECK(pgt_exec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		                      " WHERE datname = current_database() AND pid <> pg_backend_pid()"));
		PQfinish(admin);
	}
	CHECK_OK(s, has(s, "after"));
	CHECK_RC(t, add(t, "doomed-2"), KG_ECONNLOST);
	CHECK_RC(t, has(t, "doomed"), KG_ECONNLOST);
	CHECK_OK(s, kg_rollback(t));
	CHECK_RC(s, has(s, "doomed"), KG_ENOTFOUND);
	CHECK_OK(s, kg_begin(s, &t));
	CHECK_OK(t, add(t, "fresh-txn"));
	CHECK_OK(s, kg_commit(t));
	CHECK_OK(s, has(s, "fresh-txn"));
	kg_close(s);
	CHECK(pgt_script(g_script, "stop", g_dir, NULL, NULL, 0));
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: pg_fault SCRIPT DIR\n");
		return 2;
	}
	g_script = argv[1];
	g_dir = argv[2];
	RUN(test_restart);
	return th_summary("pg_fault");
}
