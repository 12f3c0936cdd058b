/*
 * unit_sqlite_tenant_tables.c - the SQLite backend's "tables" tenancy (the
 * original's "separate schema" mode): tenant T lives in
 * tenant_<T, - as _>_entities / _relations without a tenant_id column, the
 * global namespace stays in entities / relations. Checked from both sides:
 * through the store API and with plain sqlite3 on the file after kg_close.
 *
 *  - the tenancy option and URI parameter, bad values refused;
 *  - where tables mode writes rows;
 *  - files written by the original in separate-schema mode read as they are
 *    (tenancy auto-detected), writes going into the same tables;
 *  - reading a tenant without tables creates nothing, nor does a failed write;
 *  - tenant ids the original maps to the same tables (a-b / a_b, Acme /
 *    acme) kept apart;
 *  - conflicting layouts refused at open with the file byte-for-byte unchanged;
 *  - isolation between tenants, kg_clear, transactions across tenants.
 */
#include <stdio.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"

static char dir[256];

static void path_of(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", dir, name);
}

static int file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Opens sqlite:PATH, with ?tenancy=T when tenancy is non-NULL. */
static int open_tenancy(const char *path, const char *tenancy, kg_store **s)
{
	char uri[700];
	if (tenancy)
		snprintf(uri, sizeof(uri), "sqlite:%s?tenancy=%s", path, tenancy);
	else
		snprintf(uri, sizeof(uri), "sqlite:%s", path);
	return kg_open(uri, s);
}

/* Runs a script with plain sqlite3 (the original's side of the file). */
static int plain_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		fprintf(stderr, "plain sqlite3 on %s: %s\n", path, db ? sqlite3_errmsg(db) : "open failed");
	sqlite3_close(db);
	return rc;
}

/* First column of the first row of `sql` as an integer, read with plain
 * sqlite3 opened read-only; -1 if the query fails or returns no row. */
static long long plain_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		fprintf(stderr, "plain query '%s': %s\n", sql, db ? sqlite3_errmsg(db) : "open failed");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* First column of the first row as text into buf ("" if NULL, "(error)" if
 * the query fails or returns no row). */
static const char *plain_text(const char *path, const char *sql, char *buf, size_t cap)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	snprintf(buf, cap, "(error)");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(buf, cap, "%s", t ? (const char *)t : "");
	} else {
		fprintf(stderr, "plain query '%s': %s\n", sql, db ? sqlite3_errmsg(db) : "open failed");
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return buf;
}

/* Number of schema objects (tables, indexes, triggers) whose name holds
 * tenant_<mapped>_ (kgstore's indexes are idx_tenant_<mapped>_...). */
static long long tenant_objects(const char *path, const char *mapped)
{
	char esc[300], sql[500];
	size_t j = 0;
	for (const char *p = mapped; *p && j + 3 < sizeof(esc); p++) {
		if (*p == '_' || *p == '%' || *p == '\\')
			esc[j++] = '\\';
		esc[j++] = *p;
	}
	esc[j] = '\0';
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM sqlite_master WHERE name LIKE '%%tenant\\_%s\\_%%' ESCAPE '\\'", esc);
	return plain_int(path, sql);
}

static int table_exists(const char *path, const char *name)
{
	char sql[300];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
	return plain_int(path, sql) == 1;
}

/* The whole file, malloc'd (caller frees); NULL if it cannot be read. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = buf ? (size_t)n : 0;
	return buf;
}

/* A new file `name` in the test directory (its path into path), opened
 * with tenancy=tables. NULL, counted as a failed check, if it cannot be. */
static kg_store *open_new_tables(const char *name, char *path, size_t cap)
{
	kg_store *s = NULL;
	path_of(path, cap, name);
	th_remove_sqlite(path);
	int rc = open_tenancy(path, "tables", &s);
	CHECK_OK(s, rc);
	if (rc != 0) {
		kg_close(s); /* the handle that carries the message */
		return NULL;
	}
	return s;
}

static int add_e(kg_store *s, const char *id, const char *type, const char *props)
{
	kg_entity e = { .id = id, .entity_type = type, .properties = props };
	return kg_add_entity(s, &e);
}

static int add_r(kg_store *s, const char *id, const char *type, const char *src, const char *dst, double w)
{
	kg_relation r = KG_RELATION_INIT;
	r.id = id;
	r.relation_type = type;
	r.source_id = src;
	r.target_id = dst;
	r.weight = w;
	return kg_add_relation(s, &r);
}

static int list_has(const kg_entity_list *l, const char *id)
{
	for (size_t i = 0; l && i < l->count; i++)
		if (!strcmp(l->items[i]->id, id))
			return 1;
	return 0;
}

static int tenants_have(char **t, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i], id))
			return 1;
	return 0;
}

static size_t count_entities(kg_store *s)
{
	kg_entity_list *l = NULL;
	size_t n = (size_t)-1;
	if (kg_list_entities(s, NULL, 0, 0, &l) == 0)
		n = l->count;
	kg_entity_list_free(l);
	return n;
}

/* The original's shared tables, with global rows only (no tenant rows). */
static const char ORIGINAL_DDL[] =
	"CREATE TABLE entities (id TEXT NOT NULL, tenant_id TEXT, entity_type TEXT NOT NULL, properties TEXT NOT NULL, "
	"embedding BLOB, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
	"PRIMARY KEY (id, tenant_id));"
	"CREATE TABLE relations (id TEXT NOT NULL, tenant_id TEXT, relation_type TEXT NOT NULL, source_id TEXT NOT NULL, "
	"target_id TEXT NOT NULL, properties TEXT NOT NULL, weight REAL DEFAULT 1.0, created_at TIMESTAMP DEFAULT "
	"CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (id, tenant_id));"
	"CREATE INDEX idx_entities_type ON entities(entity_type);"
	"CREATE INDEX idx_entities_tenant ON entities(tenant_id);"
	"INSERT INTO entities (id, tenant_id, entity_type, properties, embedding) VALUES "
	"('alice', NULL, 'Person', '{\"name\": \"Alice\"}', X'0000803F000000C0'),"
	"('bob', NULL, 'Person', '{}', NULL);"
	"INSERT INTO relations (id, tenant_id, relation_type, source_id, target_id, properties, weight) VALUES "
	"('r1', NULL, 'KNOWS', 'alice', 'bob', '{\"since\": 2001}', 0.0);";

/* Rows of tenant t1 in the original's shared layout (for conflicting files). */
static const char SHARED_T1_ROWS[] =
	"INSERT INTO entities (id, tenant_id, entity_type, properties) VALUES ('zed', 't1', 'Person', '{}');";

/* The original's separate-schema tables for tenant t1, with rows: carol has
 * the embedding [1.0, -2.0] as little-endian float32; t1r2 takes the
 * default weight. */
static const char ORIGINAL_T1_TABLES[] =
	"CREATE TABLE tenant_t1_entities (id TEXT PRIMARY KEY, entity_type TEXT NOT NULL, properties TEXT NOT NULL, "
	"embedding BLOB, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT "
	"CURRENT_TIMESTAMP);"
	"CREATE TABLE tenant_t1_relations (id TEXT PRIMARY KEY, relation_type TEXT NOT NULL, source_id TEXT NOT NULL, "
	"target_id TEXT NOT NULL, properties TEXT NOT NULL, weight REAL DEFAULT 1.0, created_at TIMESTAMP DEFAULT "
	"CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);"
	"INSERT INTO tenant_t1_entities (id, entity_type, properties, embedding) VALUES "
	"('carol', 'Person', '{\"name\": \"Carol\", \"city\": \"Paris\"}', X'0000803F000000C0'),"
	"('dave', 'Person', '{\"name\": \"Dave\"}', NULL),"
	"('acme', 'Company', '{\"name\": \"Acme Corp\"}', NULL);"
	"INSERT INTO tenant_t1_relations (id, relation_type, source_id, target_id, properties, weight) VALUES "
	"('t1r1', 'KNOWS', 'carol', 'dave', '{\"since\": 2010}', 0.5);"
	"INSERT INTO tenant_t1_relations (id, relation_type, source_id, target_id, properties) VALUES "
	"('t1r2', 'WORKS_FOR', 'dave', 'acme', '{}');";

/* 1. The option and the URI parameter; other values refused, nothing made. */
static void test_option_values(void)
{
	char path[512];
	kg_store *s = NULL;
	path_of(path, sizeof(path), "opt.db");
	th_remove_sqlite(path);

	CHECK_RC(s, open_tenancy(path, "schema", &s), KG_EINVAL);
	CHECK(s != NULL);
	if (s) {
		CHECK(strstr(kg_errmsg(s), "shared") && strstr(kg_errmsg(s), "tables"));
		CHECK(strstr(kg_errmsg(s), "schema") != NULL); /* names the bad value */
	}
	kg_close(s);
	s = NULL;
	CHECK(!file_exists(path)); /* a refused open makes no file */

	kg_options o = KG_OPTIONS_INIT;
	o.backend = KG_BACKEND_SQLITE;
	o.path = path;
	o.tenancy = "Tables"; /* values are exact words */
	CHECK_RC(s, kg_open_options(&o, &s), KG_EINVAL);
	if (s)
		CHECK(strstr(kg_errmsg(s), "shared") && strstr(kg_errmsg(s), "tables"));
	kg_close(s);
	s = NULL;
	o.tenancy = "";
	CHECK_RC(s, kg_open_options(&o, &s), KG_EINVAL);
	kg_close(s);
	s = NULL;
	CHECK(!file_exists(path));

	/* The accepted values, through kg_options. */
	o.tenancy = "tables";
	CHECK_OK(s, kg_open_options(&o, &s));
	if (s) {
		kg_store *v = NULL;
		CHECK_OK(s, kg_tenant(s, "opt", &v));
		CHECK_OK(v, add_e(v, "e", "T", "{}"));
		kg_close(v);
	}
	kg_close(s);
	s = NULL;
	CHECK(table_exists(path, "tenant_opt_entities"));
	th_remove_sqlite(path);

	o.tenancy = "shared";
	CHECK_OK(s, kg_open_options(&o, &s));
	if (s) {
		kg_store *v = NULL;
		CHECK_OK(s, kg_tenant(s, "opt", &v));
		CHECK_OK(v, add_e(v, "e", "T", "{}"));
		kg_close(v);
	}
	kg_close(s);
	s = NULL;
	CHECK(tenant_objects(path, "opt") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM entities WHERE tenant_id = 'opt'") == 1);
	th_remove_sqlite(path);

	/* In-memory SQLite takes it too. */
	CHECK_OK(s, kg_open("sqlite::memory:?tenancy=tables", &s));
	if (s) {
		kg_store *v = NULL;
		kg_entity *e = NULL;
		CHECK_OK(s, kg_tenant(s, "m-1", &v));
		CHECK_OK(v, add_e(v, "e", "T", "{\"k\": 1}"));
		CHECK_OK(v, kg_get_entity(v, "e", &e));
		if (e)
			CHECK(e->tenant_id && !strcmp(e->tenant_id, "m-1"));
		kg_entity_free(e);
		e = NULL;
		CHECK_RC(s, kg_get_entity(s, "e", &e), KG_ENOTFOUND);
		kg_close(v);
	}
	kg_close(s);
}

/* 2. Where tables mode puts rows, read with plain sqlite3. */
static void test_tables_mode_layout(void)
{
	char path[512], buf[256];
	kg_store *s = open_new_tables("layout.db", path, sizeof(path)), *v = NULL;
	if (!s)
		return;
	CHECK_OK(s, kg_tenant(s, "acme-eu", &v));
	float emb[2] = { 0.5f, 4.0f };
	kg_entity e1 = { .id = "e1", .entity_type = "Person", .properties = "{\"name\":\"Eve\"}", .embedding = emb,
		             .embedding_dim = 2 };
	CHECK_OK(v, kg_add_entity(v, &e1));
	CHECK_OK(v, add_e(v, "e2", "Company", "{}"));
	CHECK_OK(v, add_r(v, "r1", "WORKS_FOR", "e1", "e2", 0.25));
	CHECK_OK(s, add_e(s, "g1", "Global", "{}"));
	CHECK_OK(s, add_e(s, "g2", "Global", "{}"));
	CHECK_OK(s, add_r(s, "gr", "LINK", "g1", "g2", 1.0));
	/* The same ids in the global namespace and the tenant do not clash. */
	CHECK_OK(s, add_e(s, "e1", "Global", "{}"));
	kg_close(v);
	kg_close(s);

	CHECK(table_exists(path, "tenant_acme_eu_entities"));
	CHECK(table_exists(path, "tenant_acme_eu_relations"));
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_acme_eu_entities") == 2);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_acme_eu_relations") == 1);
	CHECK(plain_int(path, "SELECT count(*) FROM entities WHERE tenant_id IS NOT NULL") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM relations WHERE tenant_id IS NOT NULL") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM entities WHERE tenant_id IS NULL") == 3);
	CHECK(plain_int(path, "SELECT count(*) FROM relations WHERE tenant_id IS NULL") == 1);
	/* The original's columns, without tenant_id. */
	CHECK(plain_int(path, "SELECT count(*) FROM pragma_table_info('tenant_acme_eu_entities') WHERE name IN "
	                      "('id','entity_type','properties','embedding','created_at','updated_at')") == 6);
	CHECK(plain_int(path, "SELECT count(*) FROM pragma_table_info('tenant_acme_eu_relations') WHERE name IN "
	                      "('id','relation_type','source_id','target_id','properties','weight','created_at',"
	                      "'updated_at')") == 8);
	CHECK(plain_int(path, "SELECT count(*) FROM pragma_table_info('tenant_acme_eu_entities') "
	                      "WHERE name = 'tenant_id'") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM pragma_table_info('tenant_acme_eu_relations') "
	                      "WHERE name = 'tenant_id'") == 0);
	CHECK(plain_int(path, "SELECT pk FROM pragma_table_info('tenant_acme_eu_entities') WHERE name = 'id'") == 1);
	/* The values in the original's encodings. */
	CHECK_STR(plain_text(path, "SELECT hex(embedding) FROM tenant_acme_eu_entities WHERE id = 'e1'", buf,
	                     sizeof(buf)),
	          "0000003F00008040");
	CHECK_STR(plain_text(path, "SELECT entity_type FROM tenant_acme_eu_entities WHERE id = 'e1'", buf, sizeof(buf)),
	          "Person");
	CHECK(strstr(plain_text(path, "SELECT properties FROM tenant_acme_eu_entities WHERE id = 'e1'", buf,
	                        sizeof(buf)),
	             "Eve") != NULL);
	CHECK_STR(plain_text(path, "SELECT source_id || '>' || target_id || ':' || weight FROM tenant_acme_eu_relations",
	                     buf, sizeof(buf)),
	          "e1>e2:0.25");
	CHECK(tenant_objects(path, "acme_eu") >= 2);
	CHECK(plain_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'tenant\\_%' "
	                      "ESCAPE '\\'") == 2);

	/* Reopened without the option: tables mode is detected, "acme-eu" is
	 * still the tenant of those tables. */
	s = NULL;
	CHECK_OK(s, open_tenancy(path, NULL, &s));
	if (s) {
		v = NULL;
		CHECK_OK(s, kg_tenant(s, "acme-eu", &v));
		kg_entity *e = NULL;
		CHECK_OK(v, kg_get_entity(v, "e1", &e));
		if (e) {
			CHECK(e->embedding_dim == 2 && e->embedding && e->embedding[0] == 0.5f && e->embedding[1] == 4.0f);
			CHECK(e->tenant_id && !strcmp(e->tenant_id, "acme-eu"));
			CHECK_STR(e->entity_type, "Person");
		}
		kg_entity_free(e);
		e = NULL;
		CHECK_OK(s, kg_get_entity(s, "e1", &e));
		if (e) {
			CHECK_STR(e->entity_type, "Global");
			CHECK(e->tenant_id == NULL);
		}
		kg_entity_free(e);
		kg_relation *r = NULL;
		CHECK_OK(v, kg_get_relation(v, "r1", &r));
		if (r)
			CHECK(r->weight == 0.25);
		kg_relation_free(r);
		CHECK(count_entities(v) == 2);
		CHECK(count_entities(s) == 3);
		char **ten = NULL;
		size_t nt = 0;
		CHECK_OK(s, kg_list_tenants(s, &ten, &nt));
		CHECK(nt == 1 && tenants_have(ten, nt, "acme-eu"));
		free(ten);
		/* Writes after the reopen land in the same tables. */
		CHECK_OK(v, add_e(v, "e3", "Person", "{}"));
		kg_close(v);
		kg_close(s);
		CHECK(plain_int(path, "SELECT count(*) FROM tenant_acme_eu_entities") == 3);
	}
	th_remove_sqlite(path);
}

/* 3. A file of the original in separate-schema mode, read as it is. */
static void test_original_separate_schema(void)
{
	char path[512], buf[256];
	path_of(path, sizeof(path), "separate.db");
	th_remove_sqlite(path);
	CHECK(plain_exec(path, ORIGINAL_DDL) == SQLITE_OK);
	CHECK(plain_exec(path, ORIGINAL_T1_TABLES) == SQLITE_OK);

	kg_store *s = NULL, *t1 = NULL;
	CHECK_OK(s, open_tenancy(path, NULL, &s)); /* tenancy detected from the tables */
	if (!s)
		return;
	CHECK_OK(s, kg_tenant(s, "t1", &t1));

	char **ten = NULL;
	size_t nt = 0;
	CHECK_OK(s, kg_list_tenants(s, &ten, &nt));
	CHECK(nt == 1 && ten && !strcmp(ten[0], "t1"));
	free(ten);

	kg_entity *e = NULL;
	CHECK_OK(t1, kg_get_entity(t1, "carol", &e));
	if (e) {
		CHECK(e->embedding_dim == 2 && e->embedding && e->embedding[0] == 1.0f && e->embedding[1] == -2.0f);
		CHECK(e->properties && strstr(e->properties, "Carol") && strstr(e->properties, "Paris"));
		CHECK_STR(e->entity_type, "Person");
		CHECK(e->tenant_id && !strcmp(e->tenant_id, "t1"));
		CHECK(e->created_at > 0); /* CURRENT_TIMESTAMP text, read as time */
	}
	kg_entity_free(e);
	e = NULL;
	CHECK_RC(s, kg_get_entity(s, "carol", &e), KG_ENOTFOUND); /* not global */
	CHECK_RC(t1, kg_get_entity(t1, "alice", &e), KG_ENOTFOUND); /* not t1's */
	CHECK_OK(s, kg_get_entity(s, "alice", &e));
	kg_entity_free(e);
	e = NULL;

	kg_relation *r = NULL;
	CHECK_OK(t1, kg_get_relation(t1, "t1r1", &r));
	if (r) {
		CHECK(r->weight == 0.5);
		CHECK_STR(r->source_id, "carol");
		CHECK_STR(r->target_id, "dave");
		CHECK(r->properties && strstr(r->properties, "2010"));
	}
	kg_relation_free(r);
	r = NULL;
	CHECK_OK(t1, kg_get_relation(t1, "t1r2", &r));
	if (r)
		CHECK(r->weight == 1.0);
	kg_relation_free(r);
	r = NULL;

	kg_entity_list *l = NULL;
	CHECK_OK(t1, kg_list_entities(t1, NULL, 0, 0, &l));
	if (l) {
		CHECK(l->count == 3);
		if (l->count == 3) /* insertion order */
			CHECK(!strcmp(l->items[0]->id, "carol") && !strcmp(l->items[1]->id, "dave") &&
			      !strcmp(l->items[2]->id, "acme"));
	}
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(t1, kg_list_entities(t1, "Person", 0, 0, &l));
	if (l)
		CHECK(l->count == 2 && list_has(l, "carol") && list_has(l, "dave"));
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(t1, kg_list_entities(t1, NULL, 1, 1, &l));
	if (l)
		CHECK(l->count == 1 && !strcmp(l->items[0]->id, "dave"));
	kg_entity_list_free(l);
	l = NULL;

	CHECK_OK(t1, kg_neighbors(t1, "carol", NULL, KG_OUT, &l));
	if (l)
		CHECK(l->count == 1 && list_has(l, "dave"));
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(t1, kg_neighbors(t1, "dave", NULL, KG_BOTH, &l));
	if (l)
		CHECK(l->count == 2 && list_has(l, "carol") && list_has(l, "acme"));
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(t1, kg_neighbors(t1, "dave", "WORKS_FOR", KG_OUT, &l));
	if (l)
		CHECK(l->count == 1 && list_has(l, "acme"));
	kg_entity_list_free(l);
	l = NULL;

	kg_relation_list *rl = NULL;
	CHECK_OK(t1, kg_relations_of(t1, "dave", NULL, KG_BOTH, &rl));
	if (rl)
		CHECK(rl->count == 2);
	kg_relation_list_free(rl);
	rl = NULL;

	kg_path_list *pl = NULL;
	CHECK_OK(t1, kg_find_paths(t1, "carol", "acme", 3, 0, &pl));
	if (pl) {
		CHECK(pl->count == 1);
		if (pl->count == 1) {
			kg_path *p = &pl->items[0];
			CHECK(p->n_nodes == 3 && p->n_edges == 2);
			if (p->n_nodes == 3 && p->n_edges == 2)
				CHECK(!strcmp(p->nodes[0]->id, "carol") && !strcmp(p->nodes[2]->id, "acme") &&
				      !strcmp(p->edges[0]->id, "t1r1") && !strcmp(p->edges[1]->id, "t1r2"));
		}
	}
	kg_path_list_free(pl);
	pl = NULL;
	CHECK_OK(t1, kg_traverse(t1, "carol", NULL, 2, 0, &pl));
	if (pl)
		CHECK(pl->count == 2);
	kg_path_list_free(pl);
	pl = NULL;
	/* The global namespace's paths do not see t1's relations. */
	CHECK_RC(s, kg_find_paths(s, "carol", "acme", 3, 0, &pl), KG_ENOTFOUND);
	kg_path_list_free(pl);
	pl = NULL;

	const char *ids[] = { "carol", "dave", "nobody" };
	kg_subgraph *g = NULL;
	CHECK_OK(t1, kg_subgraph_get(t1, ids, 3, &g));
	if (g)
		CHECK(g->entities && g->entities->count == 2 && g->relations && g->relations->count == 1);
	kg_subgraph_free(g);

	kg_stats *st = NULL;
	CHECK_OK(t1, kg_get_stats(t1, &st));
	if (st) {
		CHECK(st->entity_count == 3 && st->relation_count == 2);
		CHECK(st->n_entity_types == 2);
		if (st->n_entity_types == 2)
			CHECK(!strcmp(st->entity_types[0].type, "Company") && st->entity_types[0].count == 1 &&
			      !strcmp(st->entity_types[1].type, "Person") && st->entity_types[1].count == 2);
		CHECK(st->n_relation_types == 2);
	}
	kg_stats_free(st);
	st = NULL;
	CHECK_OK(s, kg_get_stats(s, &st));
	if (st)
		CHECK(st->entity_count == 2 && st->relation_count == 1);
	kg_stats_free(st);
	st = NULL;

	CHECK_OK(t1, kg_text_search(t1, "Paris", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	if (l)
		CHECK(l->count == 1 && !strcmp(l->items[0]->id, "carol"));
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(t1, kg_text_search(t1, "acme corp", NULL, 10, 0.0, KG_TEXT_JACCARD, &l));
	if (l)
		CHECK(l->count >= 1 && !strcmp(l->items[0]->id, "acme"));
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(s, kg_text_search(s, "Paris", NULL, 10, 0.0, KG_TEXT_BM25, &l)); /* not global */
	if (l)
		CHECK(l->count == 0);
	kg_entity_list_free(l);
	l = NULL;

	float q[2] = { 1.0f, -2.0f };
	CHECK_OK(t1, kg_vector_search(t1, q, 2, NULL, 5, 0.0, &l));
	if (l)
		CHECK(l->count == 1 && !strcmp(l->items[0]->id, "carol") && l->scores && l->scores[0] > 0.999);
	kg_entity_list_free(l);
	l = NULL;

	CHECK_OK(t1, kg_lookup_by_property(t1, "name", "\"Dave\"", &l));
	if (l)
		CHECK(l->count == 1 && list_has(l, "dave"));
	kg_entity_list_free(l);
	l = NULL;

	kg_entity_iter *ei = NULL;
	CHECK_OK(t1, kg_entity_iter_new(t1, NULL, &ei));
	if (ei) {
		const kg_entity *x;
		size_t n = 0;
		int rc;
		while ((rc = kg_entity_iter_next(ei, &x)) == 1)
			n++;
		CHECK(rc == 0 && n == 3);
	}
	kg_entity_iter_free(ei);
	kg_relation_iter *ri = NULL;
	CHECK_OK(t1, kg_relation_iter_new(t1, "KNOWS", &ri));
	if (ri) {
		const kg_relation *x;
		size_t n = 0;
		int rc;
		while ((rc = kg_relation_iter_next(ri, &x)) == 1)
			n++;
		CHECK(rc == 0 && n == 1);
	}
	kg_relation_iter_free(ri);

	/* Writes through the view go into the same tables. */
	CHECK_RC(t1, add_e(t1, "carol", "Person", "{}"), KG_EEXISTS);
	float emb[2] = { 0.5f, 4.0f };
	kg_entity erin = { .id = "erin", .entity_type = "Person", .properties = "{\"name\":\"Erin\"}", .embedding = emb,
		               .embedding_dim = 2 };
	CHECK_OK(t1, kg_add_entity(t1, &erin));
	CHECK_OK(t1, add_r(t1, "t1r3", "KNOWS", "carol", "erin", 0.75));
	kg_entity dave2 = { .id = "dave", .entity_type = "Person", .properties = "{\"name\":\"David\"}" };
	CHECK_OK(t1, kg_update_entity(t1, &dave2));
	CHECK_OK(t1, kg_delete_entity(t1, "acme")); /* takes t1r2 with it */
	CHECK_RC(t1, kg_get_relation(t1, "t1r2", &r), KG_ENOTFOUND);
	CHECK_OK(t1, kg_text_search(t1, "erin", NULL, 10, 0.0, KG_TEXT_BM25, &l)); /* new rows are searchable */
	if (l)
		CHECK(l->count == 1 && !strcmp(l->items[0]->id, "erin"));
	kg_entity_list_free(l);
	l = NULL;
	/* The global namespace still works, in its own tables. */
	CHECK_OK(s, add_e(s, "frank", "Person", "{}"));
	CHECK_OK(s, add_r(s, "r2", "KNOWS", "bob", "frank", 1.0));
	CHECK_RC(s, add_r(s, "bad", "KNOWS", "bob", "carol", 1.0), KG_ENOTFOUND); /* carol is t1's */
	kg_close(t1);
	kg_close(s);

	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t1_entities") == 3);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t1_entities WHERE id IN ('carol','dave','erin')") == 3);
	CHECK_STR(plain_text(path, "SELECT hex(embedding) FROM tenant_t1_entities WHERE id = 'erin'", buf, sizeof(buf)),
	          "0000003F00008040");
	CHECK(strstr(plain_text(path, "SELECT properties FROM tenant_t1_entities WHERE id = 'dave'", buf, sizeof(buf)),
	             "David") != NULL);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t1_relations") == 2);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t1_relations WHERE id IN ('t1r1','t1r3')") == 2);
	CHECK(plain_int(path, "SELECT count(*) FROM entities WHERE tenant_id IS NOT NULL") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM relations WHERE tenant_id IS NOT NULL") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM entities WHERE tenant_id IS NULL") == 3);
	CHECK(plain_int(path, "SELECT count(*) FROM relations WHERE tenant_id IS NULL") == 2);
	/* The original's tables keep their shape. */
	CHECK(plain_int(path, "SELECT count(*) FROM pragma_table_info('tenant_t1_entities') WHERE name = 'tenant_id'") ==
	      0);
	th_remove_sqlite(path);
}

/* 4. Reading a tenant that has no tables creates none; nor does a failed
 * write. */
static void test_no_tables_on_read_or_failure(void)
{
	char path[512];
	kg_store *s = open_new_tables("empty.db", path, sizeof(path)), *x = NULL, *y = NULL;
	if (!s)
		return;
	CHECK_OK(s, add_e(s, "g", "T", "{}"));
	CHECK_OK(s, kg_tenant(s, "x", &x));

	kg_entity *e = NULL;
	kg_relation *r = NULL;
	kg_entity_list *l = NULL;
	kg_relation_list *rl = NULL;
	kg_path_list *pl = NULL;
	kg_stats *st = NULL;
	CHECK_RC(x, kg_get_entity(x, "g", &e), KG_ENOTFOUND);
	CHECK_RC(x, kg_get_relation(x, "r", &r), KG_ENOTFOUND);
	CHECK_OK(x, kg_list_entities(x, NULL, 0, 0, &l));
	if (l)
		CHECK(l->count == 0);
	kg_entity_list_free(l);
	l = NULL;
	const char *ids[] = { "g" };
	CHECK_OK(x, kg_get_entities(x, ids, 1, &l));
	if (l)
		CHECK(l->count == 0);
	kg_entity_list_free(l);
	l = NULL;
	CHECK_RC(x, kg_neighbors(x, "g", NULL, KG_BOTH, &l), KG_ENOTFOUND);
	kg_entity_list_free(l);
	l = NULL;
	CHECK_RC(x, kg_relations_of(x, "g", NULL, KG_BOTH, &rl), KG_ENOTFOUND);
	kg_relation_list_free(rl);
	CHECK_RC(x, kg_find_paths(x, "g", "g", 2, 0, &pl), KG_ENOTFOUND);
	kg_path_list_free(pl);
	pl = NULL;
	CHECK_OK(x, kg_get_stats(x, &st));
	if (st)
		CHECK(st->entity_count == 0 && st->relation_count == 0 && st->n_entity_types == 0);
	kg_stats_free(st);
	CHECK_OK(x, kg_text_search(x, "g", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	if (l)
		CHECK(l->count == 0);
	kg_entity_list_free(l);
	l = NULL;
	float q[1] = { 1.0f };
	CHECK_OK(x, kg_vector_search(x, q, 1, NULL, 10, 0.0, &l));
	if (l)
		CHECK(l->count == 0);
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(x, kg_lookup_by_property(x, "name", "\"g\"", &l));
	if (l)
		CHECK(l->count == 0);
	kg_entity_list_free(l);
	l = NULL;
	kg_entity_iter *ei = NULL;
	CHECK_OK(x, kg_entity_iter_new(x, NULL, &ei));
	if (ei) {
		const kg_entity *it;
		CHECK(kg_entity_iter_next(ei, &it) == 0);
	}
	kg_entity_iter_free(ei);
	CHECK_RC(x, kg_delete_entity(x, "g"), KG_ENOTFOUND);
	CHECK_RC(x, kg_delete_relation(x, "r"), KG_ENOTFOUND);
	kg_entity ghost = { .id = "g", .entity_type = "T", .properties = "{}" };
	CHECK_RC(x, kg_update_entity(x, &ghost), KG_ENOTFOUND);
	CHECK_OK(x, kg_clear(x));
	char **ten = NULL;
	size_t nt = 0;
	CHECK_OK(s, kg_list_tenants(s, &ten, &nt));
	CHECK(nt == 0);
	free(ten);

	/* Failed first writes of tenant y. */
	CHECK_OK(s, kg_tenant(s, "y", &y));
	CHECK_RC(y, add_r(y, "r", "R", "a", "b", 1.0), KG_ENOTFOUND); /* dangling endpoints */
	CHECK_RC(y, add_e(y, "a", "T", "[1, 2]"), KG_EINVAL);          /* not a JSON object */
	kg_entity batch[2] = { { .id = "d", .entity_type = "T", .properties = "{}" },
		                   { .id = "d", .entity_type = "T", .properties = "{}" } };
	size_t added = 99;
	CHECK_RC(y, kg_add_entities(y, batch, 2, 0, &added), KG_EEXISTS); /* id twice in one batch */
	CHECK(added == 0);
	kg_relation rb[1] = { KG_RELATION_INIT };
	rb[0].id = "rr";
	rb[0].relation_type = "R";
	rb[0].source_id = "a";
	rb[0].target_id = "b";
	CHECK_RC(y, kg_add_relations(y, rb, 1, 0, &added), KG_ENOTFOUND);
	CHECK_RC(y, kg_get_entity(y, "d", &e), KG_ENOTFOUND);

	/* A failed first write of p_q leaves nothing that claims its tables: p-q
	 * may take them afterwards. */
	kg_store *pq = NULL, *pdq = NULL;
	CHECK_OK(s, kg_tenant(s, "p_q", &pq));
	CHECK_RC(pq, add_r(pq, "r", "R", "a", "b", 1.0), KG_ENOTFOUND);
	kg_close(pq);
	CHECK_OK(s, kg_tenant(s, "p-q", &pdq));
	CHECK_OK(pdq, add_e(pdq, "pe", "T", "{}"));
	kg_close(pdq);

	kg_close(y);
	kg_close(x);
	kg_close(s);
	CHECK(tenant_objects(path, "x") == 0);
	CHECK(tenant_objects(path, "y") == 0);
	CHECK(table_exists(path, "tenant_p_q_entities"));
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_p_q_entities") == 1);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_p_q_relations") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM entities WHERE tenant_id IS NOT NULL") == 0);

	/* After a reopen, still nothing for x and y; p-q owns its tables. */
	s = NULL;
	CHECK_OK(s, open_tenancy(path, NULL, &s));
	if (s) {
		kg_store *v = NULL;
		CHECK_OK(s, kg_tenant(s, "p-q", &v));
		CHECK_OK(v, kg_get_entity(v, "pe", &e));
		kg_entity_free(e);
		e = NULL;
		kg_close(v);
		ten = NULL;
		nt = 0;
		CHECK_OK(s, kg_list_tenants(s, &ten, &nt));
		CHECK(nt == 1 && tenants_have(ten, nt, "p-q"));
		free(ten);
		kg_close(s);
	}
	th_remove_sqlite(path);
}

/* Tenant `tenant` of s holds exactly the entity "x" with property
 * {"owner": tenant}: nobody else's rows, its own not lost. */
static void check_own_x(kg_store *s, const char *tenant)
{
	kg_store *v = NULL;
	CHECK_OK(s, kg_tenant(s, tenant, &v));
	if (!v)
		return;
	kg_entity_list *l = NULL;
	CHECK_OK(v, kg_list_entities(v, NULL, 0, 0, &l));
	char want[300];
	snprintf(want, sizeof(want), "\"%s\"", tenant);
	int ok = l && l->count == 1 && !strcmp(l->items[0]->id, "x") && l->items[0]->properties &&
	         strstr(l->items[0]->properties, want) && l->items[0]->tenant_id &&
	         !strcmp(l->items[0]->tenant_id, tenant);
	if (ok) {
		th_passed++;
	} else {
		th_failed++;
		fprintf(stderr, "FAIL [%s]: tenant '%s' should hold only its own x, has %zu entities (first: %s %s)\n",
		        th_current, tenant, l ? l->count : 0, l && l->count ? l->items[0]->id : "-",
		        l && l->count ? l->items[0]->properties : "-");
	}
	kg_entity_list_free(l);
	kg_stats *st = NULL;
	CHECK_OK(v, kg_get_stats(v, &st));
	if (st)
		CHECK(st->entity_count == 1 && st->relation_count == 1);
	kg_stats_free(st);
	kg_relation *r = NULL;
	CHECK_OK(v, kg_get_relation(v, "self", &r));
	kg_relation_free(r);
	kg_close(v);
}

/* Adds x {"owner": tenant} and a self-loop "self" as `tenant`. */
static void write_x(kg_store *s, const char *tenant)
{
	kg_store *v = NULL;
	char props[300];
	snprintf(props, sizeof(props), "{\"owner\": \"%s\"}", tenant);
	CHECK_OK(s, kg_tenant(s, tenant, &v));
	if (!v)
		return;
	CHECK_OK(v, add_e(v, "x", "T", props));
	CHECK_OK(v, add_r(v, "self", "R", "x", "x", 1.0));
	kg_close(v);
}

/* 5. Tenant ids the original maps to the same tables (a-b / a_b, and
 * Acme / acme as SQLite ignores the case of table names). The original let
 * them share tables; kgstore keeps them apart (docs/ARCHITECTURE.md): the
 * first to write gets the original's name (its id in a comment of the
 * CREATE text), a later one gets kgstore_tenant_<id, '_' as _0, '-' as _1,
 * capitals as _ + lower case>_entities. */
static void test_collisions(void)
{
	char path[512];
	kg_store *s = open_new_tables("collide.db", path, sizeof(path)), *v = NULL;
	if (!s)
		return;
	const char *ids[] = { "a_b", "a-b", "Acme", "acme", "ACME", "m-n", "m_n" };
	const size_t n_ids = sizeof(ids) / sizeof(ids[0]);
	/* Reads before the second one writes: it sees nothing of the first. */
	write_x(s, "a_b");
	CHECK_OK(s, kg_tenant(s, "a-b", &v));
	kg_entity *e = NULL;
	CHECK_RC(v, kg_get_entity(v, "x", &e), KG_ENOTFOUND);
	CHECK(count_entities(v) == 0);
	CHECK_RC(v, kg_delete_entity(v, "x"), KG_ENOTFOUND); /* cannot touch a_b's */
	CHECK_OK(v, kg_clear(v));
	kg_close(v);
	for (size_t i = 1; i < n_ids; i++)
		write_x(s, ids[i]);
	for (size_t i = 0; i < n_ids; i++)
		check_own_x(s, ids[i]);
	char **ten = NULL;
	size_t nt = 0;
	CHECK_OK(s, kg_list_tenants(s, &ten, &nt));
	CHECK(nt == n_ids);
	for (size_t i = 0; i < n_ids; i++)
		CHECK(tenants_have(ten, nt, ids[i]));
	free(ten);
	kg_close(s);

	char buf[256];
	/* The first writer has the original's tables, with nothing of the others. */
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_a_b_entities") == 1);
	CHECK(strstr(plain_text(path, "SELECT properties FROM tenant_a_b_entities", buf, sizeof(buf)), "\"a_b\"") != NULL);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_a_b_relations") == 1);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_acme_entities") == 1); /* Acme's, any case */
	CHECK(strstr(plain_text(path, "SELECT properties FROM tenant_acme_entities", buf, sizeof(buf)), "\"Acme\"") !=
	      NULL);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_m_n_entities") == 1);
	CHECK(strstr(plain_text(path, "SELECT properties FROM tenant_m_n_entities", buf, sizeof(buf)), "\"m-n\"") != NULL);
	CHECK(plain_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'tenant\\_%' "
	                      "ESCAPE '\\'") == 6);
	/* The later ones, under kgstore's own names. */
	CHECK(strstr(plain_text(path, "SELECT properties FROM kgstore_tenant_a_1b_entities", buf, sizeof(buf)),
	             "\"a-b\"") != NULL);
	CHECK(strstr(plain_text(path, "SELECT properties FROM kgstore_tenant_acme_entities", buf, sizeof(buf)),
	             "\"acme\"") != NULL);
	CHECK(strstr(plain_text(path, "SELECT properties FROM kgstore_tenant__a_c_m_e_entities", buf, sizeof(buf)),
	             "\"ACME\"") != NULL);
	CHECK(strstr(plain_text(path, "SELECT properties FROM kgstore_tenant_m_0n_entities", buf, sizeof(buf)),
	             "\"m_n\"") != NULL);
	CHECK(plain_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE "
	                      "'kgstore\\_tenant\\_%' ESCAPE '\\'") == 8);
	CHECK(plain_int(path, "SELECT count(*) FROM entities WHERE tenant_id IS NOT NULL") == 0);

	/* Which tenant has which tables survives a reopen (tenancy detected). */
	s = NULL;
	CHECK_OK(s, open_tenancy(path, NULL, &s));
	if (s) {
		for (size_t i = 0; i < n_ids; i++)
			check_own_x(s, ids[i]);
		/* Writes after the reopen go where the reads come from. */
		CHECK_OK(s, kg_tenant(s, "a-b", &v));
		CHECK_OK(v, add_e(v, "y", "T", "{}"));
		kg_close(v);
		CHECK_OK(s, kg_tenant(s, "a_b", &v));
		CHECK(count_entities(v) == 1);
		kg_close(v);
		kg_close(s);
	}
	CHECK(plain_int(path, "SELECT count(*) FROM kgstore_tenant_a_1b_entities") == 2);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_a_b_entities") == 1);
	th_remove_sqlite(path);
}

/* Opens `path` with `tenancy` expecting KG_EINVAL and the file unchanged;
 * returns the error message in msg. */
static void check_open_refused(const char *path, const char *tenancy, char *msg, size_t cap)
{
	size_t n0 = 0, n1 = 0;
	unsigned char *before = slurp(path, &n0);
	CHECK(before != NULL);
	kg_store *s = NULL;
	CHECK_RC(s, open_tenancy(path, tenancy, &s), KG_EINVAL);
	snprintf(msg, cap, "%s", s ? kg_errmsg(s) : "");
	kg_close(s);
	unsigned char *after = slurp(path, &n1);
	CHECK(after != NULL && n0 == n1 && before && memcmp(before, after, n0) == 0);
	free(before);
	free(after);
}

/* 6. Conflicting layouts refused at open, the file untouched. */
static void test_conflicting_layouts(void)
{
	char path[512], msg[1024];
	path_of(path, sizeof(path), "conflict.db");

	/* (a) tables asked for, the shared table holds tenant rows. */
	th_remove_sqlite(path);
	CHECK(plain_exec(path, ORIGINAL_DDL) == SQLITE_OK);
	CHECK(plain_exec(path, SHARED_T1_ROWS) == SQLITE_OK);
	check_open_refused(path, "tables", msg, sizeof(msg));
	CHECK(strstr(msg, "tenan") != NULL);
	/* The same file opens in its own layout. */
	kg_store *s = NULL, *v = NULL;
	CHECK_OK(s, open_tenancy(path, NULL, &s));
	if (s) {
		kg_entity *e = NULL;
		CHECK_OK(s, kg_tenant(s, "t1", &v));
		CHECK_OK(v, kg_get_entity(v, "zed", &e));
		kg_entity_free(e);
		kg_close(v);
		kg_close(s);
	}

	/* (b) both layouts in one file, tenancy not given. */
	th_remove_sqlite(path);
	CHECK(plain_exec(path, ORIGINAL_DDL) == SQLITE_OK);
	CHECK(plain_exec(path, SHARED_T1_ROWS) == SQLITE_OK);
	CHECK(plain_exec(path, ORIGINAL_T1_TABLES) == SQLITE_OK);
	check_open_refused(path, NULL, msg, sizeof(msg));
	CHECK(strstr(msg, "tenancy=shared") != NULL || (strstr(msg, "shared") && strstr(msg, "tenancy")));
	CHECK(strstr(msg, "tenancy=tables") != NULL || (strstr(msg, "tables") && strstr(msg, "tenancy")));
	/* ... and tables asked for on it: the tenant rows conflict. */
	check_open_refused(path, "tables", msg, sizeof(msg));
	/* Choosing shared opens it; the tenant tables are not seen. */
	s = NULL;
	CHECK_OK(s, open_tenancy(path, "shared", &s));
	if (s) {
		kg_entity *e = NULL;
		CHECK_OK(s, kg_tenant(s, "t1", &v));
		CHECK_OK(v, kg_get_entity(v, "zed", &e));
		kg_entity_free(e);
		e = NULL;
		CHECK_RC(v, kg_get_entity(v, "carol", &e), KG_ENOTFOUND);
		CHECK(count_entities(v) == 1);
		kg_close(v);
		kg_close(s);
	}
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t1_entities") == 3);

	/* tenancy=shared on a separate-schema file: opens, ignores the tables,
	 * writes go into the shared tables, the tenant tables stay as they were. */
	th_remove_sqlite(path);
	CHECK(plain_exec(path, ORIGINAL_DDL) == SQLITE_OK);
	CHECK(plain_exec(path, ORIGINAL_T1_TABLES) == SQLITE_OK);
	s = NULL;
	CHECK_OK(s, open_tenancy(path, "shared", &s));
	if (s) {
		kg_entity *e = NULL;
		CHECK_OK(s, kg_tenant(s, "t1", &v));
		CHECK_RC(v, kg_get_entity(v, "carol", &e), KG_ENOTFOUND);
		CHECK(count_entities(v) == 0);
		char **ten = NULL;
		size_t nt = 0;
		CHECK_OK(s, kg_list_tenants(s, &ten, &nt));
		CHECK(nt == 0);
		free(ten);
		CHECK_OK(v, add_e(v, "newbie", "T", "{}"));
		kg_close(v);
		kg_close(s);
	}
	CHECK(plain_int(path, "SELECT count(*) FROM entities WHERE tenant_id = 't1' AND id = 'newbie'") == 1);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t1_entities") == 3);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t1_entities WHERE id = 'newbie'") == 0);
	/* Now the file has both layouts: an open without tenancy is refused. */
	check_open_refused(path, NULL, msg, sizeof(msg));

	/* tables on an original file with global rows only is fine. */
	th_remove_sqlite(path);
	CHECK(plain_exec(path, ORIGINAL_DDL) == SQLITE_OK);
	s = NULL;
	CHECK_OK(s, open_tenancy(path, "tables", &s));
	if (s) {
		kg_entity *e = NULL;
		CHECK_OK(s, kg_get_entity(s, "alice", &e));
		kg_entity_free(e);
		kg_close(s);
	}
	th_remove_sqlite(path);
}

/* 7. Isolation between tenants, kg_clear, transactions across tenants. */
static void test_isolation_and_transactions(void)
{
	char path[512];
	kg_store *s = open_new_tables("iso.db", path, sizeof(path)), *t1 = NULL, *t2 = NULL;
	if (!s)
		return;
	CHECK_OK(s, kg_tenant(s, "t1", &t1));
	CHECK_OK(s, kg_tenant(s, "t2", &t2));
	CHECK_OK(t1, add_e(t1, "x", "One", "{\"who\":\"t1\"}"));
	CHECK_OK(t1, add_e(t1, "y", "One", "{}"));
	CHECK_OK(t1, add_r(t1, "r", "R", "x", "y", 0.1));
	CHECK_OK(t2, add_e(t2, "x", "Two", "{\"who\":\"t2\"}"));
	CHECK_OK(t2, add_e(t2, "y", "Two", "{}"));
	CHECK_OK(t2, add_e(t2, "z", "Two", "{}"));
	CHECK_OK(t2, add_r(t2, "r", "R", "y", "x", 0.2));
	CHECK_OK(s, add_e(s, "x", "Global", "{}"));

	kg_entity *e = NULL;
	CHECK_OK(t1, kg_get_entity(t1, "x", &e));
	if (e)
		CHECK(!strcmp(e->entity_type, "One") && strstr(e->properties, "t1"));
	kg_entity_free(e);
	e = NULL;
	CHECK_OK(t2, kg_get_entity(t2, "x", &e));
	if (e)
		CHECK(!strcmp(e->entity_type, "Two") && strstr(e->properties, "t2"));
	kg_entity_free(e);
	e = NULL;
	kg_relation *r = NULL;
	CHECK_OK(t1, kg_get_relation(t1, "r", &r));
	if (r)
		CHECK(r->weight == 0.1 && !strcmp(r->source_id, "x"));
	kg_relation_free(r);
	r = NULL;
	CHECK_OK(t2, kg_get_relation(t2, "r", &r));
	if (r)
		CHECK(r->weight == 0.2 && !strcmp(r->source_id, "y"));
	kg_relation_free(r);
	r = NULL;
	CHECK_RC(t1, kg_get_entity(t1, "z", &e), KG_ENOTFOUND);
	CHECK_RC(t1, add_r(t1, "cross", "R", "x", "z", 1.0), KG_ENOTFOUND); /* z is t2's */
	kg_entity_list *l = NULL;
	CHECK_OK(t1, kg_neighbors(t1, "x", NULL, KG_OUT, &l));
	if (l)
		CHECK(l->count == 1 && list_has(l, "y"));
	kg_entity_list_free(l);
	l = NULL;
	CHECK_OK(t2, kg_neighbors(t2, "x", NULL, KG_OUT, &l));
	if (l)
		CHECK(l->count == 0);
	kg_entity_list_free(l);
	l = NULL;
	CHECK(count_entities(t1) == 2 && count_entities(t2) == 3 && count_entities(s) == 1);
	char **ten = NULL;
	size_t nt = 0;
	CHECK_OK(s, kg_list_tenants(s, &ten, &nt));
	CHECK(nt == 2 && nt >= 2 && !strcmp(ten[0], "t1") && !strcmp(ten[1], "t2"));
	free(ten);

	/* Deleting in one tenant leaves the same id in the other. */
	CHECK_OK(t1, kg_delete_entity(t1, "y"));
	CHECK_OK(t2, kg_get_entity(t2, "y", &e));
	kg_entity_free(e);
	e = NULL;
	CHECK_OK(t2, kg_get_relation(t2, "r", &r));
	kg_relation_free(r);
	r = NULL;

	/* kg_clear empties t1 only. */
	CHECK_OK(t1, kg_clear(t1));
	CHECK(count_entities(t1) == 0 && count_entities(t2) == 3 && count_entities(s) == 1);
	CHECK_RC(t1, kg_get_relation(t1, "r", &r), KG_ENOTFOUND);
	CHECK_OK(t2, kg_get_relation(t2, "r", &r));
	kg_relation_free(r);
	r = NULL;
	CHECK_OK(s, kg_clear(s));
	CHECK(count_entities(t2) == 3 && count_entities(s) == 0);
	kg_close(t1);
	kg_close(t2);

	/* A transaction across two tenants, rolled back: nothing anywhere. */
	kg_store *txn = NULL, *v1 = NULL, *v2 = NULL;
	CHECK_OK(s, kg_begin(s, &txn));
	if (txn) {
		CHECK_OK(txn, kg_tenant(txn, "n1", &v1));
		CHECK_OK(txn, kg_tenant(txn, "n2", &v2));
		CHECK_OK(v1, add_e(v1, "a", "T", "{}"));
		CHECK_OK(v1, add_e(v1, "b", "T", "{}"));
		CHECK_OK(v1, add_r(v1, "ab", "R", "a", "b", 1.0));
		CHECK_OK(v2, add_e(v2, "a", "T", "{}"));
		CHECK(count_entities(v1) == 2 && count_entities(v2) == 1); /* seen inside */
		CHECK_OK(txn, add_e(txn, "ga", "T", "{}"));
		kg_close(v1);
		kg_close(v2);
		CHECK_OK(s, kg_rollback(txn));
	}
	CHECK_OK(s, kg_tenant(s, "n1", &v1));
	CHECK_OK(s, kg_tenant(s, "n2", &v2));
	CHECK_RC(v1, kg_get_entity(v1, "a", &e), KG_ENOTFOUND);
	CHECK_RC(v2, kg_get_entity(v2, "a", &e), KG_ENOTFOUND);
	CHECK_RC(s, kg_get_entity(s, "ga", &e), KG_ENOTFOUND);
	CHECK(count_entities(v1) == 0 && count_entities(v2) == 0);
	kg_close(v1);
	kg_close(v2);
	v1 = v2 = NULL;

	/* Committed: both tenants have their rows. */
	txn = NULL;
	CHECK_OK(s, kg_begin(s, &txn));
	if (txn) {
		CHECK_OK(txn, kg_tenant(txn, "c1", &v1));
		CHECK_OK(txn, kg_tenant(txn, "c-2", &v2));
		CHECK_OK(v1, add_e(v1, "a", "T", "{}"));
		CHECK_OK(v1, add_e(v1, "b", "T", "{}"));
		CHECK_OK(v1, add_r(v1, "ab", "R", "a", "b", 1.0));
		CHECK_OK(v2, add_e(v2, "a", "T", "{}"));
		kg_close(v1);
		kg_close(v2);
		CHECK_OK(s, kg_commit(txn));
	}
	CHECK_OK(s, kg_tenant(s, "c1", &v1));
	CHECK_OK(s, kg_tenant(s, "c-2", &v2));
	CHECK(count_entities(v1) == 2 && count_entities(v2) == 1);
	CHECK_OK(v1, kg_get_relation(v1, "ab", &r));
	kg_relation_free(r);
	r = NULL;
	kg_close(v1);
	kg_close(v2);
	v1 = v2 = NULL;

	/* After the rollback n1 is a fresh tenant: a plain write works and its
	 * owner is known (the rolled-back claim left nothing behind). */
	CHECK_OK(s, kg_tenant(s, "n1", &v1));
	CHECK_OK(v1, add_e(v1, "late", "T", "{}"));
	CHECK(count_entities(v1) == 1);
	kg_close(v1);

	/* A rolled-back first write of n_3 does not leave it owning tables
	 * that n-3 then would have to avoid. */
	txn = NULL;
	CHECK_OK(s, kg_begin(s, &txn));
	if (txn) {
		CHECK_OK(txn, kg_tenant(txn, "n_3", &v1));
		CHECK_OK(v1, add_e(v1, "a", "T", "{}"));
		kg_close(v1);
		CHECK_OK(s, kg_rollback(txn));
	}
	CHECK_OK(s, kg_tenant(s, "n-3", &v2));
	CHECK_OK(v2, add_e(v2, "a", "T", "{}"));
	kg_close(v2);
	kg_close(s);

	CHECK(tenant_objects(path, "n2") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_n1_entities") == 1);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_c1_entities") == 2);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_c1_relations") == 1);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_c_2_entities") == 1);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t1_entities") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_t2_entities") == 3);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_n_3_entities") == 1);
	CHECK(plain_int(path, "SELECT count(*) FROM entities") == 0);
	CHECK(plain_int(path, "SELECT count(*) FROM relations") == 0);

	/* A reopen knows n-3 (not n_3) has tenant_n_3_*: n_3 sees nothing. */
	s = NULL;
	CHECK_OK(s, open_tenancy(path, NULL, &s));
	if (s) {
		CHECK_OK(s, kg_tenant(s, "n_3", &v1));
		CHECK(count_entities(v1) == 0);
		kg_close(v1);
		CHECK_OK(s, kg_tenant(s, "n-3", &v2));
		CHECK(count_entities(v2) == 1);
		kg_close(v2);
		kg_close(s);
	}
	th_remove_sqlite(path);
}

/* Another connection creates a tenant's tables after this one has read the
 * tenant as empty (its statements then ran on stand-ins): the next read
 * here sees the new tables and rows, also inside a read of many queries.
 * The other opens without saying the layout, before any tenant table
 * exists: the file remembers tenancy=tables (kgstore_meta). */
static void test_tables_created_elsewhere(void)
{
	char path[512];
	path_of(path, sizeof(path), "elsewhere.db");
	th_remove_sqlite(path);
	kg_store *a = NULL, *b = NULL, *va = NULL, *vb = NULL;
	CHECK_OK(a, open_tenancy(path, "tables", &a));
	CHECK_OK(b, open_tenancy(path, NULL, &b));
	if (!a || !b) {
		kg_close(a);
		kg_close(b);
		return;
	}
	CHECK_OK(a, kg_tenant(a, "late", &va));
	CHECK_OK(b, kg_tenant(b, "late", &vb));
	kg_entity *e = NULL;
	CHECK_RC(va, kg_get_entity(va, "p", &e), KG_ENOTFOUND);
	CHECK(count_entities(va) == 0);
	CHECK_OK(vb, add_e(vb, "p", "T", "{}"));
	CHECK_OK(vb, add_e(vb, "q", "T", "{}"));
	kg_relation r = KG_RELATION_INIT;
	r.id = "pq";
	r.relation_type = "NEXT";
	r.source_id = "p";
	r.target_id = "q";
	CHECK_OK(vb, kg_add_relation(vb, &r));
	CHECK_OK(va, kg_get_entity(va, "p", &e));
	kg_entity_free(e);
	CHECK(count_entities(va) == 2);
	kg_path_list *pl = NULL;
	CHECK_OK(va, kg_find_paths(va, "p", "q", 3, 10, &pl));
	CHECK(pl && pl->count == 1);
	kg_path_list_free(pl);
	kg_close(va);
	kg_close(vb);
	kg_close(a);
	kg_close(b);
	CHECK(plain_int(path, "SELECT count(*) FROM tenant_late_entities") == 2);
	CHECK(plain_int(path, "SELECT count(*) FROM entities") == 0);
	th_remove_sqlite(path);
}

/* The longest ids (255 characters): three that the original's naming
 * puts in one table, the two later ones in kgstore's names with every
 * character escaped, differing in the last one only: three tenants. */
static void test_longest_ids(void)
{
	char path[512];
	path_of(path, sizeof(path), "long.db");
	th_remove_sqlite(path);
	char ids[3][256];
	for (int k = 0; k < 3; k++) {
		memset(ids[k], k ? 'A' : 'a', 254);
		ids[k][254] = k == 2 ? 'b' : 'B'; /* all three name tenant_aa...b_* */
		ids[k][255] = '\0';
	}
	kg_store *s = NULL, *v = NULL;
	CHECK_OK(s, open_tenancy(path, "tables", &s));
	if (!s)
		return;
	for (int k = 0; k < 3; k++) { /* 'a'...: the original's name; then kgstore's */
		CHECK_OK(s, kg_tenant(s, ids[k], &v));
		CHECK_OK(v, add_e(v, "x", ids[k] + 252, "{}"));
		kg_close(v);
	}
	for (int k = 0; k < 3; k++) {
		kg_entity *e = NULL;
		CHECK_OK(s, kg_tenant(s, ids[k], &v));
		CHECK_OK(v, kg_get_entity(v, "x", &e));
		CHECK(e && strcmp(e->entity_type, ids[k] + 252) == 0);
		CHECK(count_entities(v) == 1);
		kg_entity_free(e);
		kg_close(v);
	}
	kg_close(s);
	CHECK(plain_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE "
	                      "'kgstore\\_tenant\\_%' ESCAPE '\\'") == 4);
	th_remove_sqlite(path);
}

/* Readers on several threads (each on a pooled connection with its own
 * per-tenant statements) while the writer creates tenants one after the
 * other: every reader sees each tenant either empty or whole, never an
 * error, and sees them all at the end. */
#define RT_TENANTS 24
#define RT_READERS 3

typedef struct rt_arg {
	kg_store *s;
	atomic_int *stop;
	atomic_int *writing; /* the tenant the writer is on */
	int errors, torn, reads, whole_at_end;
	char msg[256];
} rt_arg;

/* Reads tenants from..to-1; returns how many were whole. */
static int rt_pass(rt_arg *a, int from, int to)
{
	int whole = 0;
	for (int t = from < 0 ? 0 : from; t < to && t < RT_TENANTS; t++) {
		char id[16];
		snprintf(id, sizeof(id), "rt-%d", t);
		kg_store *v = NULL;
		if (kg_tenant(a->s, id, &v) != 0) {
			a->errors++;
			kg_close(v);
			continue;
		}
		kg_stats *st = NULL;
		if (kg_get_stats(v, &st) != 0) {
			if (!a->errors++)
				snprintf(a->msg, sizeof(a->msg), "%s", kg_errmsg(v));
		} else if (st->entity_count == 3 && st->relation_count == 2) {
			whole++;
		} else if (st->entity_count != 0 || st->relation_count != 0) {
			a->torn++;
		}
		kg_stats_free(st);
		kg_close(v);
		a->reads++;
	}
	return whole;
}

static void *rt_reader(void *p)
{
	rt_arg *a = p;
	/* The tenant being written and the one before: the reads that can
	 * straddle a commit, in a short loop. */
	while (!atomic_load(a->stop)) {
		int w = atomic_load(a->writing);
		rt_pass(a, w - 1, w + 1);
		sched_yield(); /* room for the writer where threads take turns (valgrind) */
	}
	a->whole_at_end = rt_pass(a, 0, RT_TENANTS); /* after the last commit */
	return NULL;
}

static void readers_while_tenants_appear(const char *tenancy)
{
	char path[512];
	path_of(path, sizeof(path), "threads.db");
	th_remove_sqlite(path);
	kg_store *s = NULL;
	int rc = open_tenancy(path, tenancy, &s);
	CHECK_OK(s, rc);
	if (rc != 0) {
		kg_close(s);
		return;
	}
	atomic_int stop, writing;
	atomic_init(&stop, 0);
	atomic_init(&writing, 0);
	rt_arg args[RT_READERS];
	pthread_t th[RT_READERS];
	for (int i = 0; i < RT_READERS; i++) {
		args[i] = (rt_arg){ .s = s, .stop = &stop, .writing = &writing };
		CHECK(pthread_create(&th[i], NULL, rt_reader, &args[i]) == 0);
	}
	for (int t = 0; t < RT_TENANTS; t++) {
		char id[16];
		snprintf(id, sizeof(id), "rt-%d", t);
		atomic_store(&writing, t);
		kg_store *txn = NULL, *v = NULL;
		CHECK_OK(s, kg_begin(s, &txn));
		CHECK_OK(txn, kg_tenant(txn, id, &v));
		CHECK_OK(v, add_e(v, "a", "T", "{}"));
		CHECK_OK(v, add_e(v, "b", "T", "{}"));
		CHECK_OK(v, add_e(v, "c", "T", "{}"));
		kg_relation r[2] = { KG_RELATION_INIT, KG_RELATION_INIT };
		r[0].id = "ab", r[0].relation_type = "R", r[0].source_id = "a", r[0].target_id = "b";
		r[1].id = "bc", r[1].relation_type = "R", r[1].source_id = "b", r[1].target_id = "c";
		CHECK_OK(v, kg_add_relations(v, r, 2, 0, NULL));
		kg_close(v);
		CHECK_OK(txn, kg_commit(txn)); /* frees the handle */
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < RT_READERS; i++) {
		pthread_join(th[i], NULL);
		CHECK(args[i].errors == 0);
		if (args[i].errors)
			fprintf(stderr, "reader %d: %d errors, first: %s\n", i, args[i].errors, args[i].msg);
		CHECK(args[i].torn == 0);
		CHECK(args[i].whole_at_end == RT_TENANTS);
	}
	char **ten = NULL;
	size_t nt = 0;
	CHECK_OK(s, kg_list_tenants(s, &ten, &nt));
	CHECK(nt == RT_TENANTS);
	free(ten);
	kg_close(s);
	th_remove_sqlite(path);
}

/* Both layouts: the counts of a tenant are read in one snapshot (a commit
 * between counting entities and relations once gave torn stats). */
static void test_readers_while_tenants_appear(void)
{
	readers_while_tenants_appear("tables");
	readers_while_tenants_appear("shared");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "%s/kg-tenant-tables-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_option_values);
	RUN(test_tables_mode_layout);
	RUN(test_original_separate_schema);
	RUN(test_no_tables_on_read_or_failure);
	RUN(test_collisions);
	RUN(test_conflicting_layouts);
	RUN(test_isolation_and_transactions);
	RUN(test_tables_created_elsewhere);
	RUN(test_longest_ids);
	RUN(test_readers_while_tenants_appear);
	rmdir(dir);
	return th_summary("unit_sqlite_tenant_tables");
}
