/*
 * pg_vector.c - pgvector detection. This server has no vector extension
 * (Debian's repository has no pgvector package), so: enable_pgvector
 * refuses to open and names the package; with pgvector_fallback the store
 * opens and searches in the client, exactly. And the SQL function that
 * turns the stored float32 bytes into reals (it feeds the vector column
 * when the extension is there) decodes every kind of float exactly.
 *
 *   pg_vector URI
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/postgres/pg_internal.h"
#include "harness.h"
#include "kgstore.h"
#include "pg_common.h"

extern const char PG_SQL_EMBEDDING_FLOATS[];

static const char *g_uri;

static void test_missing_extension_refused(void)
{
	char uri[2048];
	kg_store *s = NULL;
	pgt_uri(uri, sizeof(uri), g_uri, "schema=kg_vec&enable_pgvector=true");
	CHECK(kg_open(uri, &s) == KG_EUNSUPPORTED);
	const char *msg = kg_errmsg(s);
	CHECK(strstr(msg, "postgresql-15-pgvector") != NULL);
	CHECK(strstr(msg, "pgvector_fallback") != NULL);
	kg_close(s);
}

static void test_fallback(void)
{
	char uri[2048];
	kg_store *s = NULL;
	pgt_uri(uri, sizeof(uri), g_uri, "schema=kg_vec&enable_pgvector=true&pgvector_fallback=true");
	CHECK_OK(s, kg_open(uri, &s));
	if (!s)
		return;
	CHECK((kg_capabilities(s) & KG_CAP_NATIVE_VECTOR) == 0);
	kg_clear(s);
	float v[3][2] = { { 1, 0 }, { 0.6f, 0.8f }, { -1, 0 } };
	const char *ids[] = { "east", "north-east", "west" };
	for (int i = 0; i < 3; i++) {
		kg_entity e = KG_ENTITY_INIT;
		e.id = ids[i];
		e.entity_type = "Dir";
		e.embedding = v[i];
		e.embedding_dim = 2;
		CHECK_OK(s, kg_add_entity(s, &e));
	}
	float q[2] = { 1, 0 };
	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_vector_search(s, q, 2, NULL, 2, -1.0, &l));
	CHECK(l && l->count == 2);
	if (l && l->count == 2) {
		CHECK_STR(l->items[0]->id, "east");
		CHECK_STR(l->items[1]->id, "north-east");
		CHECK(fabs(l->scores[1] - 0.6) < 1e-6);
	}
	kg_entity_list_free(l);
	kg_close(s);
}

/* The decoder, run by the server on bytes kgstore wrote. */
static void test_embedding_decoder(void)
{
	char uri[2048], sql[2048], val[4096];
	kg_store *s = NULL;
	pgt_uri(uri, sizeof(uri), g_uri, "schema=kg_vec");
	CHECK_OK(s, kg_open(uri, &s));
	PGconn *pg = pgt_connect(g_uri);
	CHECK(s && pg);
	if (!s || !pg)
		goto done;
	kg_clear(s);
	float v[] = { 0.0f, -0.0f, 1.0f, -1.5f, 0.1f, 3.4028235e38f, -1.17549435e-38f, 1.4e-45f, 123456.789f, -2.5e-20f };
	size_t dim = sizeof(v) / sizeof(v[0]);
	kg_entity e = KG_ENTITY_INIT;
	e.id = "floats";
	e.entity_type = "V";
	e.embedding = v;
	e.embedding_dim = dim;
	CHECK_OK(s, kg_add_entity(s, &e));
	pg_tables t = { .schema = "\"kg_vec\"" };
	CHECK(pg_sql(&t, PG_SQL_EMBEDDING_FLOATS, sql, sizeof(sql)) == 0);
	CHECK(pgt_exec(pg, sql));
	CHECK(pgt_exec(pg, "SET extra_float_digits = 3"));
	CHECK(pgt_value(pg, "SELECT array_to_string(kg_vec.kg_embedding_floats(embedding), ' ')"
	                    " FROM kg_vec.graph_entities WHERE id = 'floats'", val, sizeof(val)));
	/* Each printed value reads back to the very same float, sign of zero too. */
	char *p = val, *end;
	size_t n = 0;
	int exact = 1;
	while (*p && n < dim) {
		float f = strtof(p, &end);
		if (end == p)
			break;
		exact &= memcmp(&f, &v[n], sizeof(f)) == 0;
		n++;
		p = end;
	}
	CHECK(n == dim && exact);
	CHECK(pgt_value(pg, "SELECT cardinality(kg_vec.kg_embedding_floats(''::bytea))", val, sizeof(val)));
	CHECK_STR(val, "0");
done:
	if (pg)
		PQfinish(pg);
	kg_close(s);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pg_vector URI\n");
		return 2;
	}
	g_uri = argv[1];
	RUN(test_missing_extension_refused);
	RUN(test_fallback);
	RUN(test_embedding_decoder);
	return th_summary("pg_vector");
}
