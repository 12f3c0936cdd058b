/*
 * pg_pool.c - the PostgreSQL connection pool: minimum size at open,
 * exhaustion (KG_EPOOL after the timeout, with the figures and the fix),
 * waiting callers served when a connection comes back, a pool shared by
 * two stores, passwords kept out of messages, options and environment.
 *
 *   pg_pool URI
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/postgres.h"
#include "pg_common.h"

static const char *g_uri;

static kg_store *open_with(const char *extra)
{
	char uri[2048];
	kg_store *s = NULL;
	pgt_uri(uri, sizeof(uri), g_uri, extra);
	if (kg_open(uri, &s) != 0) {
		fprintf(stderr, "cannot open %s: %s\n", uri, kg_errmsg(s));
		kg_close(s);
		return NULL;
	}
	return s;
}

static void test_min_size_at_open(void)
{
	kg_store *s = open_with("schema=kg_pool&min_pool_size=3&max_pool_size=6");
	CHECK(s != NULL);
	if (!s)
		return;
	kg_pg_pool_stats st;
	CHECK_OK(s, kg_pg_store_pool_stats(s, &st));
	CHECK(st.size == 3 && st.idle == 3 && st.in_use == 0 && st.min_size == 3 && st.max_size == 6);
	kg_close(s);
}

static void test_exhaustion(void)
{
	kg_store *s = open_with("schema=kg_pool&min_pool_size=1&max_pool_size=2&pool_timeout=0.5");
	CHECK(s != NULL);
	if (!s)
		return;
	kg_entity e = KG_ENTITY_INIT;
	e.id = "x";
	e.entity_type = "T";
	kg_clear(s);
	CHECK_OK(s, kg_add_entity(s, &e));
	/* Two transactions pin both connections. */
	kg_store *t1 = NULL, *t2 = NULL;
	CHECK_OK(s, kg_begin(s, &t1));
	CHECK_OK(s, kg_begin(s, &t2));
	kg_pg_pool_stats st;
	CHECK_OK(s, kg_pg_store_pool_stats(s, &st));
	CHECK(st.size == 2 && st.in_use == 2);
	kg_entity *got = NULL;
	double t0 = pgt_now();
	CHECK_RC(s, kg_get_entity(s, "x", &got), KG_EPOOL);
	double waited = pgt_now() - t0;
	CHECK(waited >= 0.45 && waited < 5.0);
	const char *msg = kg_errmsg(s);
	CHECK(strstr(msg, "exhausted") != NULL);
	CHECK(strstr(msg, "pool size 2") != NULL && strstr(msg, "in use 2") != NULL);
	CHECK(strstr(msg, "waiting 1") != NULL);
	CHECK(strstr(msg, "increase max_pool_size") != NULL);
	CHECK_OK(s, kg_pg_store_pool_stats(s, &st));
	CHECK(st.timeouts == 1);
	/* The transactions still work, and a freed connection serves again. */
	CHECK_OK(t1, kg_get_entity(t1, "x", &got));
	kg_entity_free(got);
	got = NULL;
	CHECK_OK(s, kg_commit(t1));
	CHECK_OK(s, kg_get_entity(s, "x", &got));
	kg_entity_free(got);
	CHECK_OK(s, kg_rollback(t2));
	kg_close(s);
}

typedef struct waiter {
	kg_store *s;
	int rc;
	double waited;
} waiter;

static void *wait_for_connection(void *p)
{
	waiter *w = p;
	kg_entity *e = NULL;
	double t0 = pgt_now();
	w->rc = kg_get_entity(w->s, "x", &e);
	w->waited = pgt_now() - t0;
	kg_entity_free(e);
	return NULL;
}

/* A caller waiting for a connection gets the one given back. */
static void test_waiter_served(void)
{
	kg_store *s = open_with("schema=kg_pool&min_pool_size=1&max_pool_size=1&pool_timeout=10");
	CHECK(s != NULL);
	if (!s)
		return;
	kg_store *t = NULL;
	CHECK_OK(s, kg_begin(s, &t));
	waiter w = { s, -99, 0 };
	pthread_t th;
	pthread_create(&th, NULL, wait_for_connection, &w);
	kg_pg_pool_stats st = { 0 };
	for (int i = 0; i < 200 && st.waiting == 0; i++) {
		usleep(10000);
		kg_pg_store_pool_stats(s, &st);
	}
	CHECK(st.waiting == 1);
	usleep(200000);
	CHECK_OK(s, kg_commit(t));
	pthread_join(th, NULL);
	CHECK(w.rc == 0);
	CHECK(w.waited >= 0.15 && w.waited < 5.0);
	kg_close(s);
}

/* Two stores on one pool (the seed's "Reusing Existing Connection Pool"). */
static void test_shared_pool(void)
{
	char uri[2048], err[1024] = "";
	pgt_uri(uri, sizeof(uri), g_uri, "schema=kg_pool");
	kg_options o = KG_OPTIONS_INIT;
	o.backend = KG_BACKEND_POSTGRES;
	o.conninfo = uri;
	o.min_pool_size = 2;
	o.max_pool_size = 3;
	kg_pg_pool *pool = NULL;
	CHECK(kg_pg_pool_new(&o, &pool, err, sizeof(err)) == 0);
	if (!pool) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	kg_options so = KG_OPTIONS_INIT;
	so.backend = KG_BACKEND_POSTGRES;
	so.conninfo = uri; /* kgstore's own settings (schema=) still come from here */
	so.pool = pool;
	kg_store *a = NULL, *b = NULL;
	CHECK_OK(a, kg_open_options(&so, &a));
	CHECK_OK(b, kg_open_options(&so, &b));
	kg_clear(a);
	kg_entity e = KG_ENTITY_INIT;
	e.id = "shared";
	e.entity_type = "T";
	CHECK_OK(a, kg_add_entity(a, &e));
	kg_entity *got = NULL;
	CHECK_OK(b, kg_get_entity(b, "shared", &got)); /* same database, same pool */
	kg_entity_free(got);
	kg_pg_pool_stats st;
	CHECK(kg_pg_pool_get_stats(pool, &st) == 0);
	CHECK(st.size >= 2 && st.size <= 3 && st.in_use == 0);
	/* Either order of freeing works: the pool outlives its last user. */
	kg_pg_pool_free(pool);
	CHECK_OK(b, kg_get_entity(b, "shared", &got));
	kg_entity_free(got);
	kg_close(a);
	kg_close(b);
}

static void test_password_not_in_messages(void)
{
	const char *secret = "SeCrEt-Pa55word";
	kg_store *s = NULL;
	char uri[512];
	snprintf(uri, sizeof(uri), "postgresql://nobody:%s@/nosuchdb?host=/nonexistent-kgstore-dir&connect_timeout=2",
	         secret);
	CHECK(kg_open(uri, &s) == KG_ECONNLOST);
	CHECK(strstr(kg_errmsg(s), secret) == NULL);
	CHECK(strstr(kg_errmsg(s), "nobody@/nonexistent-kgstore-dir") != NULL); /* where it tried, without the secret */
	kg_close(s);
	s = NULL;
	/* libpq quotes a bad value back: the password given as the port too. */
	snprintf(uri, sizeof(uri), "postgresql://nobody:%s@/db?host=/nonexistent-kgstore-dir&port=%s", secret, secret);
	CHECK(kg_open(uri, &s) < 0);
	CHECK(strstr(kg_errmsg(s), secret) == NULL);
	CHECK(strstr(kg_errmsg(s), "****") != NULL);
	kg_close(s);
	s = NULL;
	kg_options o = KG_OPTIONS_INIT;
	o.backend = KG_BACKEND_POSTGRES;
	o.host = "/nonexistent-kgstore-dir";
	o.user = "nobody";
	o.password = secret;
	o.database = "nosuchdb";
	CHECK(kg_open_options(&o, &s) == KG_ECONNLOST);
	CHECK(strstr(kg_errmsg(s), secret) == NULL);
	kg_close(s);
	/* A server that answers but refuses: the database does not exist. */
	s = NULL;
	char bad[2048];
	snprintf(bad, sizeof(bad), "%s", g_uri);
	char *db = strstr(bad, "/kgtest");
	if (db) {
		memmove(db + 9, db + 7, strlen(db + 7) + 1);
		memcpy(db, "/nosuchdb", 9);
	}
	pgt_uri(uri, sizeof(uri), bad, "password=SeCrEt-Pa55word");
	CHECK(kg_open(uri, &s) == KG_ECONNLOST);
	CHECK(strstr(kg_errmsg(s), "nosuchdb") != NULL && strstr(kg_errmsg(s), secret) == NULL);
	kg_close(s);
}

static void test_bad_options(void)
{
	kg_store *s = NULL;
	char uri[2048];
	pgt_uri(uri, sizeof(uri), g_uri, "min_pool_size=9&max_pool_size=3");
	CHECK(kg_open(uri, &s) == KG_EINVAL);
	CHECK(strstr(kg_errmsg(s), "max_pool_size") != NULL);
	kg_close(s);
	s = NULL;
	pgt_uri(uri, sizeof(uri), g_uri, "tenancy=everyone");
	CHECK(kg_open(uri, &s) == KG_EINVAL);
	CHECK(strstr(kg_errmsg(s), "tenancy") != NULL);
	kg_close(s);
	s = NULL;
	pgt_uri(uri, sizeof(uri), g_uri, "statement_timeout=soon");
	CHECK(kg_open(uri, &s) == KG_EINVAL);
	kg_close(s);
}

/* ENVIRONMENT=production / staging open PostgreSQL from DB_* variables. */
static void test_environment(void)
{
	PGconn *pg = pgt_connect(g_uri);
	CHECK(pg != NULL);
	if (!pg)
		return;
	char host[1024], db[256], user[256];
	snprintf(host, sizeof(host), "%s", PQhost(pg));
	snprintf(db, sizeof(db), "%s", PQdb(pg));
	snprintf(user, sizeof(user), "%s", PQuser(pg));
	PQfinish(pg);
	setenv("ENVIRONMENT", "production", 1);
	setenv("DB_HOST", host, 1);
	setenv("DB_PORT", "5432", 1);
	setenv("DB_USER", user, 1);
	setenv("DB_PASSWORD", "not-used-by-trust-auth", 1);
	setenv("DB_NAME", db, 1);
	kg_store *s = NULL;
	CHECK_OK(s, kg_open_env(&s));
	CHECK_STR(kg_backend_name(s), "postgresql");
	kg_close(s);
	s = NULL;
	setenv("ENVIRONMENT", "staging", 1);
	setenv("DB_HOST", "/nonexistent-kgstore-dir", 1);
	setenv("STAGING_DB_HOST", host, 1);
	CHECK_OK(s, kg_open_env(&s));
	kg_close(s);
	s = NULL;
	setenv("ENABLE_PGVECTOR", "true", 1); /* no extension here: a clear refusal */
	CHECK(kg_open_env(&s) == KG_EUNSUPPORTED);
	CHECK(strstr(kg_errmsg(s), "pgvector") != NULL);
	kg_close(s);
	unsetenv("ENVIRONMENT");
	unsetenv("ENABLE_PGVECTOR");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pg_pool URI\n");
		return 2;
	}
	g_uri = argv[1];
	RUN(test_min_size_at_open);
	RUN(test_exhaustion);
	RUN(test_waiter_served);
	RUN(test_shared_pool);
	RUN(test_password_not_in_messages);
	RUN(test_bad_options);
	RUN(test_environment);
	return th_summary("pg_pool");
}
