/*
 * vector.c - vector search in the server when the pgvector extension is
 * there and enable_pgvector asks for it.
 *
 * The embedding stays in the original's BYTEA column (little-endian
 * float32); a trigger keeps a `vector` copy in embedding_vector, so rows
 * written by any program (kgstore, the original, plain SQL) are searchable.
 * The server ranks by cosine distance (<=>) and returns the k nearest; the
 * scores are then computed here in double precision from the stored floats,
 * exactly as the core does, and re-sorted (ties by insertion order).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* IEEE 754 binary32 from its little-endian bytes, in SQL; no extension
 * needed. Zero and subnormals have exponent 0; kgstore stores no inf/NaN. */
const char PG_SQL_EMBEDDING_FLOATS[] =
	"CREATE OR REPLACE FUNCTION {P}{D}kg_embedding_floats(b bytea) RETURNS real[]"
	" LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$"
	" SELECT coalesce(array_agg((CASE WHEN bits >= 2147483648 THEN -1 ELSE 1 END)"
	"  * (CASE WHEN (bits / 8388608) % 256 = 0 THEN (bits % 8388608) * 2.0::float8 ^ (-149)"
	"     ELSE (8388608 + bits % 8388608) * 2.0::float8 ^ ((bits / 8388608) % 256 - 150) END)::real"
	"  ORDER BY i), '{}')"
	" FROM (SELECT i, get_byte(b, 4 * i)::int8 + get_byte(b, 4 * i + 1)::int8 * 256"
	"  + get_byte(b, 4 * i + 2)::int8 * 65536 + get_byte(b, 4 * i + 3)::int8 * 16777216 AS bits"
	"  FROM generate_series(0, length(b) / 4 - 1) AS i) x $$";

static const char *const PGVECTOR_TABLES[] = {
	"ALTER TABLE {E} ADD COLUMN IF NOT EXISTS embedding_vector vector",
	"CREATE OR REPLACE FUNCTION {P}{D}kg_embedding_vector_sync() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN NEW.embedding_vector := {P}{D}kg_embedding_floats(NEW.embedding)::vector; RETURN NEW; END $$",
	"DROP TRIGGER IF EXISTS kg_embedding_vector_sync ON {E}",
	"CREATE TRIGGER kg_embedding_vector_sync BEFORE INSERT OR UPDATE OF embedding ON {E}"
	" FOR EACH ROW EXECUTE FUNCTION {P}{D}kg_embedding_vector_sync()",
	/* Rows written before the trigger existed. */
	"UPDATE {E} SET embedding_vector = {P}{D}kg_embedding_floats(embedding)::vector"
	" WHERE embedding IS NOT NULL AND embedding_vector IS NULL",
};

int pg_vector_setup_tables(kg_pg_conn *k, kg_call *c, const pg_tables *t)
{
	char sql[1024];
	int rc = pg_sql(t, PG_SQL_EMBEDDING_FLOATS, sql, sizeof(sql));
	if (rc == 0)
		rc = pg_exec_simple(k, c, sql, "creating kg_embedding_floats");
	for (size_t i = 0; rc == 0 && i < sizeof(PGVECTOR_TABLES) / sizeof(PGVECTOR_TABLES[0]); i++) {
		if ((rc = pg_sql(t, PGVECTOR_TABLES[i], sql, sizeof(sql))) < 0)
			break;
		rc = pg_exec_simple(k, c, sql, "setting up the vector column");
	}
	return rc;
}

/* pgvector's text form of a vector: [1,2,3] with round-trip digits. */
static char *vector_text(const float *v, size_t dim)
{
	char *out = malloc(dim * 18 + 3), *d = out;
	if (!out)
		return NULL;
	*d++ = '[';
	for (size_t i = 0; i < dim; i++)
		d += sprintf(d, "%s%.9g", i ? "," : "", (double)v[i]);
	*d++ = ']';
	*d = '\0';
	return out;
}

typedef struct scored {
	kg_entity *e;
	double score;
	size_t order;
} scored;

static int scored_cmp(const void *a, const void *b)
{
	const scored *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static const char SQL_VECTOR_SEARCH[] =
	"SELECT " PG_ENT_COLS ", seq FROM {E} WHERE tenant_id = $1 AND embedding_vector IS NOT NULL"
	" AND ($3::text IS NULL OR entity_type = $3)"
	" ORDER BY embedding_vector <=> $2::vector, seq LIMIT $4::int8";

int pg_vector_search(kg_backend *b, kg_call *c, const float *query, size_t dim, const char *entity_type, size_t k,
                     double threshold, kg_entity_list **out)
{
	pg_backend *pb = (pg_backend *)b;
	pg_use u;
	const pg_tables *t;
	char sql[768];
	scored *rows = NULL;
	size_t n = 0;
	kg_entity_list *l = NULL;
	PGresult *r = NULL;
	char *qtext = vector_text(query, dim);
	if (!qtext)
		return kg_call_error(c, KG_ENOMEM, "vector_search: out of memory");
	int rc = pg_use_begin(pb, c, 0, &u);
	if (rc < 0)
		goto done;
	if ((rc = pg_tables_for(pb, c, &u, &t)) < 0)
		goto cleanup;
	pg_params p = { 0 };
	pg_param_text(&p, c->tenant ? c->tenant : "");
	pg_param_text(&p, qtext);
	pg_param_text(&p, entity_type);
	pg_param_int8(&p, k > INT64_MAX ? INT64_MAX : (int64_t)k);
	pg_sql(t, SQL_VECTOR_SEARCH, sql, sizeof(sql));
	if (!(r = pg_run(&u, c, sql, &p, &rc, "vector_search"))) {
		if (rc == KG_EINVAL) /* pgvector refuses other dimensions */
			rc = kg_call_error(c, KG_EINVAL,
			                   "vector_search: the query has dimension %zu but stored embeddings have another "
			                   "dimension (%s)", dim, c->msg);
		goto cleanup;
	}
	int nrows = PQntuples(r);
	if (!(rows = calloc((size_t)nrows + 1, sizeof(*rows))))
		goto oom;
	for (int i = 0; i < nrows; i++) {
		kg_entity *e = pg_row_entity(r, i, 0, c->tenant);
		if (!e)
			goto oom;
		if (e->embedding_dim != dim) {
			kg_entity_free(e);
			rc = kg_call_error(c, KG_EINVAL,
			                   "vector_search: entity '%s' has an embedding of dimension %zu, the query %zu",
			                   pg_get_text(r, i, 0), e->embedding_dim, dim);
			goto cleanup;
		}
		rows[n++] = (scored){ e, kg_cosine(query, e->embedding, dim), (size_t)pg_get_int8(r, i, PG_ENT_NCOLS) };
	}
	qsort(rows, n, sizeof(*rows), scored_cmp);
	if (!(l = kg_entity_list_new()))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].score < threshold)
			continue;
		kg_entity *e = rows[i].e;
		rows[i].e = NULL;
		if (kg_entity_list_push_scored(l, e, rows[i].score) < 0)
			goto oom;
	}
	*out = l;
	l = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "vector_search: out of memory");
cleanup:
	for (size_t i = 0; i < n; i++)
		kg_entity_free(rows[i].e);
	free(rows);
	kg_entity_list_free(l);
	PQclear(r);
	pg_use_end(&u);
done:
	free(qtext);
	return rc;
}
