/*
 * iter.c - streaming entities and relations through a server-side cursor.
 *
 * Outside a transaction the iterator takes a pool connection for its whole
 * life and opens a read transaction on it (so it reads one snapshot);
 * inside one it declares its cursor in the caller's transaction. Rows come
 * in batches sized to about 4 MB, so a table of large records is never
 * held in memory at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

#define FETCH_TARGET_BYTES (4u << 20)
#define FETCH_MIN 16
#define FETCH_MAX 2000

typedef struct pg_iter {
	kg_iter base;
	pg_use u;
	pg_txn_iter_link link; /* first in a transaction's list: see txn_detach */
	int relations;
	char cursor[40];
	char *tenant;
	PGresult *batch;
	int row, done, fetch_count;
	void *item;
} pg_iter;

static void iter_unlink(pg_iter *it)
{
	pg_txn *t = it->u.txn;
	if (!t || it->link.detached)
		return;
	for (pg_txn_iter_link **pp = &t->iters; *pp; pp = &(*pp)->next) {
		if (*pp == &it->link) {
			*pp = it->link.next;
			break;
		}
	}
	it->link.detached = 1;
}

static void iter_free(kg_iter *base)
{
	pg_iter *it = (pg_iter *)base;
	if (!it)
		return;
	PQclear(it->batch);
	free(it->item);
	kg_pg_conn *k = it->u.conn;
	if (k && !k->broken && PQstatus(k->pg) == CONNECTION_OK) {
		char sql[64], scratch[256];
		kg_call quiet = { .msg = scratch, .msgcap = sizeof(scratch) };
		if (it->u.owned) {
			pg_exec_simple(k, &quiet, "ROLLBACK", "closing an iterator"); /* read only: ends the cursor too */
		} else if (!it->link.detached) {
			snprintf(sql, sizeof(sql), "CLOSE %s", it->cursor);
			pg_exec_simple(k, &quiet, sql, "closing an iterator");
		}
	}
	iter_unlink(it);
	if (it->u.owned)
		pg_use_end(&it->u);
	free(it->tenant);
	free(it);
}

/* Batch size from the size of the rows seen so far. */
static int next_fetch_count(const PGresult *r, int current)
{
	int n = PQntuples(r);
	if (n == 0)
		return current;
	size_t bytes = 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < PQnfields(r); j++)
			bytes += (size_t)PQgetlength(r, i, j) + 4;
	size_t per_row = bytes / (size_t)n + 1;
	size_t want = FETCH_TARGET_BYTES / per_row;
	return want < FETCH_MIN ? FETCH_MIN : want > FETCH_MAX ? FETCH_MAX : (int)want;
}

static int iter_next(kg_iter *base, kg_call *c, const void **item)
{
	pg_iter *it = (pg_iter *)base;
	if (it->u.txn && it->link.detached)
		return kg_call_error(c, KG_EINVAL,
		                     "this iterator read inside a transaction that has ended (its cursor went with it); "
		                     "free iterators before kg_commit / kg_rollback");
	if (!it->batch || it->row >= PQntuples(it->batch)) {
		if (it->done)
			return 0;
		if (it->u.txn && (it->u.txn->failed || !it->u.conn))
			return kg_call_error(c, KG_ECONNLOST, "the transaction's connection to PostgreSQL was lost");
		char sql[96];
		int rc;
		snprintf(sql, sizeof(sql), "FETCH FORWARD %d FROM %s", it->fetch_count, it->cursor);
		PQclear(it->batch);
		it->batch = PQexec(it->u.conn->pg, sql);
		if (PQresultStatus(it->batch) != PGRES_TUPLES_OK) {
			rc = pg_result_error(it->u.conn, c, it->batch, it->relations ? "relation iterator" : "entity iterator");
			PQclear(it->batch);
			it->batch = NULL;
			it->done = 1;
			return rc;
		}
		it->row = 0;
		int got = PQntuples(it->batch);
		if (got < it->fetch_count)
			it->done = 1; /* a short batch is the last one */
		it->fetch_count = next_fetch_count(it->batch, it->fetch_count);
		if (got == 0)
			return 0;
	}
	free(it->item);
	it->item = it->relations ? (void *)pg_row_relation(it->batch, it->row, 0, it->tenant)
	                         : (void *)pg_row_entity(it->batch, it->row, 0, it->tenant);
	it->row++;
	if (!it->item)
		return kg_call_error(c, KG_ENOMEM, "iterator: out of memory");
	*item = it->item;
	return 1;
}

static int iter_new(pg_backend *pb, kg_call *c, const char *type, int relations, kg_iter **out)
{
	const pg_tables *t;
	char tmpl[512], sql[768];
	pg_iter *it = calloc(1, sizeof(*it));
	if (!it || (c->tenant && !(it->tenant = strdup(c->tenant)))) {
		free(it);
		return kg_call_error(c, KG_ENOMEM, "iterator: out of memory");
	}
	it->base.next = iter_next;
	it->base.free = iter_free;
	it->relations = relations;
	it->fetch_count = 64;
	it->link.detached = 1;
	it->link.conn = &it->u.conn;
	int rc = pg_use_begin(pb, c, 0, &it->u);
	if (rc < 0)
		goto fail;
	/* Unique on the connection, which one thread uses at a time. */
	snprintf(it->cursor, sizeof(it->cursor), "kg_cursor_%u", it->u.conn->next_cursor++);
	if ((rc = pg_tables_for(pb, c, &it->u, &t)) < 0)
		goto fail;
	/* Binary cursor: rows come in the binary formats the decoders read. */
	snprintf(tmpl, sizeof(tmpl),
	         "DECLARE %s BINARY NO SCROLL CURSOR FOR SELECT %s FROM %s WHERE tenant_id = $1"
	         " AND ($2::text IS NULL OR %s = $2) ORDER BY seq",
	         it->cursor, relations ? PG_REL_COLS : PG_ENT_COLS, relations ? "{R}" : "{E}",
	         relations ? "relation_type" : "entity_type");
	pg_sql(t, tmpl, sql, sizeof(sql));
	if (it->u.owned && (rc = pg_exec_simple(it->u.conn, c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	                                        "starting an iterator")) < 0)
		goto fail;
	pg_params p = { 0 };
	pg_param_text(&p, c->tenant ? c->tenant : "");
	pg_param_text(&p, type);
	/* In the caller's transaction a savepoint guards it from a failure. */
	if (it->u.in_txn && (rc = pg_op_begin(&it->u, c, "starting an iterator")) < 0)
		goto fail;
	PGresult *r = PQexecParams(it->u.conn->pg, sql, p.n, NULL, p.v, p.len, p.fmt, 1);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_result_error(it->u.conn, c, r, "starting an iterator");
	PQclear(r);
	if (it->u.in_txn)
		rc = pg_op_end(&it->u, c, rc, "starting an iterator");
	if (rc < 0)
		goto fail;
	if (it->u.txn) {
		it->link.detached = 0;
		it->link.next = it->u.txn->iters;
		it->u.txn->iters = &it->link;
	}
	*out = &it->base;
	return 0;
fail:
	iter_free(&it->base);
	return rc;
}

int pg_iter_entities(kg_backend *b, kg_call *c, const char *entity_type, kg_iter **out)
{
	return iter_new((pg_backend *)b, c, entity_type, 0, out);
}

int pg_iter_relations(kg_backend *b, kg_call *c, const char *relation_type, kg_iter **out)
{
	return iter_new((pg_backend *)b, c, relation_type, 1, out);
}
