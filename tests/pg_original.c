/*
 * pg_original.c - a database written by the original system (its tables,
 * created and filled by plain SQL as its PostgresGraphStore does) is read
 * correctly, upgraded in place once (source and seq columns, a double
 * precision weight), and stays writable by the original's own INSERTs.
 *
 *   pg_original URI
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kgstore.h"
#include "pg_common.h"

static const char *g_uri;

static const char *const ORIGINAL_SQL[] = {
	"DROP SCHEMA IF EXISTS kg_orig CASCADE",
	"CREATE SCHEMA kg_orig",
	"CREATE TABLE kg_orig.graph_entities (id TEXT NOT NULL, tenant_id TEXT NOT NULL DEFAULT '',"
	" entity_type TEXT NOT NULL, properties JSONB NOT NULL DEFAULT '{}', embedding BYTEA,"
	" created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" PRIMARY KEY (id, tenant_id))",
	"CREATE TABLE kg_orig.graph_relations (id TEXT NOT NULL, tenant_id TEXT NOT NULL DEFAULT '',"
	" relation_type TEXT NOT NULL, source_id TEXT NOT NULL, target_id TEXT NOT NULL,"
	" properties JSONB NOT NULL DEFAULT '{}', weight REAL DEFAULT 1.0,"
	" created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" PRIMARY KEY (id, tenant_id))",
	"CREATE INDEX idx_entities_type ON kg_orig.graph_entities (entity_type)",
	"CREATE INDEX idx_entities_tenant ON kg_orig.graph_entities (tenant_id)",
	"CREATE INDEX idx_entities_properties ON kg_orig.graph_entities USING GIN (properties)",
	"CREATE INDEX idx_relations_source ON kg_orig.graph_relations (tenant_id, source_id)",
	"CREATE INDEX idx_relations_target ON kg_orig.graph_relations (tenant_id, target_id)",
	"CREATE INDEX idx_relations_properties ON kg_orig.graph_relations USING GIN (properties)",
	/* Rows as the original writes them: '' is the global namespace, the
	 * embedding is little-endian float32 (1.0, -2.5). */
	"INSERT INTO kg_orig.graph_entities (id, tenant_id, entity_type, properties, embedding, created_at, updated_at)"
	" VALUES ('zed', '', 'Person', '{\"name\": \"Zed\", \"age\": 41}', '\\x0000803f000020c0',"
	" '2023-01-02 03:04:05.123456', '2023-01-03 00:00:00')",
	"INSERT INTO kg_orig.graph_entities (id, tenant_id, entity_type, properties)"
	" VALUES ('acorp', '', 'Company', '{\"name\": \"A Corp\"}')",
	"INSERT INTO kg_orig.graph_entities (id, tenant_id, entity_type, properties)"
	" VALUES ('tenant-only', 'acme', 'Person', '{}')",
	"INSERT INTO kg_orig.graph_relations (id, tenant_id, relation_type, source_id, target_id, properties, weight)"
	" VALUES ('w1', '', 'WORKS_FOR', 'zed', 'acorp', '{\"since\": 2020}', 0.5)",
	"INSERT INTO kg_orig.graph_relations (id, tenant_id, relation_type, source_id, target_id, properties, weight)"
	" VALUES ('w0', '', 'KNOWS', 'acorp', 'zed', '{}', 0)",
};

static void test_read_original(void)
{
	PGconn *pg = pgt_connect(g_uri);
	CHECK(pg != NULL);
	if (!pg)
		return;
	for (size_t i = 0; i < sizeof(ORIGINAL_SQL) / sizeof(ORIGINAL_SQL[0]); i++)
		CHECK(pgt_exec(pg, ORIGINAL_SQL[i]));
	char uri[2048], val[256];
	pgt_uri(uri, sizeof(uri), g_uri, "schema=kg_orig");
	kg_store *s = NULL, *acme = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	if (!s) {
		PQfinish(pg);
		return;
	}
	kg_entity *e = NULL;
	CHECK_OK(s, kg_get_entity(s, "zed", &e));
	if (e) {
		CHECK_STR(e->entity_type, "Person");
		CHECK(strstr(e->properties, "\"Zed\"") != NULL);
		CHECK(e->embedding_dim == 2 && e->embedding && e->embedding[0] == 1.0f && e->embedding[1] == -2.5f);
		int64_t want;
		kg_parse_time("2023-01-02T03:04:05.123456Z", &want);
		CHECK(e->created_at == want);
		CHECK(e->tenant_id == NULL); /* '' is the global namespace */
		CHECK(e->source == NULL);
	}
	kg_entity_free(e);
	kg_relation *r = NULL;
	CHECK_OK(s, kg_get_relation(s, "w1", &r));
	if (r)
		CHECK(r->weight == 0.5 && !strcmp(r->source_id, "zed"));
	kg_relation_free(r);
	r = NULL;
	CHECK_OK(s, kg_get_relation(s, "w0", &r));
	if (r)
		CHECK(r->weight == 0.0); /* the original's bug gave 1.0 */
	kg_relation_free(r);

	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_list_entities(s, NULL, 0, 0, &l)); /* order of writing */
	CHECK(l && l->count == 2 && !strcmp(l->items[0]->id, "zed") && !strcmp(l->items[1]->id, "acorp"));
	kg_entity_list_free(l);
	CHECK_OK(s, kg_lookup_by_property(s, "age", "41", &l));
	CHECK(l && l->count == 1);
	kg_entity_list_free(l);
	kg_path_list *pl = NULL;
	CHECK_OK(s, kg_find_paths(s, "zed", "acorp", 3, 0, &pl));
	CHECK(pl && pl->count == 1);
	kg_path_list_free(pl);
	char **tenants = NULL;
	size_t nt = 0;
	CHECK_OK(s, kg_list_tenants(s, &tenants, &nt));
	CHECK(nt == 1 && !strcmp(tenants[0], "acme"));
	free(tenants);
	CHECK_OK(s, kg_tenant(s, "acme", &acme));
	e = NULL;
	CHECK_OK(acme, kg_get_entity(acme, "tenant-only", &e));
	if (e)
		CHECK_STR(e->tenant_id, "acme");
	kg_entity_free(e);

	/* Upgraded once: weights now exact, rows keep their order. */
	CHECK(pgt_value(pg, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
	                    " WHERE attrelid = 'kg_orig.graph_relations'::regclass AND attname = 'weight'",
	                val, sizeof(val)));
	CHECK_STR(val, "double precision");
	kg_relation nr = KG_RELATION_INIT;
	nr.id = "precise";
	nr.relation_type = "KNOWS";
	nr.source_id = "zed";
	nr.target_id = "acorp";
	nr.weight = 0.123456789012345;
	CHECK_OK(s, kg_add_relation(s, &nr));
	CHECK(pgt_exec(pg, "SET extra_float_digits = 3"));
	CHECK(pgt_value(pg, "SELECT weight FROM kg_orig.graph_relations WHERE id = 'precise'", val, sizeof(val)));
	CHECK(strtod(val, NULL) == 0.123456789012345);

	/* The original keeps writing with its own statements; kgstore sees it. */
	CHECK(pgt_exec(pg, "INSERT INTO kg_orig.graph_entities (id, tenant_id, entity_type, properties)"
	                   " VALUES ('late', '', 'Person', '{\"by\": \"original\"}')"));
	CHECK(pgt_exec(pg, "INSERT INTO kg_orig.graph_relations (id, tenant_id, relation_type, source_id, target_id,"
	                   " properties, weight) VALUES ('w2', '', 'KNOWS', 'late', 'zed', '{}', 1.0)"));
	CHECK_OK(s, kg_list_entities(s, NULL, 0, 0, &l));
	CHECK(l && l->count == 3 && !strcmp(l->items[2]->id, "late"));
	kg_entity_list_free(l);
	kg_relation_list *rl = NULL;
	CHECK_OK(s, kg_relations_of(s, "zed", NULL, KG_IN, &rl));
	CHECK(rl && rl->count == 2);
	kg_relation_list_free(rl);
	/* And what kgstore writes reads back in the original's columns. */
	kg_entity ne = KG_ENTITY_INIT;
	ne.id = "from-kgstore";
	ne.entity_type = "Thing";
	ne.properties = "{\"k\": [1, 2]}";
	CHECK_OK(s, kg_add_entity(s, &ne));
	CHECK(pgt_value(pg, "SELECT properties->'k'->>1 FROM kg_orig.graph_entities WHERE id = 'from-kgstore'"
	                    " AND tenant_id = ''", val, sizeof(val)));
	CHECK_STR(val, "2");
	/* Opening again changes nothing more: no table rewritten (a new
	 * relfilenode), no column added. */
	static const char TABLES_STATE[] =
		"SELECT string_agg(c.relname || ':' || c.relfilenode || ':' || (SELECT count(*) FROM pg_attribute a"
		" WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ',' ORDER BY c.relname)"
		" FROM pg_class c WHERE c.relnamespace = 'kg_orig'::regnamespace AND c.relkind = 'r'";
	char before[1024] = "", after[1024] = "";
	CHECK(pgt_value(pg, TABLES_STATE, before, sizeof(before)));
	kg_store *again = NULL;
	CHECK_OK(again, kg_open(uri, &again));
	kg_close(again);
	CHECK(pgt_value(pg, TABLES_STATE, after, sizeof(after)));
	CHECK(before[0] != '\0');
	CHECK_STR(after, before);
	kg_close(acme);
	kg_close(s);
	PQfinish(pg);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pg_original URI\n");
		return 2;
	}
	g_uri = argv[1];
	RUN(test_read_original);
	return th_summary("pg_original");
}
