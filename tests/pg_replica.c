/*
 * pg_replica.c - a primary and a streaming standby (pg_basebackup -R):
 * reads outside transactions are served by the standby, writes go to the
 * primary; with read_your_writes a transaction reads from the primary and
 * sees its own writes. Shown by pausing the standby's replay: a fresh
 * write is then invisible to reads served by the standby.
 *
 *   pg_replica SCRIPT DIR   (primary in DIR, standby in DIR_standby)
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/backend.h"
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

/* Waits until the standby has replayed everything the primary wrote. */
static int wait_replayed(PGconn *primary, PGconn *standby)
{
	char lsn[64], sql[160], val[16];
	if (!pgt_value(primary, "SELECT pg_current_wal_lsn()", lsn, sizeof(lsn)))
		return 0;
	snprintf(sql, sizeof(sql), "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn", lsn);
	for (int i = 0; i < 300; i++) {
		if (pgt_value(standby, sql, val, sizeof(val)) && !strcmp(val, "t"))
			return 1;
		usleep(20000);
	}
	return 0;
}

static void test_replica(void)
{
	char primary_uri[2048], standby_uri[2048], uri[4096], standby_dir[1024];
	snprintf(standby_dir, sizeof(standby_dir), "%s_standby", g_dir);
	CHECK(pgt_script(g_script, "start", g_dir, NULL, primary_uri, sizeof(primary_uri)));
	CHECK(pgt_script(g_script, "start-standby", standby_dir, g_dir, standby_uri, sizeof(standby_uri)));
	PGconn *primary = pgt_connect(primary_uri), *standby = pgt_connect(standby_uri);
	CHECK(primary && standby);
	if (!primary || !standby)
		goto done;
	char val[64];
	CHECK(pgt_value(standby, "SELECT pg_is_in_recovery()", val, sizeof(val)));
	CHECK_STR(val, "t");

	/* The kgstore tables exist before the standby serves them. */
	kg_store *w = NULL;
	CHECK_OK(w, kg_open(primary_uri, &w));
	kg_close(w);
	CHECK(wait_replayed(primary, standby));

	/* read_host: the standby's socket directory, the rest as the primary. */
	PGconn *probe = pgt_connect(standby_uri);
	char host[1024] = "";
	if (probe) {
		snprintf(host, sizeof(host), "%s", PQhost(probe));
		PQfinish(probe);
	}
	kg_store *s = NULL, *ryw = NULL;
	snprintf(uri, sizeof(uri), "%s&read_host=%s", primary_uri, host);
	CHECK_OK(s, kg_open(uri, &s));
	snprintf(uri, sizeof(uri), "%s&read_host=%s&read_your_writes=true", primary_uri, host);
	CHECK_OK(ryw, kg_open(uri, &ryw));
	if (!s || !ryw)
		goto close_stores;
	CHECK_OK(s, add(s, "x"));
	CHECK(wait_replayed(primary, standby));
	CHECK_OK(s, has(s, "x"));
	/* The replica's pool served the read. */
	kg_pg_pool_stats st = { 0 };
	char msg[256];
	kg_call c = { .msg = msg, .msgcap = sizeof(msg) };
	kg_backend *b = kg_store_backend(s);
	CHECK(b->control(b, &c, KG_PG_CTL_READ_POOL_STATS, &st) == 0);
	CHECK(st.acquired >= 1);

	/* Replay paused: reads served by the standby miss the new row. */
	CHECK(pgt_exec(standby, "SELECT pg_wal_replay_pause()"));
	CHECK_OK(s, add(s, "y"));
	CHECK_RC(s, has(s, "y"), KG_ENOTFOUND);
	CHECK(pgt_value(primary, "SELECT count(*) FROM graph_entities WHERE id = 'y'", val, sizeof(val)));
	CHECK_STR(val, "1");
	/* A transaction with read_your_writes reads the primary. */
	kg_store *t = NULL;
	CHECK_OK(ryw, kg_begin(ryw, &t));
	if (t) {
		CHECK_OK(t, has(t, "y"));
		CHECK_OK(t, add(t, "z"));
		CHECK_OK(t, has(t, "z"));
		CHECK_OK(ryw, kg_commit(t));
	}
	/* Without it, a transaction's reads go to the standby too. */
	CHECK_OK(s, kg_begin(s, &t));
	if (t) {
		CHECK_RC(t, has(t, "y"), KG_ENOTFOUND);
		CHECK_OK(s, kg_rollback(t));
	}
	CHECK(pgt_exec(standby, "SELECT pg_wal_replay_resume()"));
	CHECK(wait_replayed(primary, standby));
	CHECK_OK(s, has(s, "y"));
	CHECK_OK(s, has(s, "z"));
close_stores:
	kg_close(s);
	kg_close(ryw);
done:
	if (primary)
		PQfinish(primary);
	if (standby)
		PQfinish(standby);
	CHECK(pgt_script(g_script, "stop", standby_dir, NULL, NULL, 0));
	CHECK(pgt_script(g_script, "stop", g_dir, NULL, NULL, 0));
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: pg_replica SCRIPT DIR\n");
		return 2;
	}
	g_script = argv[1];
	g_dir = argv[2];
	RUN(test_replica);
	return th_summary("pg_replica");
}
