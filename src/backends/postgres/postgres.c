/*
 * postgres.c - the PostgreSQL backend: opening, connections per call,
 * transactions, and the single-statement operations.
 *
 * Every call borrows a pool connection for its duration (or uses the one
 * its transaction pinned). Statements are prepared once per connection and
 * run with binary parameters and results. A call made of several
 * statements sends them in one round trip (libpq pipeline mode) inside
 * BEGIN/COMMIT, or inside a savepoint when the caller has a transaction
 * open, so a failing call never leaves half its work or breaks the
 * caller's transaction.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

static pg_backend *PB(kg_backend *b) { return (pg_backend *)b; }

static const char *tenant_key(const kg_call *c) { return c->tenant ? c->tenant : ""; }

const char *pg_in_tenant(const kg_call *c, char *buf, size_t cap)
{
	if (!c->tenant)
		return "";
	snprintf(buf, cap, " in tenant '%s'", c->tenant);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Connections for a call                                               */
/* ------------------------------------------------------------------ */

int pg_use_begin(pg_backend *pb, kg_call *c, int for_write, pg_use *u)
{
	memset(u, 0, sizeof(*u));
	/* With a replica and read_your_writes off, even a transaction's reads
	 * go to the replica (they do not see the transaction's writes). */
	int to_replica = c->txn && !for_write && pb->read_pool && !pb->read_your_writes;
	if (c->txn && !to_replica) {
		pg_txn *t = c->txn;
		if (t->failed || !t->conn)
			return kg_call_error(c, KG_ECONNLOST,
			                     "this transaction's connection to PostgreSQL was lost; roll it back "
			                     "and run it again");
		u->conn = t->conn;
		u->txn = t;
		u->in_txn = 1;
		/* A tenant view of the transaction may name another tenant. */
		if (pb->tenancy == PG_TENANCY_RLS) {
			int rc = pg_set_tenant(u->conn, c, tenant_key(c));
			if (rc < 0) {
				u->conn = NULL;
				return rc;
			}
		}
		return 0;
	}
	kg_pg_pool *pool = !for_write && pb->read_pool ? pb->read_pool : pb->pool;
	int rc = pg_pool_acquire(pool, c, &u->conn);
	if (rc < 0)
		return rc;
	u->owned = 1;
	if (pb->tenancy == PG_TENANCY_RLS && (rc = pg_set_tenant(u->conn, c, tenant_key(c))) < 0) {
		pg_use_end(u);
		return rc;
	}
	return 0;
}

void pg_use_end(pg_use *u)
{
	if (!u->conn)
		return;
	if (u->owned)
		pg_pool_release(u->conn);
	else if (u->txn && u->conn->broken)
		u->txn->failed = 1;
	u->conn = NULL;
}

/* ------------------------------------------------------------------ */
/* Statement batches: one round trip, all or nothing                    */
/* ------------------------------------------------------------------ */

/* The next result of a pipeline; NULL once the connection is gone. */
static PGresult *pipe_result(PGconn *pg)
{
	PGresult *r = PQgetResult(pg);
	if (!r)
		return NULL;
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_PIPELINE_SYNC) {
		/* Each query's results end with a NULL. */
		PGresult *extra;
		int guard = 0;
		while ((extra = PQgetResult(pg)) != NULL && guard++ < 8)
			PQclear(extra);
	}
	return r;
}

static int result_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	return r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

int pg_batch(pg_use *u, kg_call *c, int n, const pg_stmt_call *stmts, PGresult **res, const char *what)
{
	kg_pg_conn *k = u->conn;
	const char *names[PG_MAX_BATCH];
	int rc = 0, wrap = u->in_txn ? !u->op_depth : n > 1 && !u->op_depth;
	for (int i = 0; i < n; i++)
		res[i] = NULL;
	if (n == 1 && !wrap) {
		res[0] = pg_exec(k, c, stmts[0].sql, stmts[0].p, &rc, what);
		return rc;
	}
	for (int i = 0; i < n; i++)
		if (!(names[i] = pg_prepared(k, c, stmts[i].sql, stmts[i].p ? stmts[i].p->n : 0, &rc, what)))
			return rc;
	PGconn *pg = k->pg;
	if (!PQenterPipelineMode(pg))
		return pg_result_error(k, c, NULL, what);
	static const pg_params none = { 0 };
	int sent = 1;
	if (wrap)
		sent &= PQsendQueryParams(pg, u->in_txn ? "SAVEPOINT kg_call" : "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
	for (int i = 0; i < n; i++) {
		const pg_params *p = stmts[i].p ? stmts[i].p : &none;
		sent &= *names[i] ? PQsendQueryPrepared(pg, names[i], p->n, p->v, p->len, p->fmt, 1)
		                  : PQsendQueryParams(pg, stmts[i].sql, p->n, NULL, p->v, p->len, p->fmt, 1);
	}
	if (wrap)
		sent &= PQsendQueryParams(pg, u->in_txn ? "RELEASE SAVEPOINT kg_call" : "COMMIT", 0, NULL, NULL, NULL,
		                          NULL, 0);
	sent &= PQpipelineSync(pg);
	PGresult *first_error = NULL;
	int lost = !sent;
	int total = n + (wrap ? 2 : 0);
	for (int i = 0; i < total && !lost; i++) {
		PGresult *r = pipe_result(pg);
		if (!r) {
			lost = 1;
			break;
		}
		int idx = wrap ? i - 1 : i;
		if (!result_ok(r) && PQresultStatus(r) != PGRES_PIPELINE_ABORTED && !first_error) {
			first_error = r;
			continue;
		}
		if (idx >= 0 && idx < n && result_ok(r))
			res[idx] = r;
		else if (r != first_error)
			PQclear(r);
	}
	if (!lost) {
		PGresult *sync = PQgetResult(pg);
		lost = !sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC;
		PQclear(sync);
	}
	if (lost || !PQexitPipelineMode(pg)) {
		rc = pg_result_error(k, c, first_error, what);
		if (rc != KG_ECONNLOST) { /* a confused connection is not reused */
			k->broken = 1;
			rc = kg_call_error(c, KG_ECONNLOST, "%s: the connection to PostgreSQL at %s broke mid-call; retry",
			                   what, k->pool->where);
		}
		goto fail;
	}
	if (first_error) {
		rc = pg_result_error(k, c, first_error, what);
		goto fail;
	}
	return 0;
fail:
	PQclear(first_error);
	for (int i = 0; i < n; i++) {
		PQclear(res[i]);
		res[i] = NULL;
	}
	if (rc != KG_ECONNLOST && PQstatus(pg) == CONNECTION_OK) {
		char scratch[256];
		kg_call quiet = { .msg = scratch, .msgcap = sizeof(scratch) };
		if (wrap && u->in_txn)
			pg_exec_simple(k, &quiet, "ROLLBACK TO SAVEPOINT kg_call; RELEASE SAVEPOINT kg_call", what);
		else if (wrap)
			pg_exec_simple(k, &quiet, "ROLLBACK", what);
	}
	return rc;
}

PGresult *pg_run(pg_use *u, kg_call *c, const char *sql, const pg_params *p, int *rc, const char *what)
{
	pg_stmt_call s = { sql, p };
	PGresult *res = NULL;
	*rc = pg_batch(u, c, 1, &s, &res, what);
	return res;
}

int pg_op_begin(pg_use *u, kg_call *c, const char *what)
{
	int rc = pg_exec_simple(u->conn, c, u->in_txn ? "SAVEPOINT kg_op" : "BEGIN", what);
	if (rc == 0)
		u->op_depth++;
	return rc;
}

int pg_op_end(pg_use *u, kg_call *c, int rc, const char *what)
{
	if (!u->op_depth)
		return rc;
	u->op_depth--;
	if (u->conn->broken || PQstatus(u->conn->pg) != CONNECTION_OK)
		return rc < 0 ? rc : pg_result_error(u->conn, c, NULL, what);
	if (rc == 0)
		return pg_exec_simple(u->conn, c, u->in_txn ? "RELEASE SAVEPOINT kg_op" : "COMMIT", what);
	char scratch[256];
	kg_call quiet = { .msg = scratch, .msgcap = sizeof(scratch) };
	pg_exec_simple(u->conn, &quiet, u->in_txn ? "ROLLBACK TO SAVEPOINT kg_op; RELEASE SAVEPOINT kg_op" : "ROLLBACK",
	               what);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Tables per call                                                      */
/* ------------------------------------------------------------------ */

static pg_tenant_tables *tenant_slot(pg_backend *pb, const char *tenant)
{
	for (size_t i = 0; i < pb->n_tenant_tables; i++)
		if (!strcmp(pb->tenant_tables[i]->tenant, tenant))
			return pb->tenant_tables[i];
	return NULL;
}

int pg_tables_for(pg_backend *pb, kg_call *c, pg_use *u, const pg_tables **out)
{
	(void)u;
	if (pb->tenancy != PG_TENANCY_SCHEMA || !c->tenant) {
		*out = &pb->shared;
		return 0;
	}
	pthread_mutex_lock(&pb->tenants_mu);
	pg_tenant_tables *slot = tenant_slot(pb, c->tenant);
	int ready = slot && slot->t.ready;
	if (ready)
		*out = &slot->t;
	pthread_mutex_unlock(&pb->tenants_mu);
	if (ready)
		return 0;
	/* Made on a connection of its own: not inside the caller's
	 * transaction, whose rollback would take the schema away. */
	pg_tables t;
	kg_pg_conn *k = NULL;
	int rc = pg_schema_tenant_tables(pb, c->tenant, &t);
	if (rc < 0)
		return kg_call_error(c, rc, "out of memory naming the schema of tenant '%s'", c->tenant);
	if ((rc = pg_pool_acquire(pb->pool, c, &k)) < 0) {
		pg_tables_free(&t);
		return rc;
	}
	rc = pg_schema_setup(pb, k, c, &t, c->tenant);
	pg_pool_release(k);
	if (rc < 0) {
		pg_tables_free(&t);
		return rc;
	}
	pthread_mutex_lock(&pb->tenants_mu);
	slot = tenant_slot(pb, c->tenant);
	if (!slot) {
		if (pb->n_tenant_tables == pb->cap_tenant_tables) {
			size_t cap = pb->cap_tenant_tables ? pb->cap_tenant_tables * 2 : 16;
			pg_tenant_tables **nt = realloc(pb->tenant_tables, cap * sizeof(*nt));
			if (!nt)
				goto oom_locked;
			pb->tenant_tables = nt;
			pb->cap_tenant_tables = cap;
		}
		if (!(slot = calloc(1, sizeof(*slot))))
			goto oom_locked;
		if (!(slot->tenant = strdup(c->tenant))) {
			free(slot);
			goto oom_locked;
		}
		slot->t = t;
		pb->tenant_tables[pb->n_tenant_tables++] = slot;
	} else {
		pg_tables_free(&t); /* another thread made it meanwhile */
	}
	*out = &slot->t;
	pthread_mutex_unlock(&pb->tenants_mu);
	return 0;
oom_locked:
	pthread_mutex_unlock(&pb->tenants_mu);
	pg_tables_free(&t);
	return kg_call_error(c, KG_ENOMEM, "out of memory");
}

/* Everything a call needs: a connection and its tenant's tables. */
static int call_begin(pg_backend *pb, kg_call *c, int for_write, pg_use *u, const pg_tables **t)
{
	int rc = pg_use_begin(pb, c, for_write, u);
	if (rc < 0)
		return rc;
	if ((rc = pg_tables_for(pb, c, u, t)) < 0)
		pg_use_end(u);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Rows                                                                 */
/* ------------------------------------------------------------------ */

kg_entity *pg_row_entity(const PGresult *r, int row, int col0, const char *tenant)
{
	float stack[256], *heap = NULL;
	kg_entity e = KG_ENTITY_INIT;
	e.id = pg_get_text(r, row, col0);
	e.entity_type = pg_get_text(r, row, col0 + 1);
	e.properties = pg_get_jsonb(r, row, col0 + 2);
	if (!e.properties)
		e.properties = "{}";
	if (!PQgetisnull(r, row, col0 + 3)) {
		size_t dim = (size_t)PQgetlength(r, row, col0 + 3) / 4;
		float *v = dim <= 256 ? stack : (heap = malloc(dim * sizeof(float)));
		if (!v)
			return NULL;
		kg_embedding_from_le((const unsigned char *)PQgetvalue(r, row, col0 + 3), dim, v);
		e.embedding = dim ? v : NULL;
		e.embedding_dim = dim;
	}
	e.created_at = pg_get_time(r, row, col0 + 4);
	e.updated_at = pg_get_time(r, row, col0 + 5);
	e.source = pg_get_text(r, row, col0 + 6);
	e.tenant_id = tenant && *tenant ? tenant : NULL;
	kg_entity *out = kg_entity_dup(&e);
	free(heap);
	return out;
}

kg_relation *pg_row_relation(const PGresult *r, int row, int col0, const char *tenant)
{
	kg_relation x = KG_RELATION_INIT;
	x.id = pg_get_text(r, row, col0);
	x.relation_type = pg_get_text(r, row, col0 + 1);
	x.source_id = pg_get_text(r, row, col0 + 2);
	x.target_id = pg_get_text(r, row, col0 + 3);
	x.properties = pg_get_jsonb(r, row, col0 + 4);
	if (!x.properties)
		x.properties = "{}";
	x.weight = PQgetisnull(r, row, col0 + 5) ? 1.0 : pg_get_float8(r, row, col0 + 5);
	x.created_at = pg_get_time(r, row, col0 + 6);
	x.updated_at = pg_get_time(r, row, col0 + 7);
	x.source = pg_get_text(r, row, col0 + 8);
	x.tenant_id = tenant && *tenant ? tenant : NULL;
	return kg_relation_dup(&x);
}

/* Entity rows of a result into a list (columns from col0; rows whose
 * column `skip_null_col` is NULL are skipped: the head row of a lateral). */
static int rows_to_entities(kg_call *c, const PGresult *r, int col0, int skip_null_col, kg_entity_list **out)
{
	kg_entity_list *l = kg_entity_list_new();
	if (!l)
		return kg_call_error(c, KG_ENOMEM, "out of memory");
	for (int i = 0; i < PQntuples(r); i++) {
		if (skip_null_col >= 0 && PQgetisnull(r, i, skip_null_col))
			continue;
		kg_entity *e = pg_row_entity(r, i, col0, c->tenant);
		if (!e || kg_entity_list_push(l, e) < 0) {
			kg_entity_list_free(l);
			return kg_call_error(c, KG_ENOMEM, "out of memory");
		}
	}
	*out = l;
	return 0;
}

/* The same for relation rows. */
static int rows_to_relations(kg_call *c, const PGresult *r, int col0, int skip_null_col, kg_relation_list **out)
{
	kg_relation_list *l = kg_relation_list_new();
	if (!l)
		return kg_call_error(c, KG_ENOMEM, "out of memory");
	for (int i = 0; i < PQntuples(r); i++) {
		if (skip_null_col >= 0 && PQgetisnull(r, i, skip_null_col))
			continue;
		kg_relation *x = pg_row_relation(r, i, col0, c->tenant);
		if (!x || kg_relation_list_push(l, x) < 0) {
			kg_relation_list_free(l);
			return kg_call_error(c, KG_ENOMEM, "out of memory");
		}
	}
	*out = l;
	return 0;
}

/* One entity or (relation != 0) one relation by id; ENOTFOUND if absent. */
static const char SQL_GET_ENTITY[] = "SELECT " PG_ENT_COLS " FROM {E} WHERE tenant_id = $1 AND id = $2";
static const char SQL_GET_RELATION[] = "SELECT " PG_REL_COLS " FROM {R} WHERE tenant_id = $1 AND id = $2";

static int get_by_id(pg_backend *pb, kg_call *c, const char *id, int relation, void **out)
{
	const char *what = relation ? "get_relation" : "get_entity";
	pg_use u;
	const pg_tables *t;
	char sql[512], tb[300];
	int rc = call_begin(pb, c, 0, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, id);
	pg_sql(t, relation ? SQL_GET_RELATION : SQL_GET_ENTITY, sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, what);
	if (r && PQntuples(r) == 0)
		rc = kg_call_error(c, KG_ENOTFOUND, "%s '%s' not found%s", relation ? "relation" : "entity", id,
		                   pg_in_tenant(c, tb, sizeof(tb)));
	else if (r && !(*out = relation ? (void *)pg_row_relation(r, 0, 0, c->tenant)
	                                : (void *)pg_row_entity(r, 0, 0, c->tenant)))
		rc = kg_call_error(c, KG_ENOMEM, "%s: out of memory", what);
	PQclear(r);
	pg_use_end(&u);
	return rc;
}

/* The embedding as little-endian float32 bytes (NULL when none). */
static unsigned char *embedding_bytes(const kg_entity *e, unsigned char *stack, size_t cap)
{
	if (!e->embedding || !e->embedding_dim)
		return NULL;
	size_t n = e->embedding_dim * 4;
	unsigned char *buf = n <= cap ? stack : malloc(n);
	if (buf)
		kg_embedding_to_le(e->embedding, e->embedding_dim, buf);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Entities                                                             */
/* ------------------------------------------------------------------ */

static int pg_get_entity(kg_backend *b, kg_call *c, const char *id, kg_entity **out)
{
	void *e = NULL;
	int rc = get_by_id(PB(b), c, id, 0, &e);
	if (rc == 0)
		*out = e;
	return rc;
}

static const char SQL_INSERT_ENTITY[] =
	"INSERT INTO {E} (tenant_id, id, entity_type, properties, embedding, created_at, updated_at, source)"
	" VALUES ($1, $2, $3, $4::jsonb, $5::bytea, $6::timestamp, $7::timestamp, $8)"
	" ON CONFLICT (id, tenant_id) DO NOTHING";
static const char SQL_UPSERT_ENTITY[] =
	"INSERT INTO {E} (tenant_id, id, entity_type, properties, embedding, created_at, updated_at, source)"
	" VALUES ($1, $2, $3, $4::jsonb, $5::bytea, $6::timestamp, $7::timestamp, $8)"
	" ON CONFLICT (id, tenant_id) DO UPDATE SET entity_type = EXCLUDED.entity_type,"
	" properties = EXCLUDED.properties, embedding = EXCLUDED.embedding,"
	" updated_at = EXCLUDED.updated_at, source = EXCLUDED.source";
static const char SQL_UPDATE_ENTITY[] =
	"UPDATE {E} SET entity_type = $3, properties = $4::jsonb, embedding = $5::bytea,"
	" updated_at = $6::timestamp, source = $7 WHERE tenant_id = $1 AND id = $2";

/* Writes one entity: insert (EEXISTS if there), update or upsert. */
static int write_entity(pg_backend *pb, kg_call *c, const kg_entity *e, const char *tmpl, int is_update,
                        size_t *affected, const char *what)
{
	pg_use u;
	const pg_tables *t;
	char sql[1024];
	unsigned char stack[1024];
	unsigned char *emb = NULL;
	char *props_owned = NULL;
	PGresult *r = NULL;
	int rc = call_begin(pb, c, 1, &u, &t);
	if (rc < 0)
		return rc;
	emb = embedding_bytes(e, stack, sizeof(stack));
	const char *props = pg_json_for_jsonb(e->properties, &props_owned);
	if ((e->embedding && e->embedding_dim && !emb) || !props) {
		rc = kg_call_error(c, KG_ENOMEM, "%s: out of memory", what);
		goto cleanup;
	}
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, e->id);
	pg_param_text(&p, e->entity_type);
	pg_param_text(&p, props);
	pg_param_bytes(&p, emb, (int)(e->embedding_dim * 4));
	if (!is_update)
		pg_param_time(&p, e->created_at);
	pg_param_time(&p, e->updated_at);
	pg_param_text(&p, e->source);
	pg_sql(t, tmpl, sql, sizeof(sql));
	if ((r = pg_run(&u, c, sql, &p, &rc, what)))
		*affected = strtoul(PQcmdTuples(r), NULL, 10);
cleanup:
	PQclear(r);
	free(props_owned);
	if (emb != stack)
		free(emb);
	pg_use_end(&u);
	return rc;
}

static int pg_update_entity(kg_backend *b, kg_call *c, const kg_entity *e, unsigned flags)
{
	size_t n = 0;
	char tb[300];
	int upsert = (flags & KG_UPSERT) != 0;
	int rc = write_entity(PB(b), c, e, upsert ? SQL_UPSERT_ENTITY : SQL_UPDATE_ENTITY, !upsert, &n,
	                      upsert ? "upsert_entity" : "update_entity");
	if (rc == 0 && n == 0)
		rc = kg_call_error(c, KG_ENOTFOUND,
		                   "entity '%s' not found%s; add it first, or use kg_upsert_entity to add or replace",
		                   e->id, pg_in_tenant(c, tb, sizeof(tb)));
	return rc;
}

int pg_add_entity_one(pg_backend *pb, kg_call *c, const kg_entity *e, unsigned flags, size_t *added)
{
	size_t n = 0;
	char tb[300];
	int rc = write_entity(pb, c, e, SQL_INSERT_ENTITY, 0, &n, "add_entity");
	if (rc < 0)
		return rc;
	*added = n;
	if (n == 0 && !(flags & KG_BULK_SKIP_EXISTING))
		return kg_call_error(c, KG_EEXISTS,
		                     "entity '%s' already exists%s; use kg_update_entity or kg_upsert_entity to replace it",
		                     e->id, pg_in_tenant(c, tb, sizeof(tb)));
	return 0;
}

/* Locks the entity first, so a relation being added to it by another
 * connection (which takes a key-share lock on its endpoints) either
 * commits before the relations are deleted or finds the entity gone. */
static const char SQL_LOCK_ENTITY[] = "SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $2 FOR UPDATE";
static const char SQL_DELETE_ENTITY_RELS[] =
	"DELETE FROM {R} WHERE tenant_id = $1 AND (source_id = $2 OR target_id = $2)";
static const char SQL_DELETE_ENTITY[] = "DELETE FROM {E} WHERE tenant_id = $1 AND id = $2";

static int pg_delete_entity(kg_backend *b, kg_call *c, const char *id)
{
	pg_use u;
	const pg_tables *t;
	char s1[256], s2[256], s3[256], tb[300];
	PGresult *res[3];
	int rc = call_begin(PB(b), c, 1, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, id);
	pg_sql(t, SQL_LOCK_ENTITY, s1, sizeof(s1));
	pg_sql(t, SQL_DELETE_ENTITY_RELS, s2, sizeof(s2));
	pg_sql(t, SQL_DELETE_ENTITY, s3, sizeof(s3));
	pg_stmt_call stmts[3] = { { s1, &p }, { s2, &p }, { s3, &p } };
	rc = pg_batch(&u, c, 3, stmts, res, "delete_entity");
	if (rc == 0 && PQntuples(res[0]) == 0)
		rc = kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s", id, pg_in_tenant(c, tb, sizeof(tb)));
	for (int i = 0; i < 3; i++)
		PQclear(res[i]);
	pg_use_end(&u);
	return rc;
}

static int pg_add_entities_dispatch(kg_backend *b, kg_call *c, const kg_entity *ents, size_t n, unsigned flags,
                                    size_t *added)
{
	*added = 0;
	if (n == 1)
		return pg_add_entity_one(PB(b), c, ents, flags, added);
	return pg_add_entities(b, c, ents, n, flags, added);
}

/* ------------------------------------------------------------------ */
/* Relations                                                            */
/* ------------------------------------------------------------------ */

static int pg_get_relation(kg_backend *b, kg_call *c, const char *id, kg_relation **out)
{
	void *x = NULL;
	int rc = get_by_id(PB(b), c, id, 1, &x);
	if (rc == 0)
		*out = x;
	return rc;
}

/* The endpoints are locked (key share) while the relation is written, so
 * a concurrent delete_entity waits for this statement's transaction. */
#define ENDPOINTS_CTE                                                                                  \
	"WITH s AS (SELECT count(*) AS n FROM (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $4"       \
	" FOR KEY SHARE) x),"                                                                            \
	" t AS (SELECT count(*) AS n FROM (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $5"           \
	" FOR KEY SHARE) x),"

static const char SQL_INSERT_RELATION[] = ENDPOINTS_CTE
	" w AS (INSERT INTO {R} (tenant_id, id, relation_type, source_id, target_id, properties, weight,"
	" created_at, updated_at, source)"
	" SELECT $1, $2, $3, $4, $5, $6::jsonb, $7::float8, $8::timestamp, $9::timestamp, $10"
	" WHERE (SELECT n FROM s) > 0 AND (SELECT n FROM t) > 0"
	" ON CONFLICT (id, tenant_id) DO NOTHING RETURNING 1)"
	" SELECT (SELECT n FROM s), (SELECT n FROM t), (SELECT count(*) FROM w), 1::int8";
static const char SQL_UPSERT_RELATION[] = ENDPOINTS_CTE
	" w AS (INSERT INTO {R} (tenant_id, id, relation_type, source_id, target_id, properties, weight,"
	" created_at, updated_at, source)"
	" SELECT $1, $2, $3, $4, $5, $6::jsonb, $7::float8, $8::timestamp, $9::timestamp, $10"
	" WHERE (SELECT n FROM s) > 0 AND (SELECT n FROM t) > 0"
	" ON CONFLICT (id, tenant_id) DO UPDATE SET relation_type = EXCLUDED.relation_type,"
	" source_id = EXCLUDED.source_id, target_id = EXCLUDED.target_id, properties = EXCLUDED.properties,"
	" weight = EXCLUDED.weight, updated_at = EXCLUDED.updated_at, source = EXCLUDED.source RETURNING 1)"
	" SELECT (SELECT n FROM s), (SELECT n FROM t), (SELECT count(*) FROM w), 1::int8";
static const char SQL_UPDATE_RELATION[] = ENDPOINTS_CTE
	" w AS (UPDATE {R} SET relation_type = $3, source_id = $4, target_id = $5, properties = $6::jsonb,"
	" weight = $7::float8, updated_at = $8::timestamp, source = $9"
	" WHERE tenant_id = $1 AND id = $2 AND (SELECT n FROM s) > 0 AND (SELECT n FROM t) > 0 RETURNING 1)"
	" SELECT (SELECT n FROM s), (SELECT n FROM t), (SELECT count(*) FROM w),"
	" (SELECT count(*) FROM {R} WHERE tenant_id = $1 AND id = $2)";

enum { REL_INSERT, REL_UPSERT, REL_UPDATE };

static int write_relation(pg_backend *pb, kg_call *c, const kg_relation *x, int mode, size_t *added)
{
	static const char *const tmpl[] = { SQL_INSERT_RELATION, SQL_UPSERT_RELATION, SQL_UPDATE_RELATION };
	static const char *const what[] = { "add_relation", "upsert_relation", "update_relation" };
	pg_use u;
	const pg_tables *t;
	char sql[2048], tb[300], *props_owned = NULL;
	const char *props = pg_json_for_jsonb(x->properties, &props_owned);
	if (!props)
		return kg_call_error(c, KG_ENOMEM, "%s: out of memory", what[mode]);
	int rc = call_begin(pb, c, 1, &u, &t);
	if (rc < 0) {
		free(props_owned);
		return rc;
	}
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, x->id);
	pg_param_text(&p, x->relation_type);
	pg_param_text(&p, x->source_id);
	pg_param_text(&p, x->target_id);
	pg_param_text(&p, props);
	pg_param_float8(&p, x->weight);
	if (mode != REL_UPDATE)
		pg_param_time(&p, x->created_at);
	pg_param_time(&p, x->updated_at);
	pg_param_text(&p, x->source);
	pg_sql(t, tmpl[mode], sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, what[mode]);
	if (r) {
		int64_t src = pg_get_int8(r, 0, 0), dst = pg_get_int8(r, 0, 1), written = pg_get_int8(r, 0, 2),
		        exists = pg_get_int8(r, 0, 3);
		const char *where = pg_in_tenant(c, tb, sizeof(tb));
		if (mode == REL_UPDATE && !exists)
			rc = kg_call_error(c, KG_ENOTFOUND,
			                   "relation '%s' not found%s; add it first, or use kg_upsert_relation", x->id, where);
		else if (!src)
			rc = kg_call_error(c, KG_ENOTFOUND, "relation '%s': source entity '%s' not found%s; add it first",
			                   x->id, x->source_id, where);
		else if (!dst)
			rc = kg_call_error(c, KG_ENOTFOUND, "relation '%s': target entity '%s' not found%s; add it first",
			                   x->id, x->target_id, where);
		else if (!written && mode == REL_INSERT)
			*added = 0;
		else
			*added = 1;
	}
	PQclear(r);
	free(props_owned);
	pg_use_end(&u);
	return rc;
}

static int pg_update_relation(kg_backend *b, kg_call *c, const kg_relation *r, unsigned flags)
{
	size_t n = 0;
	return write_relation(PB(b), c, r, flags & KG_UPSERT ? REL_UPSERT : REL_UPDATE, &n);
}

static int pg_add_relations_dispatch(kg_backend *b, kg_call *c, const kg_relation *rels, size_t n, unsigned flags,
                                     size_t *added)
{
	*added = 0;
	if (n != 1)
		return pg_add_relations(b, c, rels, n, flags, added);
	char tb[300];
	int rc = write_relation(PB(b), c, rels, REL_INSERT, added);
	if (rc == 0 && *added == 0 && !(flags & KG_BULK_SKIP_EXISTING))
		rc = kg_call_error(c, KG_EEXISTS,
		                   "relation '%s' already exists%s; use kg_update_relation or kg_upsert_relation to replace it",
		                   rels->id, pg_in_tenant(c, tb, sizeof(tb)));
	return rc;
}

static int pg_delete_relation(kg_backend *b, kg_call *c, const char *id)
{
	pg_use u;
	const pg_tables *t;
	char sql[256], tb[300];
	int rc = call_begin(PB(b), c, 1, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, id);
	pg_sql(t, "DELETE FROM {R} WHERE tenant_id = $1 AND id = $2", sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, "delete_relation");
	if (r && strtoul(PQcmdTuples(r), NULL, 10) == 0)
		rc = kg_call_error(c, KG_ENOTFOUND, "relation '%s' not found%s", id, pg_in_tenant(c, tb, sizeof(tb)));
	PQclear(r);
	pg_use_end(&u);
	return rc;
}

/* The head row says whether the entity exists; the relations follow. */
static const char *const SQL_RELATIONS_OF[] = {
	[KG_OUT] = "SELECT h.ok, x.* FROM (SELECT EXISTS (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $2) AS ok) h"
	           " LEFT JOIN LATERAL (SELECT " PG_REL_COLS ", seq FROM {R} WHERE tenant_id = $1 AND source_id = $2"
	           " AND ($3::text IS NULL OR relation_type = $3)) x ON h.ok ORDER BY x.seq",
	[KG_IN] = "SELECT h.ok, x.* FROM (SELECT EXISTS (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $2) AS ok) h"
	          " LEFT JOIN LATERAL (SELECT " PG_REL_COLS ", seq FROM {R} WHERE tenant_id = $1 AND target_id = $2"
	          " AND ($3::text IS NULL OR relation_type = $3)) x ON h.ok ORDER BY x.seq",
	[KG_BOTH] = "SELECT h.ok, x.* FROM (SELECT EXISTS (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $2) AS ok) h"
	            " LEFT JOIN LATERAL (SELECT " PG_REL_COLS ", seq FROM {R} WHERE tenant_id = $1"
	            " AND (source_id = $2 OR target_id = $2)"
	            " AND ($3::text IS NULL OR relation_type = $3)) x ON h.ok ORDER BY x.seq",
};

static int pg_relations_of(kg_backend *b, kg_call *c, const char *id, const char *relation_type, kg_direction dir,
                           kg_relation_list **out)
{
	pg_use u;
	const pg_tables *t;
	char sql[1024], tb[300];
	int rc = call_begin(PB(b), c, 0, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, id);
	pg_param_text(&p, relation_type);
	pg_sql(t, SQL_RELATIONS_OF[dir], sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, "relations_of");
	if (r && !pg_get_bool(r, 0, 0))
		rc = kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s", id, pg_in_tenant(c, tb, sizeof(tb)));
	else if (r)
		rc = rows_to_relations(c, r, 1, 1, out);
	PQclear(r);
	pg_use_end(&u);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Neighbors, subgraph, listing, property lookup                        */
/* ------------------------------------------------------------------ */

#define NEIGHBOR_OUT "SELECT target_id FROM {R} WHERE tenant_id = $1 AND source_id = $2 AND ($3::text IS NULL OR relation_type = $3)"
#define NEIGHBOR_IN "SELECT source_id FROM {R} WHERE tenant_id = $1 AND target_id = $2 AND ($3::text IS NULL OR relation_type = $3)"
#define NEIGHBORS(inner)                                                                                        \
	"SELECT h.ok, x.* FROM (SELECT EXISTS (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $2) AS ok) h"       \
	" LEFT JOIN LATERAL (SELECT " PG_ENT_COLS ", seq FROM {E} WHERE tenant_id = $1 AND id IN (" inner ")) x"   \
	" ON h.ok ORDER BY x.seq"

static const char *const SQL_NEIGHBORS[] = {
	[KG_OUT] = NEIGHBORS(NEIGHBOR_OUT),
	[KG_IN] = NEIGHBORS(NEIGHBOR_IN),
	[KG_BOTH] = NEIGHBORS(NEIGHBOR_OUT " UNION ALL " NEIGHBOR_IN),
};

static int pg_neighbors(kg_backend *b, kg_call *c, const char *id, const char *relation_type, kg_direction dir,
                        kg_entity_list **out)
{
	pg_use u;
	const pg_tables *t;
	char sql[1536], tb[300];
	int rc = call_begin(PB(b), c, 0, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, id);
	pg_param_text(&p, relation_type);
	pg_sql(t, SQL_NEIGHBORS[dir], sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, "neighbors");
	if (r && !pg_get_bool(r, 0, 0))
		rc = kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s", id, pg_in_tenant(c, tb, sizeof(tb)));
	else if (r)
		rc = rows_to_entities(c, r, 1, 1, out);
	PQclear(r);
	pg_use_end(&u);
	return rc;
}

/* A text[] literal: {"a","b"} with " and \ escaped. */
char *pg_text_array(const char *const *v, size_t n)
{
	size_t need = 3;
	for (size_t i = 0; i < n; i++) {
		need += 3;
		for (const char *s = v[i]; *s; s++)
			need += (*s == '"' || *s == '\\') ? 2 : 1;
	}
	char *out = malloc(need), *d = out;
	if (!out)
		return NULL;
	*d++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*d++ = ',';
		*d++ = '"';
		for (const char *s = v[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				*d++ = '\\';
			*d++ = *s;
		}
		*d++ = '"';
	}
	*d++ = '}';
	*d = '\0';
	return out;
}

static const char SQL_SUBGRAPH_ENTITIES[] =
	"SELECT " PG_ENT_COLS_E " FROM (SELECT id, min(ord) AS ord FROM unnest($2::text[]) WITH ORDINALITY u(id, ord)"
	" GROUP BY id) u JOIN {E} e ON e.tenant_id = $1 AND e.id = u.id ORDER BY u.ord";
/* Relations in the order the generic answer gives: by the position of
 * their source among the ids, then insertion order. */
static const char SQL_SUBGRAPH_RELATIONS[] =
	"SELECT " PG_REL_COLS_R " FROM (SELECT id, min(ord) AS ord FROM unnest($2::text[]) WITH ORDINALITY u(id, ord)"
	" GROUP BY id) u JOIN {R} r ON r.tenant_id = $1 AND r.source_id = u.id"
	" WHERE r.target_id = ANY ($2::text[])"
	" AND EXISTS (SELECT 1 FROM {E} e WHERE e.tenant_id = $1 AND e.id = r.source_id)"
	" AND EXISTS (SELECT 1 FROM {E} e WHERE e.tenant_id = $1 AND e.id = r.target_id)"
	" ORDER BY u.ord, r.seq";

static int pg_subgraph(kg_backend *b, kg_call *c, const char *const *ids, size_t n, kg_subgraph **out)
{
	pg_use u;
	const pg_tables *t;
	char s1[768], s2[1024];
	PGresult *res[2] = { 0 };
	kg_subgraph *g = NULL;
	char *arr = NULL;
	int rc = call_begin(PB(b), c, 0, &u, &t);
	if (rc < 0)
		return rc;
	if (!(arr = pg_text_array(ids, n)) || !(g = calloc(1, sizeof(*g)))) {
		rc = kg_call_error(c, KG_ENOMEM, "subgraph: out of memory");
		goto cleanup;
	}
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, arr);
	pg_sql(t, SQL_SUBGRAPH_ENTITIES, s1, sizeof(s1));
	pg_sql(t, SQL_SUBGRAPH_RELATIONS, s2, sizeof(s2));
	pg_stmt_call stmts[2] = { { s1, &p }, { s2, &p } };
	if ((rc = pg_batch(&u, c, 2, stmts, res, "subgraph")) < 0)
		goto cleanup;
	if ((rc = rows_to_entities(c, res[0], 0, -1, &g->entities)) < 0 ||
	    (rc = rows_to_relations(c, res[1], 0, -1, &g->relations)) < 0)
		goto cleanup;
	*out = g;
	g = NULL;
cleanup:
	kg_subgraph_free(g);
	free(arr);
	PQclear(res[0]);
	PQclear(res[1]);
	pg_use_end(&u);
	return rc;
}

/* Batched get: one statement for any number of ids. */
static int pg_get_entities(kg_backend *b, kg_call *c, const char *const *ids, size_t n, kg_entity_list **out)
{
	pg_use u;
	const pg_tables *t;
	char sql[768];
	char *arr = NULL;
	int rc = call_begin(PB(b), c, 0, &u, &t);
	if (rc < 0)
		return rc;
	if (!(arr = pg_text_array(ids, n))) {
		pg_use_end(&u);
		return kg_call_error(c, KG_ENOMEM, "get_entities: out of memory");
	}
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, arr);
	pg_sql(t, SQL_SUBGRAPH_ENTITIES, sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, "get_entities");
	if (r)
		rc = rows_to_entities(c, r, 0, -1, out);
	PQclear(r);
	free(arr);
	pg_use_end(&u);
	return rc;
}

static const char SQL_LIST_ENTITIES[] =
	"SELECT " PG_ENT_COLS " FROM {E} WHERE tenant_id = $1 AND ($2::text IS NULL OR entity_type = $2)"
	" ORDER BY seq LIMIT $3::int8 OFFSET $4::int8";

static int pg_list_entities(kg_backend *b, kg_call *c, const char *entity_type, size_t limit, size_t offset,
                            kg_entity_list **out)
{
	pg_use u;
	const pg_tables *t;
	char sql[512];
	int rc = call_begin(PB(b), c, 0, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, entity_type);
	if (limit)
		pg_param_int8(&p, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	else
		pg_param_bytes(&p, NULL, 0); /* LIMIT NULL: no limit */
	pg_param_int8(&p, offset > INT64_MAX ? INT64_MAX : (int64_t)offset);
	pg_sql(t, SQL_LIST_ENTITIES, sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, "list_entities");
	if (r)
		rc = rows_to_entities(c, r, 0, -1, out);
	PQclear(r);
	pg_use_end(&u);
	return rc;
}

/* Containment finds candidates through the GIN index on properties; the
 * equality keeps only exact matches (containment would also take
 * ["a","b"] for ["a"]). */
static const char SQL_LOOKUP_PROPERTY[] =
	"SELECT " PG_ENT_COLS " FROM {E} WHERE tenant_id = $1"
	" AND properties @> jsonb_build_object($2::text, $3::jsonb) AND properties -> $2::text = $3::jsonb"
	" ORDER BY seq";

static int pg_lookup_by_property(kg_backend *b, kg_call *c, const char *name, const char *json_value,
                                 kg_entity_list **out)
{
	json_error_t jerr;
	json_t *check = json_loads(json_value, JSON_DECODE_ANY, &jerr);
	if (!check)
		return kg_call_error(c, KG_EINVAL,
		                     "lookup value %s is not valid JSON (%s); quote strings, e.g. \"\\\"Alice\\\"\"",
		                     json_value, jerr.text);
	json_decref(check);
	pg_use u;
	const pg_tables *t;
	char sql[512];
	int rc = call_begin(PB(b), c, 0, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_param_text(&p, name);
	pg_param_text(&p, json_value);
	pg_sql(t, SQL_LOOKUP_PROPERTY, sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, "lookup_by_property");
	if (r)
		rc = rows_to_entities(c, r, 0, -1, out);
	PQclear(r);
	pg_use_end(&u);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Stats, clear, tenants                                                */
/* ------------------------------------------------------------------ */

static const char SQL_STATS[] =
	"SELECT 0, entity_type, count(*) FROM {E} WHERE tenant_id = $1 GROUP BY entity_type"
	" UNION ALL SELECT 1, relation_type, count(*) FROM {R} WHERE tenant_id = $1 GROUP BY relation_type";

static int pg_stats(kg_backend *b, kg_call *c, kg_stats **out)
{
	pg_use u;
	const pg_tables *t;
	char sql[512];
	int rc = call_begin(PB(b), c, 0, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_sql(t, SQL_STATS, sql, sizeof(sql));
	PGresult *r = pg_run(&u, c, sql, &p, &rc, "stats");
	if (r) {
		kg_stats_builder *sb = kg_stats_builder_new();
		for (int i = 0; sb && i < PQntuples(r); i++)
			if (kg_stats_builder_add(sb, pg_get_int4(r, i, 0), pg_get_text(r, i, 1),
			                         (size_t)pg_get_int8(r, i, 2)) < 0)
				break;
		if (!sb || kg_stats_builder_finish(sb, b->name, out) < 0)
			rc = kg_call_error(c, KG_ENOMEM, "stats: out of memory");
	}
	PQclear(r);
	pg_use_end(&u);
	return rc;
}

static int pg_clear(kg_backend *b, kg_call *c)
{
	pg_use u;
	const pg_tables *t;
	char s1[256], s2[256];
	PGresult *res[2];
	int rc = call_begin(PB(b), c, 1, &u, &t);
	if (rc < 0)
		return rc;
	pg_params p = { 0 };
	pg_param_text(&p, tenant_key(c));
	pg_sql(t, "DELETE FROM {R} WHERE tenant_id = $1", s1, sizeof(s1));
	pg_sql(t, "DELETE FROM {E} WHERE tenant_id = $1", s2, sizeof(s2));
	pg_stmt_call stmts[2] = { { s1, &p }, { s2, &p } };
	rc = pg_batch(&u, c, 2, stmts, res, "clear");
	PQclear(res[0]);
	PQclear(res[1]);
	pg_use_end(&u);
	return rc;
}

static int pg_list_tenants(kg_backend *b, kg_call *c, char ***out, size_t *n)
{
	return pg_schema_list_tenants(PB(b), c, out, n);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

static int pg_txn_begin(kg_backend *b, kg_call *c, void **out)
{
	pg_backend *pb = PB(b);
	pg_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return kg_call_error(c, KG_ENOMEM, "kg_begin: out of memory");
	int rc = pg_pool_acquire(pb->pool, c, &t->conn);
	if (rc < 0) {
		free(t);
		return rc;
	}
	/* Set before BEGIN, so a rollback cannot undo it. */
	if (pb->tenancy == PG_TENANCY_RLS && (rc = pg_set_tenant(t->conn, c, tenant_key(c))) < 0)
		goto fail;
	if ((rc = pg_exec_simple(t->conn, c, "BEGIN", "kg_begin")) < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	pg_pool_release(t->conn);
	free(t);
	return rc;
}

/* Iterators still reading on the transaction's connection lose it. */
static void txn_detach_iterators(pg_txn *t)
{
	while (t->iters) {
		pg_txn_iter_link *it = t->iters;
		t->iters = it->next;
		it->detached = 1;
		it->next = NULL;
		*it->conn = NULL; /* the connection goes back to the pool */
	}
}

static int txn_end(pg_backend *pb, kg_call *c, pg_txn *t, int commit)
{
	(void)pb;
	int rc = 0;
	txn_detach_iterators(t);
	if (t->conn && !t->failed && !t->conn->broken) {
		rc = pg_exec_simple(t->conn, c, commit ? "COMMIT" : "ROLLBACK", commit ? "kg_commit" : "kg_rollback");
	} else if (commit) {
		rc = kg_call_error(c, KG_ECONNLOST,
		                   "kg_commit: the transaction's connection to PostgreSQL was lost before the commit, "
		                   "so nothing of it was stored; run the transaction again");
	}
	if (t->conn && (!commit || rc < 0)) {
		/* A tenant set inside the transaction went with its rollback:
		 * forget what the connection was told, so the next call sets it. */
		free(t->conn->tenant_setting);
		t->conn->tenant_setting = NULL;
	}
	if (t->conn)
		pg_pool_release(t->conn); /* closed instead if still inside the transaction */
	free(t);
	return rc;
}

static int pg_txn_commit(kg_backend *b, kg_call *c, void *txn) { return txn_end(PB(b), c, txn, 1); }
static int pg_txn_rollback(kg_backend *b, kg_call *c, void *txn) { return txn_end(PB(b), c, txn, 0); }

/* ------------------------------------------------------------------ */
/* Control, free, open                                                  */
/* ------------------------------------------------------------------ */

static int pg_control(kg_backend *b, kg_call *c, int op, void *arg)
{
	pg_backend *pb = PB(b);
	if (op == KG_PG_CTL_POOL_STATS)
		return kg_pg_pool_get_stats(pb->pool, arg);
	if (op == KG_CTL_SCHEMA_VERSION) {
		/* The tables are created or brought up to date at open. */
		*(int *)arg = KG_SCHEMA_VERSION;
		return 0;
	}
	if (op == KG_PG_CTL_READ_POOL_STATS) {
		if (!pb->read_pool)
			return kg_call_error(c, KG_ENOTFOUND, "this store has no read replica (set read_conninfo or read_host)");
		return kg_pg_pool_get_stats(pb->read_pool, arg);
	}
	return kg_call_error(c, KG_EUNSUPPORTED, "control opcode 0x%x is not known to the PostgreSQL backend", (unsigned)op);
}

int kg_pg_store_pool_stats(kg_store *s, kg_pg_pool_stats *out)
{
	kg_backend *b = kg_store_backend(s);
	if (!b || !out || !b->name || strcmp(b->name, "postgresql") != 0 || !b->control)
		return KG_EUNSUPPORTED;
	char msg[256];
	kg_call c = { .msg = msg, .msgcap = sizeof(msg) };
	return b->control(b, &c, KG_PG_CTL_POOL_STATS, out);
}

static void pg_free(kg_backend *b)
{
	pg_backend *pb = PB(b);
	if (!pb)
		return;
	pg_pool_unref(pb->pool);
	pg_pool_unref(pb->read_pool);
	pg_tables_free(&pb->shared);
	free(pb->base_schema);
	for (size_t i = 0; i < pb->n_tenant_tables; i++) {
		free(pb->tenant_tables[i]->tenant);
		pg_tables_free(&pb->tenant_tables[i]->t);
		free(pb->tenant_tables[i]);
	}
	free(pb->tenant_tables);
	pthread_mutex_destroy(&pb->tenants_mu);
	free(pb);
}

/* pgvector: detection at open. The extension is found or it is not; a
 * store asked to use it never silently searches some other way unless the
 * caller allowed the fallback. */
static int setup_pgvector(pg_backend *pb, kg_pg_conn *k, kg_call *c, const kg_options *o)
{
	int rc;
	PGresult *r = pg_exec(k, c,
	                      "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector'),"
	                      " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')",
	                      NULL, &rc, "detecting pgvector");
	if (!r)
		return rc;
	int installed = !PQgetisnull(r, 0, 0), available = pg_get_bool(r, 0, 1);
	PQclear(r);
	if (!installed && available) {
		rc = pg_exec_simple(k, c, "CREATE EXTENSION IF NOT EXISTS vector", "creating the vector extension");
		if (rc < 0)
			return kg_call_error(c, rc,
			                     "enable_pgvector: the 'vector' extension is available on %s but could not be "
			                     "created (%s); run CREATE EXTENSION vector as a superuser once, or open with "
			                     "pgvector_fallback=true to search client-side",
			                     k->pool->where, c->msg);
		installed = 1;
	}
	if (!installed) {
		if (o->pgvector_fallback) {
			pb->pgvector = 0; /* vector_search runs in the client, exactly */
			return 0;
		}
		int major = PQserverVersion(k->pg) / 10000;
		return kg_call_error(c, KG_EUNSUPPORTED,
		                     "enable_pgvector is set but the PostgreSQL %d server at %s has no 'vector' "
		                     "extension: install the server package postgresql-%d-pgvector (Debian/Ubuntu; "
		                     "pgvector from source elsewhere) and reopen, or open with pgvector_fallback=true "
		                     "(URI ?pgvector_fallback=true) to run vector search in the client instead",
		                     major, k->pool->where, major);
	}
	pb->pgvector = 1;
	return 0;
}

int kg_postgres_backend_new(const kg_options *o, kg_backend **out, char *err, size_t errcap)
{
	pg_conn_spec spec, rspec;
	int have_spec = 0, have_rspec = 0, rc;
	char msg[1024] = "";
	kg_call c = { .msg = msg, .msgcap = sizeof(msg) };
	kg_pg_conn *k = NULL;
	*out = NULL;
	err[0] = '\0';
	pg_backend *pb = calloc(1, sizeof(*pb));
	if (!pb) {
		snprintf(err, errcap, "out of memory opening the PostgreSQL backend");
		return KG_ENOMEM;
	}
	pthread_mutex_init(&pb->tenants_mu, NULL);
	if ((rc = pg_spec_from_options(o, &spec, err, errcap)) < 0)
		goto fail;
	have_spec = 1;
	pb->tenancy = spec.tenancy;
	pb->read_your_writes = o->read_your_writes;
	if (o->pool) {
		pg_pool_ref(o->pool);
		pb->pool = o->pool;
	} else {
		pg_pool_config cfg = { spec.min_size, spec.max_size, spec.pool_timeout, spec.statement_timeout };
		if ((rc = pg_pool_create((const char *const *)spec.kw, (const char *const *)spec.val, &cfg, &pb->pool, err,
		                         errcap)) < 0)
			goto fail;
	}
	if (o->read_conninfo || spec.read_host || spec.read_port) {
		if ((rc = pg_spec_for_replica(&spec, o, &rspec, err, errcap)) < 0)
			goto fail;
		have_rspec = 1;
		pg_pool_config cfg = { 1, rspec.max_size, rspec.pool_timeout, rspec.statement_timeout };
		if ((rc = pg_pool_create((const char *const *)rspec.kw, (const char *const *)rspec.val, &cfg,
		                         &pb->read_pool, err, errcap)) < 0)
			goto fail;
	}
	if ((spec.schema && !(pb->base_schema = strdup(spec.schema))) ||
	    (rc = pg_tables_init_shared(&pb->shared, spec.schema)) < 0) {
		rc = KG_ENOMEM;
		snprintf(err, errcap, "out of memory opening the PostgreSQL backend");
		goto fail;
	}
	if ((rc = pg_pool_acquire(pb->pool, &c, &k)) < 0 || (o->enable_pgvector && (rc = setup_pgvector(pb, k, &c, o)) < 0) ||
	    (rc = pg_schema_setup(pb, k, &c, &pb->shared, NULL)) < 0) {
		snprintf(err, errcap, "%s", msg);
		goto fail;
	}
	pg_pool_release(k);
	k = NULL;

	kg_backend *b = &pb->base;
	b->version = KG_BACKEND_VERSION;
	b->name = "postgresql";
	b->caps = KG_CAP_TRANSACTIONS | KG_CAP_PERSISTENT | KG_CAP_NATIVE_PATHS | KG_CAP_PROPERTY_INDEX;
	b->add_entities = pg_add_entities_dispatch;
	b->get_entity = pg_get_entity;
	b->update_entity = pg_update_entity;
	b->delete_entity = pg_delete_entity;
	b->add_relations = pg_add_relations_dispatch;
	b->get_relation = pg_get_relation;
	b->update_relation = pg_update_relation;
	b->delete_relation = pg_delete_relation;
	b->relations_of = pg_relations_of;
	b->iter_entities = pg_iter_entities;
	b->iter_relations = pg_iter_relations;
	b->stats = pg_stats;
	b->clear = pg_clear;
	b->list_tenants = pg_list_tenants;
	b->txn_begin = pg_txn_begin;
	b->txn_commit = pg_txn_commit;
	b->txn_rollback = pg_txn_rollback;
	b->neighbors = pg_neighbors;
	b->traverse = pg_traverse;
	b->find_paths = pg_find_paths;
	b->subgraph = pg_subgraph;
	b->get_entities = pg_get_entities;
	b->list_entities = pg_list_entities;
	b->lookup_by_property = pg_lookup_by_property;
	b->control = pg_control;
	b->free = pg_free;
	if (pb->pgvector) {
		b->caps |= KG_CAP_NATIVE_VECTOR;
		b->vector_search = pg_vector_search;
	}
	pg_spec_free(&spec);
	if (have_rspec)
		pg_spec_free(&rspec);
	*out = b;
	return 0;
fail:
	if (k)
		pg_pool_release(k);
	if (have_spec)
		pg_spec_free(&spec);
	if (have_rspec)
		pg_spec_free(&rspec);
	pg_free(&pb->base);
	return rc;
}
