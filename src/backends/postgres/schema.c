/*
 * schema.c - the original system's tables, created when absent and used as
 * they are when present; row-level security; one schema per tenant.
 *
 * The tables are the original's graph_entities / graph_relations (JSONB
 * properties with GIN indexes, '' as the global namespace's tenant_id) plus
 * two columns the original lacks and ignores, since it names the columns it
 * writes: `source` (provenance) and `seq` (a bigserial giving insertion
 * order for listing and paging). A table made by the original gets them
 * once, and its REAL weight becomes DOUBLE PRECISION so weights come back
 * exactly. Set-up runs under a transaction-scoped advisory lock, so two
 * processes opening the same database at once do not race on the DDL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* Any constant: every kgstore takes the same lock for schema changes. */
#define KG_SCHEMA_LOCK "SELECT pg_advisory_xact_lock(7456002140931772417)"

/* ------------------------------------------------------------------ */
/* Names                                                                */
/* ------------------------------------------------------------------ */

/* "name" with embedded quotes doubled. */
static char *quote_ident(const char *name)
{
	size_t n = strlen(name);
	char *q = malloc(2 * n + 3), *d = q;
	if (!q)
		return NULL;
	*d++ = '"';
	for (const char *s = name; *s; s++) {
		if (*s == '"')
			*d++ = '"';
		*d++ = *s;
	}
	*d++ = '"';
	*d = '\0';
	return q;
}

static int tables_named(pg_tables *t, const char *schema)
{
	memset(t, 0, sizeof(*t));
	if (schema && !(t->schema = quote_ident(schema)))
		return KG_ENOMEM;
	const char *pre = t->schema ? t->schema : "";
	size_t n = strlen(pre) + 32;
	t->ent = malloc(n);
	t->rel = malloc(n);
	if (!t->ent || !t->rel) {
		pg_tables_free(t);
		return KG_ENOMEM;
	}
	snprintf(t->ent, n, "%s%sgraph_entities", pre, *pre ? "." : "");
	snprintf(t->rel, n, "%s%sgraph_relations", pre, *pre ? "." : "");
	return 0;
}

void pg_tables_free(pg_tables *t)
{
	free(t->ent);
	free(t->rel);
	free(t->schema);
	memset(t, 0, sizeof(*t));
}

int pg_tables_init_shared(pg_tables *t, const char *schema) { return tables_named(t, schema); }

/*
 * The schema of a tenant in separate-schema mode: the base schema's name
 * (or "kg") and the tenant id. Quoted identifiers keep case and '-', so
 * "kg_a-b" and "kg_a_b" are distinct; names too long for PostgreSQL's
 * 63 bytes are cut and given a hash of the whole id, and are then exactly
 * 63 bytes long, longer than any uncut name, so the two kinds never meet.
 */
static void tenant_schema_name(const char *base, const char *tenant, char out[64])
{
	const char *prefix = base ? base : "kg";
	size_t n = strlen(prefix) + 1 + strlen(tenant);
	if (n <= 55) {
		snprintf(out, 64, "%s_%s", prefix, tenant);
		return;
	}
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *s = prefix; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h = (h ^ '_') * 0x100000001b3ull;
	for (const char *s = tenant; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	char full[600];
	snprintf(full, sizeof(full), "%s_%s", prefix, tenant);
	snprintf(out, 64, "%.46s_%016llx", full, (unsigned long long)h);
}

int pg_schema_tenant_tables(pg_backend *pb, const char *tenant, pg_tables *t)
{
	char name[64];
	tenant_schema_name(pb->base_schema, tenant, name);
	return tables_named(t, name);
}

int pg_sql(const pg_tables *t, const char *tmpl, char *buf, size_t cap)
{
	size_t o = 0;
	for (const char *p = tmpl; *p; p++) {
		const char *ins = NULL;
		if (p[0] == '{' && p[1] && p[2] == '}') {
			if (p[1] == 'E')
				ins = t->ent;
			else if (p[1] == 'R')
				ins = t->rel;
			else if (p[1] == 'P')
				ins = t->schema ? t->schema : "";
			else if (p[1] == 'D') /* "." after a schema, else nothing */
				ins = t->schema ? "." : "";
		}
		if (ins) {
			size_t n = strlen(ins);
			if (o + n >= cap)
				return KG_EINTERNAL;
			memcpy(buf + o, ins, n);
			o += n;
			p += 2;
			continue;
		}
		if (o + 1 >= cap)
			return KG_EINTERNAL;
		buf[o++] = *p;
	}
	buf[o] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                               */
/* ------------------------------------------------------------------ */

static const char *const CREATE_TABLES[] = {
	"CREATE TABLE {E} ("
	" id TEXT NOT NULL,"
	" tenant_id TEXT NOT NULL DEFAULT '',"
	" entity_type TEXT NOT NULL,"
	" properties JSONB NOT NULL DEFAULT '{}',"
	" embedding BYTEA,"
	" created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" source TEXT,"
	" seq BIGSERIAL,"
	" PRIMARY KEY (id, tenant_id))",
	"CREATE TABLE {R} ("
	" id TEXT NOT NULL,"
	" tenant_id TEXT NOT NULL DEFAULT '',"
	" relation_type TEXT NOT NULL,"
	" source_id TEXT NOT NULL,"
	" target_id TEXT NOT NULL,"
	" properties JSONB NOT NULL DEFAULT '{}',"
	" weight DOUBLE PRECISION DEFAULT 1.0,"
	" created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" source TEXT,"
	" seq BIGSERIAL,"
	" PRIMARY KEY (id, tenant_id))",
	/* The original's indexes. */
	"CREATE INDEX IF NOT EXISTS idx_graph_entities_type ON {E} (entity_type)",
	"CREATE INDEX IF NOT EXISTS idx_graph_entities_tenant ON {E} (tenant_id)",
	"CREATE INDEX IF NOT EXISTS idx_graph_entities_tenant_type ON {E} (tenant_id, entity_type)",
	"CREATE INDEX IF NOT EXISTS idx_graph_entities_properties ON {E} USING GIN (properties)",
	"CREATE INDEX IF NOT EXISTS idx_graph_relations_type ON {R} (relation_type)",
	"CREATE INDEX IF NOT EXISTS idx_graph_relations_source ON {R} (source_id)",
	"CREATE INDEX IF NOT EXISTS idx_graph_relations_target ON {R} (target_id)",
	"CREATE INDEX IF NOT EXISTS idx_graph_relations_tenant_source ON {R} (tenant_id, source_id)",
	"CREATE INDEX IF NOT EXISTS idx_graph_relations_tenant_target ON {R} (tenant_id, target_id)",
	"CREATE INDEX IF NOT EXISTS idx_graph_relations_properties ON {R} USING GIN (properties)",
};

/* What kgstore adds to a table pair, made by it or by the original. */
static const char *const UPGRADE_TABLES[] = {
	"ALTER TABLE {E} ADD COLUMN IF NOT EXISTS source TEXT",
	"ALTER TABLE {E} ADD COLUMN IF NOT EXISTS seq BIGSERIAL",
	"ALTER TABLE {R} ADD COLUMN IF NOT EXISTS source TEXT",
	"ALTER TABLE {R} ADD COLUMN IF NOT EXISTS seq BIGSERIAL",
	"CREATE INDEX IF NOT EXISTS idx_graph_entities_tenant_seq ON {E} (tenant_id, seq)",
	"CREATE INDEX IF NOT EXISTS idx_graph_relations_tenant_seq ON {R} (tenant_id, seq)",
};

static const char *const RLS_TABLES[] = {
	"ALTER TABLE {E} ENABLE ROW LEVEL SECURITY",
	"ALTER TABLE {R} ENABLE ROW LEVEL SECURITY",
	"DROP POLICY IF EXISTS kg_tenant_isolation ON {E}",
	"DROP POLICY IF EXISTS kg_tenant_isolation ON {R}",
	/* Unset setting: NULL, which matches no row. */
	"CREATE POLICY kg_tenant_isolation ON {E}"
	" USING (tenant_id = current_setting('app.current_tenant_id', true))"
	" WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true))",
	"CREATE POLICY kg_tenant_isolation ON {R}"
	" USING (tenant_id = current_setting('app.current_tenant_id', true))"
	" WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true))",
};

/*
 * Row-level security hides every other tenant's rows from a role that does
 * not own the tables, so such a role cannot list tenants by reading them
 * (and a migration or a verify as that role would silently skip them all).
 * The tables' owner bypasses the policies; this function runs as the owner
 * (SECURITY DEFINER) and returns the tenant ids only, never rows. Any role
 * with USAGE on the schema may call it (EXECUTE is PUBLIC by default; a
 * DBA who wants tenant names hidden too revokes it, and listing then fails
 * with a clear error). The search path is pinned so callers cannot swap in
 * objects of their own.
 */
static const char TENANT_LISTER_NAME[] = "{P}{D}kg_list_tenants";
static const char TENANT_LISTER[] =
	"CREATE OR REPLACE FUNCTION {P}{D}kg_list_tenants() RETURNS SETOF text"
	" LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $kg_list_tenants$"
	" WITH RECURSIVE t(id) AS ("
	"  SELECT min(tenant_id) FROM {E} WHERE tenant_id > ''"
	"  UNION ALL"
	"  SELECT (SELECT min(tenant_id) FROM {E} WHERE tenant_id > t.id) FROM t WHERE t.id IS NOT NULL)"
	" SELECT id FROM t WHERE id IS NOT NULL $kg_list_tenants$";

/* One query tells whether the tables are there and complete. */
static const char *const CHECK_TABLES =
	"SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL,"
	" (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1)"
	"   AND attname IN ('source', 'seq') AND NOT attisdropped),"
	" (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($2)"
	"   AND attname IN ('source', 'seq') AND NOT attisdropped),"
	" (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass($2)"
	"   AND attname = 'weight' AND NOT attisdropped),"
	" (SELECT count(*) FROM pg_policies WHERE policyname = 'kg_tenant_isolation'"
	"   AND (schemaname, tablename) IN (SELECT n.nspname, c.relname FROM pg_class c"
	"     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid IN (to_regclass($1), to_regclass($2)))),"
	" (SELECT count(*) FROM pg_indexes WHERE indexname IN ('idx_graph_entities_tenant_seq',"
	"   'idx_graph_relations_tenant_seq') AND (schemaname, tablename) IN (SELECT n.nspname, c.relname"
	"   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	"   WHERE c.oid IN (to_regclass($1), to_regclass($2)))),"
	" $3::text IS NULL OR to_regclass($3) IS NOT NULL,"
	" (SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = 'kg_embedding_vector_sync'),"
	" to_regprocedure($4) IS NOT NULL,"
	" to_regclass($1) IS NULL OR pg_has_role((SELECT relowner FROM pg_class WHERE oid = to_regclass($1)), 'USAGE')";

typedef struct table_state {
	int have_ent, have_rel, ent_cols, rel_cols, weight_double, policies, seq_indexes, registry, vector_trigger;
	int tenant_lister; /* kg_list_tenants() exists */
	int owner;         /* this role owns the tables (or they do not exist yet) */
} table_state;

static int check_tables(kg_pg_conn *k, kg_call *c, const pg_tables *t, const char *registry, table_state *st)
{
	pg_params p = { 0 };
	int rc;
	pg_param_text(&p, t->ent);
	pg_param_text(&p, t->rel);
	pg_param_text(&p, registry);
	char lister[512];
	pg_sql(t, TENANT_LISTER_NAME, lister, sizeof(lister) - 2);
	strcat(lister, "()");
	pg_param_text(&p, lister);
	PGresult *r = pg_exec(k, c, CHECK_TABLES, &p, &rc, "checking the kgstore tables");
	if (!r)
		return rc;
	const char *wt = pg_get_text(r, 0, 4);
	*st = (table_state){
		pg_get_bool(r, 0, 0), pg_get_bool(r, 0, 1), (int)pg_get_int8(r, 0, 2), (int)pg_get_int8(r, 0, 3),
		wt && !strcmp(wt, "double precision"), (int)pg_get_int8(r, 0, 5), (int)pg_get_int8(r, 0, 6),
		pg_get_bool(r, 0, 7), (int)pg_get_int8(r, 0, 8), pg_get_bool(r, 0, 9), pg_get_bool(r, 0, 10),
	};
	PQclear(r);
	return 0;
}

static int run_all(kg_pg_conn *k, kg_call *c, const pg_tables *t, const char *const *stmts, size_t n)
{
	char sql[1024];
	for (size_t i = 0; i < n; i++) {
		int rc = pg_sql(t, stmts[i], sql, sizeof(sql));
		if (rc < 0)
			return kg_call_error(c, rc, "schema statement too long for %s", t->ent);
		if ((rc = pg_exec_simple(k, c, sql, "setting up the kgstore tables")) < 0)
			return rc;
	}
	return 0;
}

static int state_complete(const table_state *st, int want_rls, int want_vector)
{
	if (want_vector && !st->vector_trigger)
		return 0;
	/* Only the owner can add the tenant lister to tables made by an older
	 * kgstore; any other role works without it (listing tenants then fails
	 * with a message saying so) rather than failing to open. */
	if (want_rls && !st->tenant_lister && st->owner)
		return 0;
	return st->have_ent && st->have_rel && st->ent_cols == 2 && st->rel_cols == 2 && st->weight_double &&
	       st->seq_indexes == 2 && (!want_rls || st->policies == 2) && st->registry;
}

/* Creates what is missing, under the advisory lock; `k` is a connection
 * outside any transaction. `tenant` (separate-schema mode) is registered
 * with its schema in the same transaction; NULL for the shared tables. */
int pg_schema_setup(pg_backend *pb, kg_pg_conn *k, kg_call *c, pg_tables *t, const char *tenant)
{
	table_state st;
	char sql[1024], registry[512];
	int want_rls = pb->tenancy == PG_TENANCY_RLS && !tenant;
	int want_registry = pb->tenancy == PG_TENANCY_SCHEMA && !tenant;
	pg_sql(&pb->shared, "{P}{D}kg_tenant_schemas", registry, sizeof(registry));
	int rc = check_tables(k, c, t, want_registry ? registry : NULL, &st);
	if (rc < 0)
		return rc;
	if (state_complete(&st, want_rls, pb->pgvector)) {
		t->ready = 1;
		return 0;
	}
	if ((rc = pg_exec_simple(k, c, "BEGIN", "setting up the kgstore tables")) < 0)
		return rc;
	if ((rc = pg_exec_simple(k, c, KG_SCHEMA_LOCK, "waiting for another process's schema set-up")) < 0)
		goto fail;
	/* Another process may have done it while this one waited. */
	if ((rc = check_tables(k, c, t, want_registry ? registry : NULL, &st)) < 0)
		goto fail;
	if (t->schema) {
		snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", t->schema);
		if ((rc = pg_exec_simple(k, c, sql, "creating a kgstore schema")) < 0)
			goto fail;
	}
	if (!st.have_ent && !st.have_rel) {
		if ((rc = run_all(k, c, t, CREATE_TABLES, sizeof(CREATE_TABLES) / sizeof(CREATE_TABLES[0]))) < 0)
			goto fail;
	} else if (!st.have_ent || !st.have_rel) {
		rc = kg_call_error(c, KG_ECORRUPT,
		                   "%s exists but %s does not: this database holds half of the graph tables; "
		                   "restore the missing table or drop the other one",
		                   st.have_ent ? t->ent : t->rel, st.have_ent ? t->rel : t->ent);
		goto fail;
	}
	if ((rc = run_all(k, c, t, UPGRADE_TABLES, sizeof(UPGRADE_TABLES) / sizeof(UPGRADE_TABLES[0]))) < 0)
		goto fail;
	if (st.have_rel && !st.weight_double) {
		pg_sql(t, "ALTER TABLE {R} ALTER COLUMN weight TYPE DOUBLE PRECISION", sql, sizeof(sql));
		if ((rc = pg_exec_simple(k, c, sql, "widening graph_relations.weight to double precision")) < 0)
			goto fail;
	}
	if (want_rls && st.policies != 2 &&
	    (rc = run_all(k, c, t, RLS_TABLES, sizeof(RLS_TABLES) / sizeof(RLS_TABLES[0]))) < 0)
		goto fail;
	if (want_rls && !st.tenant_lister) {
		const char *lister = TENANT_LISTER;
		if (strstr(t->ent, "$kg_list_tenants$")) {
			rc = kg_call_error(c, KG_EINVAL, "schema name %s cannot hold \"$kg_list_tenants$\"", t->schema);
			goto fail;
		}
		if ((rc = run_all(k, c, t, &lister, 1)) < 0)
			goto fail;
	}
	if (pb->pgvector && !st.vector_trigger && (rc = pg_vector_setup_tables(k, c, t)) < 0)
		goto fail;
	if (want_registry) {
		snprintf(sql, sizeof(sql),
		         "CREATE TABLE IF NOT EXISTS %s (tenant_id TEXT PRIMARY KEY, schema_name TEXT NOT NULL)", registry);
		if ((rc = pg_exec_simple(k, c, sql, "creating the tenant registry")) < 0)
			goto fail;
	}
	if (tenant) {
		char name[64];
		tenant_schema_name(pb->base_schema, tenant, name);
		snprintf(sql, sizeof(sql),
		         "INSERT INTO %s (tenant_id, schema_name) VALUES ($1, $2) ON CONFLICT DO NOTHING", registry);
		pg_params p = { 0 };
		pg_param_text(&p, tenant);
		pg_param_text(&p, name);
		PGresult *r = pg_exec(k, c, sql, &p, &rc, "registering a tenant schema");
		PQclear(r);
		if (rc < 0)
			goto fail;
	}
	if ((rc = pg_exec_simple(k, c, "COMMIT", "setting up the kgstore tables")) < 0)
		return rc;
	t->ready = 1;
	return 0;
fail:
	pg_exec_simple(k, c, "ROLLBACK", "rolling back the schema set-up");
	return rc;
}

/* ------------------------------------------------------------------ */
/* Tenants                                                              */
/* ------------------------------------------------------------------ */

int pg_set_tenant(kg_pg_conn *k, kg_call *c, const char *tenant)
{
	if (k->tenant_setting && !strcmp(k->tenant_setting, tenant))
		return 0;
	free(k->tenant_setting);
	k->tenant_setting = NULL;
	pg_params p = { 0 };
	int rc;
	pg_param_text(&p, tenant);
	/* A parameter, never text pasted into SQL (the original's injection). */
	PGresult *r = pg_exec(k, c, "SELECT set_config('app.current_tenant_id', $1, false)", &p, &rc,
	                      "setting app.current_tenant_id");
	if (!r)
		return rc;
	PQclear(r);
	if (!(k->tenant_setting = strdup(tenant)))
		return kg_call_error(c, KG_ENOMEM, "out of memory");
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One block: the pointer array, then the strings. */
static int tenants_block(PGresult *r, int col, const int *keep, char ***out, size_t *n)
{
	size_t count = 0, bytes = 0;
	int rows = PQntuples(r);
	for (int i = 0; i < rows; i++)
		if (!keep || keep[i]) {
			count++;
			bytes += strlen(PQgetvalue(r, i, col)) + 1;
		}
	char **v = malloc(count * sizeof(char *) + bytes + 1);
	if (!v)
		return KG_ENOMEM;
	char *cursor = (char *)(v + count);
	size_t j = 0;
	for (int i = 0; i < rows; i++) {
		if (keep && !keep[i])
			continue;
		size_t len = strlen(PQgetvalue(r, i, col)) + 1;
		memcpy(cursor, PQgetvalue(r, i, col), len);
		v[j++] = cursor;
		cursor += len;
	}
	qsort(v, count, sizeof(char *), str_cmp);
	*out = v;
	*n = count;
	return 0;
}

/* Shared tables: the distinct tenant ids, by a loose index scan (one index
 * probe per tenant rather than reading every row). */
static const char LIST_TENANTS_SHARED[] =
	"WITH RECURSIVE t(id) AS ("
	" SELECT min(tenant_id) FROM {E} WHERE tenant_id > ''"
	" UNION ALL"
	" SELECT (SELECT min(tenant_id) FROM {E} WHERE tenant_id > t.id) FROM t WHERE t.id IS NOT NULL)"
	" SELECT id FROM t WHERE id IS NOT NULL";

/*
 * Shared tables: the query that lists every tenant for this role. Rows the
 * role cannot see would make tenants vanish from the list, and a migration
 * or verify would skip them without a word, so when row-level security
 * applies to this role the list comes from kg_list_tenants() (run as the
 * owner), and when that cannot see everything either, listing fails.
 */
static int rls_list_query(pg_backend *pb, pg_use *u, kg_call *c, char *sql, size_t cap)
{
	char lister[512];
	int rc;
	pg_sql(&pb->shared, TENANT_LISTER_NAME, lister, sizeof(lister) - 2);
	strcat(lister, "()");
	pg_params p = { 0 };
	pg_param_text(&p, pb->shared.ent);
	pg_param_text(&p, lister);
	/* Row security applies to this role; the function exists and this role
	 * may run it; the owner itself is subject to row security (FORCE ROW
	 * LEVEL SECURITY, without BYPASSRLS). */
	PGresult *r = pg_run(u, c,
	                     "SELECT row_security_active(to_regclass($1)),"
	                     " to_regprocedure($2) IS NOT NULL"
	                     "  AND has_function_privilege(to_regprocedure($2), 'EXECUTE'),"
	                     " (SELECT c.relforcerowsecurity AND NOT (o.rolsuper OR o.rolbypassrls)"
	                     "  FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner WHERE c.oid = to_regclass($1))",
	                     &p, &rc, "checking who may list tenants");
	if (!r)
		return rc;
	int hidden = pg_get_bool(r, 0, 0), lister_ok = pg_get_bool(r, 0, 1), owner_hidden = pg_get_bool(r, 0, 2);
	PQclear(r);
	if (!hidden) {
		pg_sql(&pb->shared, LIST_TENANTS_SHARED, sql, cap);
		return 0;
	}
	if (owner_hidden)
		return kg_call_error(c, KG_EUNSUPPORTED,
		                     "cannot list tenants: row-level security is forced on %s for its owner too "
		                     "(FORCE ROW LEVEL SECURITY), so no role can see every tenant; connect as a role "
		                     "with BYPASSRLS, or ALTER TABLE ... NO FORCE ROW LEVEL SECURITY",
		                     pb->shared.ent);
	if (!lister_ok)
		return kg_call_error(c, KG_EUNSUPPORTED,
		                     "cannot list tenants: row-level security hides other tenants' rows from this role, "
		                     "and the function %s() that lists them is missing or not executable by it; open "
		                     "the store once as the tables' owner (kgstore init) to create it and GRANT EXECUTE "
		                     "on it, or connect as the owner",
		                     lister);
	snprintf(sql, cap, "SELECT * FROM %s", lister);
	return 0;
}

int pg_schema_list_tenants(pg_backend *pb, kg_call *c, char ***out, size_t *n)
{
	pg_use u;
	char *sql = NULL;
	int *keep = NULL;
	PGresult *r = NULL, *r2 = NULL;
	int rc = pg_use_begin(pb, c, 0, &u);
	if (rc < 0)
		return rc;
	size_t cap = 4096;
	if (!(sql = malloc(cap))) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
		goto cleanup;
	}
	if (pb->tenancy != PG_TENANCY_SCHEMA) {
		if ((rc = rls_list_query(pb, &u, c, sql, cap)) < 0)
			goto cleanup;
		if (!(r = pg_run(&u, c, sql, NULL, &rc, "listing tenants")))
			goto cleanup;
		if (tenants_block(r, 0, NULL, out, n) < 0)
			rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
		goto cleanup;
	}
	/* Separate schemas: the registered ones whose tables hold rows. */
	pg_sql(&pb->shared, "SELECT tenant_id, schema_name FROM {P}{D}kg_tenant_schemas", sql, cap);
	if (!(r = pg_run(&u, c, sql, NULL, &rc, "listing tenants")))
		goto cleanup;
	int rows = PQntuples(r);
	if (!(keep = calloc((size_t)rows + 1, sizeof(int)))) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
		goto cleanup;
	}
	/* In chunks, one query each: SELECT i WHERE EXISTS (...) UNION ALL ... */
	for (int start = 0; start < rows; start += 100) {
		size_t o = 0;
		int end = start + 100 < rows ? start + 100 : rows;
		for (int i = start; i < end; i++) {
			char *q = quote_ident(PQgetvalue(r, i, 1));
			if (!q) {
				rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
				goto cleanup;
			}
			size_t need = o + strlen(q) + 128;
			if (need > cap) {
				char *bigger = realloc(sql, need * 2);
				if (!bigger) {
					free(q);
					rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
					goto cleanup;
				}
				sql = bigger;
				cap = need * 2;
			}
			o += (size_t)snprintf(sql + o, cap - o, "%sSELECT %d WHERE EXISTS (SELECT 1 FROM %s.graph_entities)",
			                      i > start ? " UNION ALL " : "", i, q);
			free(q);
		}
		PQclear(r2);
		if (!(r2 = pg_run(&u, c, sql, NULL, &rc, "listing tenants")))
			goto cleanup;
		for (int j = 0; j < PQntuples(r2); j++) {
			int idx = pg_get_int4(r2, j, 0);
			if (idx >= 0 && idx < rows)
				keep[idx] = 1;
		}
	}
	if (tenants_block(r, 0, keep, out, n) < 0)
		rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
cleanup:
	PQclear(r);
	PQclear(r2);
	free(keep);
	free(sql);
	pg_use_end(&u);
	return rc;
}
