/*
 * kgstore/postgres.h - PostgreSQL specifics: connection pools that several
 * stores share (the seed's "Reusing Existing Connection Pool"), pool
 * figures, and the backend's control requests.
 *
 * A store opened without kg_options.pool makes and owns its own pool.
 * A pool made here may be given to any number of stores (kg_options.pool);
 * it is freed when kg_pg_pool_free has been called AND the last store using
 * it is closed, so the order of kg_close and kg_pg_pool_free does not matter.
 *
 * Every connection of a pool runs the same conninfo; a store keeps nothing
 * on a connection that another store could trip over (statements are
 * prepared per connection and keyed by their text; the tenant setting is
 * set before each use).
 */
#ifndef KGSTORE_POSTGRES_H
#define KGSTORE_POSTGRES_H

#include "../kgstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Make a pool from the PostgreSQL fields of `o` (conninfo or host/port/
 * user/password/database/ssl/sslmode, min_pool_size, max_pool_size,
 * pool_timeout; the rest is ignored). Opens min_pool_size connections now.
 * On failure returns a negative KG_E* code with the reason in err (errcap
 * bytes; never the password).
 */
int kg_pg_pool_new(const kg_options *o, kg_pg_pool **out, char *err, size_t errcap);

/* Drops the caller's reference; the pool closes when no store uses it. */
void kg_pg_pool_free(kg_pg_pool *p);

typedef struct kg_pg_pool_stats {
	int size;          /* connections open (idle + in use) */
	int in_use;        /* lent to a call, a transaction or an iterator */
	int idle;
	int waiting;       /* callers waiting for a connection now */
	int min_size, max_size;
	double timeout;    /* seconds an acquire may wait */
	unsigned long acquired; /* acquires served since the pool was made */
	unsigned long timeouts; /* acquires that gave up with KG_EPOOL */
	unsigned long replaced; /* broken connections found and dropped */
} kg_pg_pool_stats;

int kg_pg_pool_get_stats(kg_pg_pool *p, kg_pg_pool_stats *out);

/* The figures of the pool a PostgreSQL store uses (its writer pool).
 * KG_EUNSUPPORTED for other backends. */
int kg_pg_store_pool_stats(kg_store *s, kg_pg_pool_stats *out);

/* Opcodes of kg_backend.control for the PostgreSQL backend. */
#define KG_PG_CTL_POOL_STATS 0x50470001 /* arg: kg_pg_pool_stats * (writer pool) */
#define KG_PG_CTL_READ_POOL_STATS 0x50470002 /* arg: kg_pg_pool_stats * (replica pool) */

/*
 * Options the PostgreSQL backend reads from a postgresql:// URI besides
 * libpq's own (they are removed before libpq sees the URI):
 *   tenancy=shared      one table pair, rows keyed by tenant_id (default)
 *   tenancy=rls         shared, plus row-level security policies keyed on
 *                       the session setting app.current_tenant_id, which
 *                       kgstore sets before every call
 *   tenancy=schema      one PostgreSQL schema per tenant
 *   schema=NAME         schema of the graph_entities / graph_relations
 *                       tables (default: the connection's search_path)
 *   statement_timeout=S seconds a statement may run (default 300, 0 = none)
 *   read_host=H, read_port=P
 *                       a read replica: reads outside transactions go there
 *                       (the other connection settings are the primary's)
 *   min_pool_size, max_pool_size, pool_timeout, enable_pgvector,
 *   pgvector_fallback, read_your_writes: as in kg_options.
 */

#ifdef __cplusplus
}
#endif
#endif /* KGSTORE_POSTGRES_H */
