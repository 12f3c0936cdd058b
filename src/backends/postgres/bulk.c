/*
 * bulk.c - batches through COPY (binary format), all or nothing.
 *
 * Entities: COPY straight into graph_entities inside a transaction (or a
 * savepoint of the caller's): the primary key refuses an id already
 * stored, the error's "line N" names the batch item, and the rollback
 * leaves nothing. With KG_BULK_SKIP_EXISTING the rows go through a
 * temporary staging table and INSERT ... ON CONFLICT DO NOTHING.
 *
 * Relations: the batch's distinct endpoints are locked (key share, as
 * single adds do, so a concurrent delete_entity waits) in one query that
 * also returns the missing ones (the first dangling item by batch order is
 * then named and nothing is written); then COPY straight into the table.
 * With KG_BULK_SKIP_EXISTING, or under RLS (COPY FROM refuses tables with
 * row-level security), rows go through a temporary staging table and one
 * INSERT ... SELECT that keeps only rows whose endpoints exist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* ------------------------------------------------------------------ */
/* Binary COPY writer                                                   */
/* ------------------------------------------------------------------ */

#define COPY_CHUNK (1u << 20)

typedef struct copy_buf {
	PGconn *pg;
	unsigned char *data;
	size_t len, cap;
	int failed;
} copy_buf;

static int cb_reserve(copy_buf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return 0;
	if (b->len && b->len + n > COPY_CHUNK) {
		if (PQputCopyData(b->pg, (const char *)b->data, (int)b->len) != 1)
			b->failed = 1;
		b->len = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : COPY_CHUNK;
		while (cap < b->len + n)
			cap *= 2;
		unsigned char *d = realloc(b->data, cap);
		if (!d)
			return KG_ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	return 0;
}

static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static int cb_tuple(copy_buf *b, int nfields)
{
	if (cb_reserve(b, 2) < 0)
		return KG_ENOMEM;
	put_u16(b->data + b->len, (uint16_t)nfields);
	b->len += 2;
	return 0;
}

/* A field: `prefix` (the jsonb version byte) then `len` bytes. NULL data
 * and no prefix is SQL NULL. */
static int cb_field(copy_buf *b, const void *data, size_t len, int prefix)
{
	if (cb_reserve(b, 4 + len + 1) < 0)
		return KG_ENOMEM;
	if (!data && prefix < 0) {
		put_u32(b->data + b->len, 0xffffffffu);
		b->len += 4;
		return 0;
	}
	put_u32(b->data + b->len, (uint32_t)(len + (prefix >= 0)));
	b->len += 4;
	if (prefix >= 0)
		b->data[b->len++] = (unsigned char)prefix;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

static int cb_text(copy_buf *b, const char *s) { return cb_field(b, s, s ? strlen(s) : 0, -1); }
static int cb_jsonb(copy_buf *b, const char *s)
{
	char *owned;
	const char *text = pg_json_for_jsonb(s, &owned);
	if (!text)
		return KG_ENOMEM;
	int rc = cb_field(b, text, strlen(text), 1);
	free(owned);
	return rc;
}

static int cb_int8(copy_buf *b, int64_t v)
{
	unsigned char x[8];
	put_u64(x, (uint64_t)v);
	return cb_field(b, x, 8, -1);
}

static int cb_float8(copy_buf *b, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, 8);
	unsigned char x[8];
	put_u64(x, bits);
	return cb_field(b, x, 8, -1);
}

static int cb_time(copy_buf *b, int64_t us) { return cb_int8(b, us - PG_EPOCH_OFFSET_US); }

static int cb_embedding(copy_buf *b, const float *v, size_t dim)
{
	if (!v || !dim)
		return cb_field(b, NULL, 0, -1);
	if (cb_reserve(b, 4 + dim * 4) < 0)
		return KG_ENOMEM;
	put_u32(b->data + b->len, (uint32_t)(dim * 4));
	b->len += 4;
	kg_embedding_to_le(v, dim, b->data + b->len);
	b->len += dim * 4;
	return 0;
}

static int cb_header(copy_buf *b)
{
	static const unsigned char sig[11] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0 };
	if (cb_reserve(b, 19) < 0)
		return KG_ENOMEM;
	memcpy(b->data + b->len, sig, 11);
	memset(b->data + b->len + 11, 0, 8); /* flags, header extension length */
	b->len += 19;
	return 0;
}

/* The batch item a COPY error points at ("..., line N"), or -1. */
static long copy_error_item(const PGresult *res)
{
	const char *ctx = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
	const char *line = ctx ? strstr(ctx, ", line ") : NULL;
	if (!line)
		return -1;
	long n = strtol(line + 7, NULL, 10);
	return n >= 1 ? n - 1 : -1;
}

/*
 * Runs `copy_sql` (COPY ... FROM STDIN) and streams the rows `row` writes.
 * On failure the server's result is left in *failed_res for the caller to
 * read (and PQclear).
 */
typedef int (*row_writer)(copy_buf *b, const void *items, size_t i, const char *tenant);

static int run_copy(pg_use *u, kg_call *c, const char *copy_sql, const void *items, size_t n, row_writer row,
                    const char *tenant, PGresult **failed_res, const char *what)
{
	kg_pg_conn *k = u->conn;
	copy_buf b = { .pg = k->pg };
	int rc = 0;
	*failed_res = NULL;
	PGresult *r = PQexec(k->pg, copy_sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		rc = pg_result_error(k, c, r, what);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	const char *abort_msg = NULL;
	if (cb_header(&b) < 0)
		abort_msg = "out of memory";
	for (size_t i = 0; i < n && !abort_msg && !b.failed; i++)
		if (row(&b, items, i, tenant) < 0)
			abort_msg = "out of memory";
	if (!abort_msg && cb_reserve(&b, 2) == 0) {
		put_u16(b.data + b.len, 0xffffu); /* trailer */
		b.len += 2;
	}
	if (!abort_msg && b.len && PQputCopyData(k->pg, (const char *)b.data, (int)b.len) != 1)
		b.failed = 1;
	free(b.data);
	PQputCopyEnd(k->pg, abort_msg);
	PGresult *last = NULL;
	while ((r = PQgetResult(k->pg)) != NULL) {
		PQclear(last);
		last = r;
	}
	if (abort_msg) {
		PQclear(last);
		return kg_call_error(c, KG_ENOMEM, "%s: %s while sending the batch; nothing was added", what, abort_msg);
	}
	if (PQresultStatus(last) != PGRES_COMMAND_OK) {
		rc = pg_result_error(k, c, last, what);
		*failed_res = last;
		return rc;
	}
	PQclear(last);
	return 0;
}

/* Runs a statement, keeping the failed result for the caller to read;
 * *affected gets the row count on success. */
static int exec_keep_error(pg_use *u, kg_call *c, const char *sql, const pg_params *p, PGresult **failed,
                           size_t *affected, const char *what)
{
	int rc;
	const char *name = pg_prepared(u->conn, c, sql, p->n, &rc, what);
	if (!name)
		return rc;
	PGresult *r = *name ? PQexecPrepared(u->conn->pg, name, p->n, p->v, p->len, p->fmt, 1)
	                    : PQexecParams(u->conn->pg, sql, p->n, NULL, p->v, p->len, p->fmt, 1);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		rc = pg_result_error(u->conn, c, r, what);
		*failed = r;
		return rc;
	}
	*affected = strtoul(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

/*
 * Inserts the staged rows behind a savepoint; when an id is already
 * stored, goes back to the savepoint and names the first such item by
 * batch order (the server's own detail is withheld under RLS).
 */
static int insert_staged(pg_use *u, kg_call *c, const char *insert_sql, const char *find_dup_sql, const pg_params *p,
                         size_t *affected, const char *kind, const char *tb, const char *what)
{
	PGresult *failed = NULL;
	int rc = pg_exec_simple(u->conn, c, "SAVEPOINT kg_insert", what);
	if (rc < 0)
		return rc;
	rc = exec_keep_error(u, c, insert_sql, p, &failed, affected, what);
	PQclear(failed);
	if (rc != KG_EEXISTS)
		return rc == 0 ? pg_exec_simple(u->conn, c, "RELEASE SAVEPOINT kg_insert", what) : rc;
	if (pg_exec_simple(u->conn, c, "ROLLBACK TO SAVEPOINT kg_insert", what) < 0)
		return rc;
	PGresult *r = pg_exec(u->conn, c, find_dup_sql, p, &rc, what);
	if (!r)
		return rc;
	if (PQntuples(r) > 0)
		rc = kg_call_error(c, KG_EEXISTS,
		                   "%s: %s id '%s' (item %lld of the batch) already exists%s; nothing of the batch was "
		                   "added: remove it, or pass KG_BULK_SKIP_EXISTING",
		                   what, kind, pg_get_text(r, 0, 1), (long long)pg_get_int8(r, 0, 0), tb);
	else
		rc = kg_call_error(c, KG_EEXISTS, "%s: an id of the batch was added by another connection meanwhile; "
		                   "nothing of the batch was added: retry", what);
	PQclear(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Entities                                                             */
/* ------------------------------------------------------------------ */

/* The 7 columns after the first (tenant_id in the table, ord in the
 * staging table). */
static int entity_fields(copy_buf *b, const kg_entity *e)
{
	if (cb_text(b, e->id) < 0 || cb_text(b, e->entity_type) < 0 || cb_jsonb(b, e->properties) < 0 ||
	    cb_embedding(b, e->embedding, e->embedding_dim) < 0 || cb_time(b, e->created_at) < 0 ||
	    cb_time(b, e->updated_at) < 0 || cb_text(b, e->source) < 0)
		return KG_ENOMEM;
	return 0;
}

static int entity_row(copy_buf *b, const void *items, size_t i, const char *tenant)
{
	if (cb_tuple(b, 8) < 0 || cb_text(b, tenant) < 0)
		return KG_ENOMEM;
	return entity_fields(b, (const kg_entity *)items + i);
}

static int staged_entity_row(copy_buf *b, const void *items, size_t i, const char *tenant)
{
	(void)tenant;
	if (cb_tuple(b, 8) < 0 || cb_int8(b, (int64_t)i) < 0)
		return KG_ENOMEM;
	return entity_fields(b, (const kg_entity *)items + i);
}

static const char STAGE_ENTITIES[] =
	"CREATE TEMP TABLE IF NOT EXISTS kg_stage_entities (ord int8, id text, entity_type text,"
	" properties jsonb, embedding bytea, created_at timestamp, updated_at timestamp, source text)"
	" ON COMMIT DELETE ROWS; DELETE FROM kg_stage_entities";
static const char INSERT_STAGED_ENTITIES[] =
	"INSERT INTO {E} (tenant_id, id, entity_type, properties, embedding, created_at, updated_at, source)"
	" SELECT $1, id, entity_type, properties, embedding, created_at, updated_at, source"
	" FROM kg_stage_entities ORDER BY ord";
static const char INSERT_STAGED_ENTITIES_SKIP[] =
	"INSERT INTO {E} (tenant_id, id, entity_type, properties, embedding, created_at, updated_at, source)"
	" SELECT $1, id, entity_type, properties, embedding, created_at, updated_at, source"
	" FROM kg_stage_entities ORDER BY ord ON CONFLICT (id, tenant_id) DO NOTHING";

static const char FIND_STAGED_ENTITY_DUP[] =
	"SELECT s.ord, s.id FROM kg_stage_entities s JOIN {E} x ON x.tenant_id = $1 AND x.id = s.id"
	" ORDER BY s.ord LIMIT 1";

int pg_add_entities(kg_backend *b, kg_call *c, const kg_entity *ents, size_t n, unsigned flags, size_t *added)
{
	pg_backend *pb = (pg_backend *)b;
	pg_use u;
	const pg_tables *t;
	char sql[1024], tb[300];
	PGresult *failed = NULL;
	const char *tenant = c->tenant ? c->tenant : "";
	const char *where = pg_in_tenant(c, tb, sizeof(tb));
	int rc = pg_use_begin(pb, c, 1, &u);
	if (rc < 0)
		return rc;
	if ((rc = pg_tables_for(pb, c, &u, &t)) < 0 || (rc = pg_op_begin(&u, c, "add_entities")) < 0)
		goto cleanup;
	/* Straight into the table, unless rows must be skipped, or RLS
	 * applies (COPY FROM refuses tables with row-level security). */
	int skip = (flags & KG_BULK_SKIP_EXISTING) != 0;
	if (!skip && pb->tenancy != PG_TENANCY_RLS) {
		pg_sql(t,
		       "COPY {E} (tenant_id, id, entity_type, properties, embedding, created_at, updated_at, source)"
		       " FROM STDIN (FORMAT binary)",
		       sql, sizeof(sql));
		rc = run_copy(&u, c, sql, ents, n, entity_row, tenant, &failed, "add_entities");
		if (rc == KG_EEXISTS) {
			long item = copy_error_item(failed);
			if (item >= 0 && (size_t)item < n)
				rc = kg_call_error(c, KG_EEXISTS,
				                   "add_entities: entity id '%s' (item %ld of the batch) already exists%s; nothing "
				                   "of the batch was added: remove it, or pass KG_BULK_SKIP_EXISTING",
				                   ents[item].id, item, where);
		}
		if (rc == 0)
			*added = n;
	} else {
		if ((rc = pg_exec_simple(u.conn, c, STAGE_ENTITIES, "add_entities")) < 0)
			goto end;
		rc = run_copy(&u, c, "COPY kg_stage_entities FROM STDIN (FORMAT binary)", ents, n, staged_entity_row, tenant,
		              &failed, "add_entities");
		if (rc < 0)
			goto end;
		pg_params p = { 0 };
		pg_param_text(&p, tenant);
		pg_sql(t, skip ? INSERT_STAGED_ENTITIES_SKIP : INSERT_STAGED_ENTITIES, sql, sizeof(sql));
		char find[512];
		pg_sql(t, FIND_STAGED_ENTITY_DUP, find, sizeof(find));
		rc = insert_staged(&u, c, sql, find, &p, added, "entity", where, "add_entities");
	}
end:
	rc = pg_op_end(&u, c, rc, "add_entities");
	if (rc < 0)
		*added = 0;
cleanup:
	PQclear(failed);
	pg_use_end(&u);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Relations straight into the table                                    */
/* ------------------------------------------------------------------ */

/* The distinct endpoint ids of a batch (pointers into the batch). */
typedef struct id_set {
	const char **slot;
	size_t mask, count;
	const char **list; /* in first-seen order */
} id_set;

/* 1 if added, 0 if there, < 0 out of memory. */
static int id_set_add(id_set *set, const char *id)
{
	size_t j = kg_hash_str(id) & set->mask;
	for (; set->slot[j]; j = (j + 1) & set->mask)
		if (!strcmp(set->slot[j], id))
			return 0;
	set->slot[j] = id;
	set->list[set->count++] = id;
	return 1;
}

static int id_set_has(const id_set *set, const char *id)
{
	for (size_t j = kg_hash_str(id) & set->mask; set->slot[j]; j = (j + 1) & set->mask)
		if (!strcmp(set->slot[j], id))
			return 1;
	return 0;
}

static int endpoints_of(const kg_relation *rels, size_t n, id_set *set)
{
	size_t cap = 16;
	while (cap < 4 * n)
		cap <<= 1;
	set->slot = calloc(cap, sizeof(*set->slot));
	set->list = malloc(2 * n * sizeof(*set->list));
	set->mask = cap - 1;
	set->count = 0;
	if (!set->slot || !set->list)
		return KG_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		id_set_add(set, rels[i].source_id);
		id_set_add(set, rels[i].target_id);
	}
	return 0;
}

/* Locks every distinct endpoint (key share, so a concurrent delete waits
 * for this transaction) and returns those that do not exist. */
static const char LOCK_ENDPOINTS[] =
	"WITH locked AS (SELECT id FROM {E} WHERE tenant_id = $1 AND id = ANY ($2::text[]) FOR KEY SHARE)"
	" SELECT u.id FROM unnest($2::text[]) u(id) WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.id = u.id)";

/* The 9 columns after the first (tenant_id, or ord when staged). */
static int relation_fields(copy_buf *b, const kg_relation *x)
{
	if (cb_text(b, x->id) < 0 || cb_text(b, x->relation_type) < 0 || cb_text(b, x->source_id) < 0 ||
	    cb_text(b, x->target_id) < 0 || cb_jsonb(b, x->properties) < 0 || cb_float8(b, x->weight) < 0 ||
	    cb_time(b, x->created_at) < 0 || cb_time(b, x->updated_at) < 0 || cb_text(b, x->source) < 0)
		return KG_ENOMEM;
	return 0;
}

static int relation_row_direct(copy_buf *b, const void *items, size_t i, const char *tenant)
{
	if (cb_tuple(b, 10) < 0 || cb_text(b, tenant) < 0)
		return KG_ENOMEM;
	return relation_fields(b, (const kg_relation *)items + i);
}

/* Inside the caller's op: checks and locks the endpoints, then COPY. */
static int add_relations_direct(pg_use *u, kg_call *c, const pg_tables *t, const kg_relation *rels, size_t n,
                                const char *tenant, const char *tb)
{
	id_set ends = { 0 }, missing = { 0 };
	char *arr = NULL, sql[1024];
	PGresult *r = NULL, *failed = NULL;
	int rc = endpoints_of(rels, n, &ends);
	if (rc < 0 || !(arr = pg_text_array(ends.list, ends.count))) {
		rc = kg_call_error(c, KG_ENOMEM, "add_relations: out of memory for a batch of %zu", n);
		goto cleanup;
	}
	pg_params p = { 0 };
	pg_param_text(&p, tenant);
	pg_param_text(&p, arr);
	pg_sql(t, LOCK_ENDPOINTS, sql, sizeof(sql));
	if (!(r = pg_exec(u->conn, c, sql, &p, &rc, "add_relations")))
		goto cleanup;
	if (PQntuples(r) > 0) {
		/* Name the first item, by batch order, with a missing endpoint. */
		size_t cap = 16, rows = (size_t)PQntuples(r);
		while (cap < 4 * rows)
			cap <<= 1;
		missing.slot = calloc(cap, sizeof(*missing.slot));
		missing.list = malloc(rows * sizeof(*missing.list));
		missing.mask = cap - 1;
		if (!missing.slot || !missing.list) {
			rc = kg_call_error(c, KG_ENOMEM, "add_relations: out of memory");
			goto cleanup;
		}
		for (size_t i = 0; i < rows; i++)
			id_set_add(&missing, PQgetvalue(r, (int)i, 0));
		for (size_t i = 0; i < n; i++) {
			int src_gone = id_set_has(&missing, rels[i].source_id);
			if (src_gone || id_set_has(&missing, rels[i].target_id)) {
				rc = kg_call_error(c, KG_ENOTFOUND,
				                   "add_relations: relation '%s' (item %zu of the batch): %s entity '%s' not "
				                   "found%s; nothing of the batch was added: add the entity first",
				                   rels[i].id, i, src_gone ? "source" : "target",
				                   src_gone ? rels[i].source_id : rels[i].target_id, tb);
				goto cleanup;
			}
		}
	}
	pg_sql(t,
	       "COPY {R} (tenant_id, id, relation_type, source_id, target_id, properties, weight, created_at,"
	       " updated_at, source) FROM STDIN (FORMAT binary)",
	       sql, sizeof(sql));
	rc = run_copy(u, c, sql, rels, n, relation_row_direct, tenant, &failed, "add_relations");
	if (rc == KG_EEXISTS) {
		long item = copy_error_item(failed);
		if (item >= 0 && (size_t)item < n)
			rc = kg_call_error(c, KG_EEXISTS,
			                   "add_relations: relation id '%s' (item %ld of the batch) already exists%s; nothing "
			                   "of the batch was added: remove it, or pass KG_BULK_SKIP_EXISTING",
			                   rels[item].id, item, tb);
	}
cleanup:
	free(ends.slot);
	free(ends.list);
	free(missing.slot);
	free(missing.list);
	free(arr);
	PQclear(r);
	PQclear(failed);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Relations                                                            */
/* ------------------------------------------------------------------ */

static int relation_row(copy_buf *b, const void *items, size_t i, const char *tenant)
{
	(void)tenant;
	if (cb_tuple(b, 10) < 0 || cb_int8(b, (int64_t)i) < 0)
		return KG_ENOMEM;
	return relation_fields(b, (const kg_relation *)items + i);
}

static const char FIND_STAGED_RELATION_DUP[] =
	"SELECT s.ord, s.id FROM kg_stage_relations s JOIN {R} x ON x.tenant_id = $1 AND x.id = s.id"
	" ORDER BY s.ord LIMIT 1";

static const char STAGE_RELATIONS[] =
	"CREATE TEMP TABLE IF NOT EXISTS kg_stage_relations (ord int8, id text, relation_type text,"
	" source_id text, target_id text, properties jsonb, weight float8, created_at timestamp,"
	" updated_at timestamp, source text) ON COMMIT DELETE ROWS; DELETE FROM kg_stage_relations";

#define STAGED_ENDPOINTS_EXIST                                                                          \
	" EXISTS (SELECT 1 FROM {E} e WHERE e.tenant_id = $1 AND e.id = s.source_id FOR KEY SHARE)"        \
	" AND EXISTS (SELECT 1 FROM {E} e WHERE e.tenant_id = $1 AND e.id = s.target_id FOR KEY SHARE)"

static const char INSERT_STAGED_RELATIONS[] =
	"INSERT INTO {R} (tenant_id, id, relation_type, source_id, target_id, properties, weight, created_at,"
	" updated_at, source)"
	" SELECT $1, s.id, s.relation_type, s.source_id, s.target_id, s.properties, s.weight, s.created_at,"
	" s.updated_at, s.source FROM kg_stage_relations s WHERE" STAGED_ENDPOINTS_EXIST " ORDER BY s.ord";
static const char INSERT_STAGED_RELATIONS_SKIP[] =
	"INSERT INTO {R} (tenant_id, id, relation_type, source_id, target_id, properties, weight, created_at,"
	" updated_at, source)"
	" SELECT $1, s.id, s.relation_type, s.source_id, s.target_id, s.properties, s.weight, s.created_at,"
	" s.updated_at, s.source FROM kg_stage_relations s WHERE" STAGED_ENDPOINTS_EXIST
	" ORDER BY s.ord ON CONFLICT (id, tenant_id) DO NOTHING";
/* Run only when rows were left out: the first dangling one. */
static const char FIND_DANGLING[] =
	"SELECT s.ord, EXISTS (SELECT 1 FROM {E} e WHERE e.tenant_id = $1 AND e.id = s.source_id),"
	" EXISTS (SELECT 1 FROM {E} e WHERE e.tenant_id = $1 AND e.id = s.target_id FOR KEY SHARE)"
	" FROM kg_stage_relations s WHERE NOT EXISTS (SELECT 1 FROM {E} e WHERE e.tenant_id = $1 AND e.id = s.source_id)"
	" OR NOT EXISTS (SELECT 1 FROM {E} e WHERE e.tenant_id = $1 AND e.id = s.target_id) ORDER BY s.ord LIMIT 1";

int pg_add_relations(kg_backend *b, kg_call *c, const kg_relation *rels, size_t n, unsigned flags, size_t *added)
{
	pg_backend *pb = (pg_backend *)b;
	pg_use u;
	const pg_tables *t;
	char sql[2048], tb[300];
	PGresult *failed = NULL, *r = NULL;
	const char *tenant = c->tenant ? c->tenant : "";
	const char *where = pg_in_tenant(c, tb, sizeof(tb));
	int skip = (flags & KG_BULK_SKIP_EXISTING) != 0;
	int rc = pg_use_begin(pb, c, 1, &u);
	if (rc < 0)
		return rc;
	if ((rc = pg_tables_for(pb, c, &u, &t)) < 0 || (rc = pg_op_begin(&u, c, "add_relations")) < 0)
		goto cleanup;
	/* Straight into the table unless rows may be skipped or RLS applies. */
	if (!skip && pb->tenancy != PG_TENANCY_RLS) {
		if ((rc = add_relations_direct(&u, c, t, rels, n, tenant, where)) == 0)
			*added = n;
		goto end;
	}
	if ((rc = pg_exec_simple(u.conn, c, STAGE_RELATIONS, "add_relations")) < 0)
		goto end;
	if ((rc = run_copy(&u, c, "COPY kg_stage_relations FROM STDIN (FORMAT binary)", rels, n, relation_row, tenant,
	                   &failed, "add_relations")) < 0)
		goto end;
	pg_params p = { 0 };
	pg_param_text(&p, tenant);
	pg_sql(t, skip ? INSERT_STAGED_RELATIONS_SKIP : INSERT_STAGED_RELATIONS, sql, sizeof(sql));
	size_t inserted = 0;
	char find[512];
	pg_sql(t, FIND_STAGED_RELATION_DUP, find, sizeof(find));
	if ((rc = insert_staged(&u, c, sql, find, &p, &inserted, "relation", where, "add_relations")) < 0)
		goto end;
	if (inserted < n) {
		/* Left out: a dangling endpoint (or, when skipping, an id already
		 * there). The first dangling item by batch order fails the batch. */
		pg_sql(t, FIND_DANGLING, sql, sizeof(sql));
		if (!(r = pg_exec(u.conn, c, sql, &p, &rc, "add_relations")))
			goto end;
		if (PQntuples(r) > 0) {
			size_t item = (size_t)pg_get_int8(r, 0, 0);
			int src_ok = pg_get_bool(r, 0, 1);
			const kg_relation *x = item < n ? &rels[item] : &rels[0];
			rc = kg_call_error(c, KG_ENOTFOUND,
			                   "add_relations: relation '%s' (item %zu of the batch): %s entity '%s' not found%s; "
			                   "nothing of the batch was added: add the entity first",
			                   x->id, item, src_ok ? "target" : "source", src_ok ? x->target_id : x->source_id, where);
			goto end;
		}
		if (!skip) {
			rc = kg_call_error(c, KG_EBUSY, "add_relations: endpoints of %zu relations changed while the batch was "
			                   "stored (another connection added or deleted them); nothing was added: retry",
			                   n - inserted);
			goto end;
		}
	}
	*added = inserted;
end:
	rc = pg_op_end(&u, c, rc, "add_relations");
	if (rc < 0)
		*added = 0;
cleanup:
	PQclear(r);
	PQclear(failed);
	pg_use_end(&u);
	return rc;
}
