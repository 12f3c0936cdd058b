/*
 * pg_rls.c - row-level security in shared-schema mode: a role that does
 * not own the tables sees only the rows of the tenant named by the session
 * setting app.current_tenant_id, in hand-written SQL as through kgstore.
 *
 *   pg_rls URI
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kgstore.h"
#include "pg_common.h"

static const char *g_uri;

static int add(kg_store *s, const char *id, const char *type)
{
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = type;
	return kg_add_entity(s, &e);
}

/* The URI with user= replaced by `user`. */
static void uri_as(char *out, size_t cap, const char *user, const char *extra)
{
	char base[2048];
	snprintf(base, sizeof(base), "%s", g_uri);
	char *u = strstr(base, "user=");
	if (u) {
		char *end = strchr(u, '&');
		char rest[2048];
		snprintf(rest, sizeof(rest), "%s", end ? end : "");
		snprintf(u, sizeof(base) - (size_t)(u - base), "user=%s%s", user, rest);
	}
	pgt_uri(out, cap, base, extra);
}

static void test_rls(void)
{
	char uri[2048], val[256];
	pgt_uri(uri, sizeof(uri), g_uri, "tenancy=rls&schema=kg_rls");
	kg_store *s = NULL, *acme = NULL, *globex = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	if (!s)
		return;
	CHECK_OK(s, kg_tenant(s, "acme", &acme));
	CHECK_OK(s, kg_tenant(s, "globex", &globex));
	kg_clear(acme);
	kg_clear(globex);
	kg_clear(s);
	CHECK_OK(acme, add(acme, "a1", "Doc"));
	CHECK_OK(acme, add(acme, "a2", "Doc"));
	CHECK_OK(globex, add(globex, "g1", "Doc"));
	CHECK_OK(s, add(s, "global1", "Doc"));

	/* A role that owns nothing, with plain table privileges. */
	PGconn *admin = pgt_connect(g_uri);
	CHECK(admin != NULL);
	if (!admin)
		goto done;
	pgt_exec(admin, "DROP ROLE IF EXISTS kg_rls_app");
	CHECK(pgt_exec(admin, "CREATE ROLE kg_rls_app LOGIN NOSUPERUSER NOBYPASSRLS"));
	CHECK(pgt_exec(admin, "GRANT USAGE ON SCHEMA kg_rls TO kg_rls_app"));
	CHECK(pgt_exec(admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA kg_rls TO kg_rls_app"));
	CHECK(pgt_exec(admin, "GRANT USAGE ON ALL SEQUENCES IN SCHEMA kg_rls TO kg_rls_app"));
	CHECK(pgt_value(admin, "SELECT count(*) FROM pg_policies WHERE schemaname = 'kg_rls'"
	                       " AND policyname = 'kg_tenant_isolation'", val, sizeof(val)));
	CHECK_STR(val, "2");
	/* The owner (superuser here) still sees every row. */
	CHECK(pgt_value(admin, "SELECT count(*) FROM kg_rls.graph_entities", val, sizeof(val)));
	CHECK_STR(val, "4");

	char app_uri[2048];
	uri_as(app_uri, sizeof(app_uri), "kg_rls_app", NULL);
	PGconn *app = pgt_connect(app_uri);
	CHECK(app != NULL);
	if (app) {
		/* No tenant set: no rows at all. */
		CHECK(pgt_value(app, "SELECT count(*) FROM kg_rls.graph_entities", val, sizeof(val)));
		CHECK_STR(val, "0");
		CHECK(pgt_exec(app, "SET app.current_tenant_id = 'acme'"));
		CHECK(pgt_value(app, "SELECT count(*) FROM kg_rls.graph_entities", val, sizeof(val)));
		CHECK_STR(val, "2");
		/* Asking for another tenant's rows by name finds nothing. */
		CHECK(pgt_value(app, "SELECT count(*) FROM kg_rls.graph_entities WHERE tenant_id = 'globex'", val, sizeof(val)));
		CHECK_STR(val, "0");
		CHECK(pgt_value(app, "SELECT string_agg(id, ',' ORDER BY id) FROM kg_rls.graph_entities", val, sizeof(val)));
		CHECK_STR(val, "a1,a2");
		/* Nor may it write into another tenant. */
		PGresult *r = PQexec(app, "INSERT INTO kg_rls.graph_entities (id, tenant_id, entity_type)"
		                          " VALUES ('evil', 'globex', 'X')");
		CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
		PQclear(r);
		r = PQexec(app, "UPDATE kg_rls.graph_entities SET entity_type = 'X' WHERE id = 'g1'");
		CHECK(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "0") == 0);
		PQclear(r);
		CHECK(pgt_exec(app, "SET app.current_tenant_id = ''"));
		CHECK(pgt_value(app, "SELECT string_agg(id, ',') FROM kg_rls.graph_entities", val, sizeof(val)));
		CHECK_STR(val, "global1");
		PQfinish(app);
	}

	/* kgstore itself as that role: each handle sees its tenant only. */
	kg_store *as_app = NULL, *app_acme = NULL;
	uri_as(app_uri, sizeof(app_uri), "kg_rls_app", "tenancy=rls&schema=kg_rls");
	CHECK_OK(as_app, kg_open(app_uri, &as_app));
	if (as_app) {
		CHECK_OK(as_app, kg_tenant(as_app, "acme", &app_acme));
		kg_entity_list *l = NULL;
		CHECK_OK(app_acme, kg_list_entities(app_acme, NULL, 0, 0, &l));
		CHECK(l && l->count == 2);
		kg_entity_list_free(l);
		kg_entity *e = NULL;
		CHECK_RC(app_acme, kg_get_entity(app_acme, "g1", &e), KG_ENOTFOUND);
		CHECK_OK(as_app, kg_list_entities(as_app, NULL, 0, 0, &l)); /* the same connections, now global */
		CHECK(l && l->count == 1 && !strcmp(l->items[0]->id, "global1"));
		kg_entity_list_free(l);
		CHECK_OK(app_acme, add(app_acme, "a3", "Doc"));
		/* Batches too (COPY cannot write tables under RLS: staged). */
		kg_entity batch[2] = { KG_ENTITY_INIT, KG_ENTITY_INIT };
		batch[0].id = "b1";
		batch[1].id = "b2";
		batch[0].entity_type = batch[1].entity_type = "Doc";
		size_t added = 0;
		CHECK_OK(app_acme, kg_add_entities(app_acme, batch, 2, 0, &added));
		CHECK(added == 2);
		CHECK_RC(app_acme, kg_add_entities(app_acme, batch, 2, 0, &added), KG_EEXISTS);
		CHECK(strstr(kg_errmsg(app_acme), "b1") != NULL);
		kg_relation rels[2] = { KG_RELATION_INIT, KG_RELATION_INIT };
		rels[0].id = "r1";
		rels[1].id = "r2";
		rels[0].relation_type = rels[1].relation_type = "CITES";
		rels[0].source_id = "b1";
		rels[0].target_id = "b2";
		rels[1].source_id = "b2";
		rels[1].target_id = "g1"; /* another tenant's: does not exist here */
		CHECK_RC(app_acme, kg_add_relations(app_acme, rels, 2, 0, &added), KG_ENOTFOUND);
		CHECK(strstr(kg_errmsg(app_acme), "g1") != NULL);
		rels[1].target_id = "a1";
		CHECK_OK(app_acme, kg_add_relations(app_acme, rels, 2, 0, &added));
		CHECK(added == 2);
		CHECK_OK(app_acme, kg_delete_entity(app_acme, "b2"));
		kg_store *t = NULL;
		CHECK_OK(app_acme, kg_begin(app_acme, &t));
		if (t) {
			CHECK_OK(t, add(t, "a4", "Doc"));
			CHECK_OK(app_acme, kg_commit(t));
		}
		CHECK(pgt_value(admin, "SELECT count(*) FROM kg_rls.graph_entities WHERE tenant_id = 'acme'", val, sizeof(val)));
		CHECK_STR(val, "5");
		CHECK(pgt_value(admin, "SELECT count(*) FROM kg_rls.graph_relations", val, sizeof(val)));
		CHECK_STR(val, "0"); /* both went with b2 */
		kg_close(app_acme);
		kg_close(as_app);
	}
	pgt_exec(admin, "REVOKE ALL ON ALL TABLES IN SCHEMA kg_rls FROM kg_rls_app");
	pgt_exec(admin, "REVOKE ALL ON ALL SEQUENCES IN SCHEMA kg_rls FROM kg_rls_app");
	pgt_exec(admin, "REVOKE ALL ON SCHEMA kg_rls FROM kg_rls_app");
	pgt_exec(admin, "DROP ROLE IF EXISTS kg_rls_app");
	PQfinish(admin);
done:
	kg_close(acme);
	kg_close(globex);
	kg_close(s);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pg_rls URI\n");
		return 2;
	}
	g_uri = argv[1];
	RUN(test_rls);
	return th_summary("pg_rls");
}
