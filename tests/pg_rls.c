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
#include "kgstore/io.h"
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

/* "acme,globex" from kg_list_tenants; "" if it failed. */
static int tenants_of(kg_store *s, char *out, size_t cap)
{
	char **t = NULL;
	size_t n = 0;
	int rc = kg_list_tenants(s, &t, &n);
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; rc == KG_OK && i < n; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", t[i]);
	free(t);
	return rc;
}

/*
 * A role that does not own the tables sees no other tenant's rows; listing
 * tenants must still see them all (through the owner's kg_list_tenants()),
 * or fail: a migration or verify as that role must never skip tenants and
 * call the copy complete.
 */
static void check_tenants_as_non_owner(PGconn *admin, const char *app_uri)
{
	char val[256];
	kg_store *app = NULL, *owner = NULL, *dst = NULL;
	CHECK_OK(app, kg_open(app_uri, &app));
	if (!app)
		return;
	CHECK_OK(app, tenants_of(app, val, sizeof(val)));
	CHECK_STR(val, "acme,globex");

	/* Migrate as that role: every tenant arrives, verified. */
	CHECK_OK(dst, kg_open("memory:", &dst));
	kg_migrate_result res;
	CHECK(kg_migrate(app, dst, NULL, &res) == KG_OK);
	CHECK(res.verified == 1);
	CHECK(res.namespaces == 3);
	CHECK_OK(dst, tenants_of(dst, val, sizeof(val)));
	CHECK_STR(val, "acme,globex");
	kg_store *dst_acme = NULL;
	CHECK_OK(dst, kg_tenant(dst, "acme", &dst_acme));
	kg_stats *st = NULL;
	CHECK_OK(dst_acme, kg_get_stats(dst_acme, &st));
	CHECK(st && st->entity_count == 5);
	kg_stats_free(st);
	kg_close(dst_acme);
	kg_verify_result vr;
	CHECK(kg_verify(app, dst, NULL, &vr) == KG_OK && vr.equal == 1);

	/* Without the lister (a DBA revoked it): listing, verify and migrate
	 * fail and say why; nothing is reported equal. */
	CHECK(pgt_exec(admin, "REVOKE EXECUTE ON FUNCTION kg_rls.kg_list_tenants() FROM PUBLIC"));
	CHECK_RC(app, tenants_of(app, val, sizeof(val)), KG_EUNSUPPORTED);
	CHECK(strstr(kg_errmsg(app), "kg_list_tenants") != NULL);
	CHECK(strstr(kg_errmsg(app), "row-level security") != NULL);
	CHECK(kg_verify(app, dst, NULL, &vr) == KG_EUNSUPPORTED && vr.equal == 0);
	kg_close(dst);
	dst = NULL;
	CHECK_OK(dst, kg_open("memory:", &dst));
	CHECK(kg_migrate(app, dst, NULL, &res) == KG_EUNSUPPORTED && res.verified == 0);
	CHECK(strstr(res.errmsg, "kg_list_tenants") != NULL);
	CHECK(pgt_exec(admin, "GRANT EXECUTE ON FUNCTION kg_rls.kg_list_tenants() TO PUBLIC"));

	/* Tables made before the lister existed: a non-owner still opens them
	 * (and cannot list); the owner's next opening adds the lister. */
	CHECK(pgt_exec(admin, "DROP FUNCTION kg_rls.kg_list_tenants()"));
	kg_close(app);
	app = NULL;
	CHECK_OK(app, kg_open(app_uri, &app));
	if (app)
		CHECK_RC(app, tenants_of(app, val, sizeof(val)), KG_EUNSUPPORTED);
	char owner_uri[2048];
	pgt_uri(owner_uri, sizeof(owner_uri), g_uri, "tenancy=rls&schema=kg_rls");
	CHECK_OK(owner, kg_open(owner_uri, &owner));
	CHECK(pgt_value(admin, "SELECT to_regprocedure('kg_rls.kg_list_tenants()') IS NOT NULL", val, sizeof(val)));
	CHECK_STR(val, "t");
	if (app) {
		CHECK_OK(app, tenants_of(app, val, sizeof(val)));
		CHECK_STR(val, "acme,globex");
	}

	/* Row security forced on an owner without BYPASSRLS: nobody can see
	 * every tenant, so listing fails rather than answer short. */
	pgt_exec(admin, "DROP ROLE IF EXISTS kg_rls_owner");
	CHECK(pgt_exec(admin, "CREATE ROLE kg_rls_owner NOSUPERUSER NOBYPASSRLS"));
	CHECK(pgt_exec(admin, "GRANT USAGE ON SCHEMA kg_rls TO kg_rls_owner"));
	CHECK(pgt_exec(admin, "ALTER TABLE kg_rls.graph_entities OWNER TO kg_rls_owner"));
	CHECK(pgt_exec(admin, "ALTER TABLE kg_rls.graph_entities FORCE ROW LEVEL SECURITY"));
	CHECK(pgt_exec(admin, "ALTER FUNCTION kg_rls.kg_list_tenants() OWNER TO kg_rls_owner"));
	if (app) {
		CHECK_RC(app, tenants_of(app, val, sizeof(val)), KG_EUNSUPPORTED);
		CHECK(strstr(kg_errmsg(app), "FORCE ROW LEVEL SECURITY") != NULL);
	}
	CHECK(pgt_exec(admin, "ALTER TABLE kg_rls.graph_entities NO FORCE ROW LEVEL SECURITY"));
	CHECK(pgt_exec(admin, "ALTER TABLE kg_rls.graph_entities OWNER TO postgres"));
	CHECK(pgt_exec(admin, "ALTER FUNCTION kg_rls.kg_list_tenants() OWNER TO postgres"));
	CHECK(pgt_exec(admin, "REVOKE ALL ON SCHEMA kg_rls FROM kg_rls_owner"));
	CHECK(pgt_exec(admin, "DROP ROLE kg_rls_owner"));
	kg_close(owner);
	kg_close(dst);
	kg_close(app);
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
		check_tenants_as_non_owner(admin, app_uri);
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
