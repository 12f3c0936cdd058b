/*
 * pg_internal.h - what the PostgreSQL backend's files share: pooled
 * connections, statement execution with error mapping, the backend object.
 */
#ifndef KG_PG_INTERNAL_H
#define KG_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>

#include "kgstore/backend.h"
#include "kgstore/postgres.h"

typedef enum pg_tenancy { PG_TENANCY_SHARED = 0, PG_TENANCY_RLS = 1, PG_TENANCY_SCHEMA = 2 } pg_tenancy;

/* ------------------------------------------------------------------ */
/* Connection settings (conninfo.c)                                     */
/* ------------------------------------------------------------------ */

#define PG_SPEC_MAX 32
typedef struct pg_conn_spec {
	char *kw[PG_SPEC_MAX], *val[PG_SPEC_MAX]; /* libpq keywords, NULL-ended */
	int n;
	int min_size, max_size;
	double pool_timeout, statement_timeout;
	/* kgstore's own settings found in the conninfo */
	pg_tenancy tenancy;
	char *schema, *read_host, *read_port;
} pg_conn_spec;

int pg_spec_from_options(const kg_options *o, pg_conn_spec *s, char *err, size_t errcap);
/* The replica's settings: read_conninfo, or the primary's with read_host. */
int pg_spec_for_replica(const pg_conn_spec *primary, const kg_options *o, pg_conn_spec *r, char *err, size_t errcap);
void pg_spec_free(pg_conn_spec *s);
/* "user@host:port/db" for messages (never the password); malloc'd. */
char *pg_describe(const char *const *kw, const char *const *val);
/* The passwords among the parameters (NULL-ended, malloc'd strings). */
char **pg_secrets(const char *const *kw, const char *const *val);

/* ------------------------------------------------------------------ */
/* Pool                                                                 */
/* ------------------------------------------------------------------ */

/* A statement prepared on one connection, keyed by its text. */
typedef struct pg_stmt {
	uint64_t hash;
	char *sql;
	char name[24];
} pg_stmt;

typedef struct kg_pg_conn kg_pg_conn;
struct kg_pg_conn {
	PGconn *pg;
	kg_pg_pool *pool;
	uint64_t generation;   /* the pool's generation when opened */
	pg_stmt *stmts;        /* open-addressing table, stmt_mask + 1 slots */
	size_t stmt_mask, n_stmts;
	unsigned next_stmt, next_cursor;
	char *tenant_setting;  /* app.current_tenant_id as last set; NULL: unknown */
	int broken;            /* the server is gone: drop instead of reuse */
	kg_pg_conn *next;      /* idle list */
};

struct kg_pg_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char **keywords, **values; /* libpq connection parameters (NULL-ended) */
	char *where;               /* user@host:port/db for messages, no password */
	char **secrets;            /* passwords to scrub from libpq's messages */
	char *session_sql;         /* run on each new connection */
	int min_size, max_size;
	double timeout;
	kg_pg_conn *idle;
	int n_idle, size, in_use, waiting;
	uint64_t generation;       /* bumped when a connection is found broken */
	unsigned long acquired, timeouts, replaced;
	int refs;                  /* the creator's reference + one per store */
};

/* Pool settings besides the connection parameters. */
typedef struct pg_pool_config {
	int min_size, max_size;
	double timeout;
	double statement_timeout; /* seconds, 0 = none */
} pg_pool_config;

/* Makes a pool from libpq keyword/value pairs (copied). */
int pg_pool_create(const char *const *keywords, const char *const *values, const pg_pool_config *cfg,
                   kg_pg_pool **out, char *err, size_t errcap);
void pg_pool_ref(kg_pg_pool *p);
void pg_pool_unref(kg_pg_pool *p);
/* Lends a live connection (a broken idle one is replaced on the way);
 * KG_EPOOL past the timeout, KG_ECONNLOST if the server cannot be reached. */
int pg_pool_acquire(kg_pg_pool *p, kg_call *c, kg_pg_conn **out);
/* Gives it back; a broken connection, or one left inside a transaction,
 * is closed instead. */
void pg_pool_release(kg_pg_conn *k);

/* ------------------------------------------------------------------ */
/* Statements                                                           */
/* ------------------------------------------------------------------ */

/* Parameters of one statement: text, or binary with a length. */
#define PG_MAX_PARAMS 16
typedef struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];
	char buf[PG_MAX_PARAMS][8]; /* storage for binary int8 / float8 */
} pg_params;

void pg_param_text(pg_params *p, const char *s);           /* NULL = SQL NULL */
void pg_param_bytes(pg_params *p, const void *data, int len); /* bytea; NULL = SQL NULL */
void pg_param_int4(pg_params *p, int32_t v);
void pg_param_int8(pg_params *p, int64_t v);
void pg_param_float8(pg_params *p, double v);
void pg_param_time(pg_params *p, int64_t us_since_1970);   /* timestamp */

/* Runs a statement as a prepared statement of the connection (prepared on
 * first use), results in binary. Returns the result or NULL; on error the
 * message is in c and *rc holds the code. `what` names the operation. */
PGresult *pg_exec(kg_pg_conn *k, kg_call *c, const char *sql, const pg_params *p, int *rc, const char *what);
/* The name of the statement prepared for `sql` on k (prepared now if
 * new); "" when the per-connection cap is reached (use the unnamed
 * statement); NULL on error (*rc set). */
const char *pg_prepared(kg_pg_conn *k, kg_call *c, const char *sql, int nparams, int *rc, const char *what);
/* Runs plain SQL without parameters (simple protocol). 0 or an error. */
int pg_exec_simple(kg_pg_conn *k, kg_call *c, const char *sql, const char *what);
/* Maps a failed result (or a NULL one) to a KG_E* code and a message. */
int pg_result_error(kg_pg_conn *k, kg_call *c, const PGresult *res, const char *what);

/* µs between 1970-01-01 and PostgreSQL's epoch 2000-01-01 (binary timestamps). */
#define PG_EPOCH_OFFSET_US 946684800000000LL

/* Decoding binary result values. */
int64_t pg_get_int8(const PGresult *r, int row, int col);
int32_t pg_get_int4(const PGresult *r, int row, int col);
double pg_get_float8(const PGresult *r, int row, int col);
int pg_get_bool(const PGresult *r, int row, int col);
int64_t pg_get_time(const PGresult *r, int row, int col); /* µs since 1970; 0 for NULL */
const char *pg_get_text(const PGresult *r, int row, int col); /* NULL for NULL */
const char *pg_get_jsonb(const PGresult *r, int row, int col); /* JSON text */

/* ------------------------------------------------------------------ */
/* The backend                                                          */
/* ------------------------------------------------------------------ */

/* The tables a call works on: the shared pair, or a tenant's schema. */
typedef struct pg_tables {
	char *ent, *rel;   /* quoted, schema-qualified when a schema is set */
	char *schema;      /* quoted schema name, or NULL (search_path) */
	int ready;         /* created and checked */
} pg_tables;

typedef struct pg_tenant_tables {
	char *tenant;
	pg_tables t;
} pg_tenant_tables;

typedef struct pg_backend {
	kg_backend base;
	kg_pg_pool *pool;       /* writes, and reads unless a replica is set */
	kg_pg_pool *read_pool;  /* replica, or NULL */
	pg_tenancy tenancy;
	int read_your_writes;
	int pgvector;           /* 1: embedding_vector (kept by a trigger) and search in the server */
	pg_tables shared;
	char *base_schema;      /* schema= setting (unquoted), or NULL */
	pthread_mutex_t tenants_mu; /* separate-schema mode: tables per tenant */
	pg_tenant_tables **tenant_tables; /* each allocated once: pointers stay valid */
	size_t n_tenant_tables, cap_tenant_tables;
} pg_backend;

/* Iterators reading inside a transaction are linked to it, so that the
 * end of the transaction can tell them their cursor is gone. */
typedef struct pg_txn_iter_link {
	struct pg_txn_iter_link *next;
	int detached;
	kg_pg_conn **conn; /* the iterator's borrowed connection, cleared on detach */
} pg_txn_iter_link;

/* A transaction: one pinned connection. */
typedef struct pg_txn {
	kg_pg_conn *conn;
	int failed; /* the connection broke: only rollback is left */
	pg_txn_iter_link *iters;
} pg_txn;

/* A connection lent for one call (or the transaction's own). */
typedef struct pg_use {
	kg_pg_conn *conn;
	pg_txn *txn;  /* the caller's transaction, or NULL */
	int owned;    /* release after the call */
	int in_txn;   /* inside the caller's transaction: guard with savepoints */
	int op_depth; /* inside pg_op_begin: statements need no guard of their own */
} pg_use;

int pg_use_begin(pg_backend *pb, kg_call *c, int for_write, pg_use *u);
void pg_use_end(pg_use *u);

/* The tables of the call's tenant (made on first use in schema mode). */
int pg_tables_for(pg_backend *pb, kg_call *c, pg_use *u, const pg_tables **out);

/* Schema set-up (schema.c). */
int pg_tables_init_shared(pg_tables *t, const char *schema);
int pg_schema_setup(pg_backend *pb, kg_pg_conn *k, kg_call *c, pg_tables *t, const char *tenant);
int pg_schema_tenant_tables(pg_backend *pb, const char *tenant, pg_tables *t);
int pg_schema_list_tenants(pg_backend *pb, kg_call *c, char ***out, size_t *n);
void pg_tables_free(pg_tables *t);

/* Renders a statement template: {E} and {R} become the table names, {P}
 * the quoted schema (or nothing) and {D} a "." after it (or nothing). */
int pg_sql(const pg_tables *t, const char *tmpl, char *buf, size_t cap);

/* For messages: " in tenant 'x'" (written in buf), or "" for the global
 * namespace. */
const char *pg_in_tenant(const kg_call *c, char *buf, size_t cap);

/* Sets app.current_tenant_id on the connection when it differs (RLS). */
int pg_set_tenant(kg_pg_conn *k, kg_call *c, const char *tenant);

/* Operations in their own files. */
int pg_add_entities(kg_backend *b, kg_call *c, const kg_entity *ents, size_t n, unsigned flags, size_t *added);
int pg_add_relations(kg_backend *b, kg_call *c, const kg_relation *rels, size_t n, unsigned flags, size_t *added);
int pg_traverse(kg_backend *b, kg_call *c, const char *start, const char *relation_type, int max_depth,
                size_t max_results, kg_path_list **out);
int pg_find_paths(kg_backend *b, kg_call *c, const char *source, const char *target, int max_depth,
                  size_t max_paths, kg_path_list **out);
int pg_iter_entities(kg_backend *b, kg_call *c, const char *entity_type, kg_iter **out);
int pg_iter_relations(kg_backend *b, kg_call *c, const char *relation_type, kg_iter **out);

/* Row decoding shared by the files: the column lists and their readers. */
#define PG_ENT_COLS "id, entity_type, properties, embedding, created_at, updated_at, source"
#define PG_ENT_NCOLS 7
#define PG_REL_COLS "id, relation_type, source_id, target_id, properties, weight::float8, created_at, updated_at, source"
#define PG_REL_NCOLS 9
/* The same, qualified by the aliases e and r. */
#define PG_ENT_COLS_E "e.id, e.entity_type, e.properties, e.embedding, e.created_at, e.updated_at, e.source"
#define PG_REL_COLS_R                                                                                         \
	"r.id, r.relation_type, r.source_id, r.target_id, r.properties, r.weight::float8, r.created_at, r.updated_at," \
	" r.source"
kg_entity *pg_row_entity(const PGresult *r, int row, int col0, const char *tenant);
kg_relation *pg_row_relation(const PGresult *r, int row, int col0, const char *tenant);

/* Statement batches: several statements in one round trip (pipeline),
 * inside BEGIN/COMMIT (or a savepoint in the caller's transaction), all
 * or nothing. res[i] gets each statement's result (PQclear them). */
#define PG_MAX_BATCH 8
typedef struct pg_stmt_call {
	const char *sql;
	const pg_params *p;
} pg_stmt_call;
int pg_batch(pg_use *u, kg_call *c, int n, const pg_stmt_call *stmts, PGresult **res, const char *what);
/* One statement for a call (a batch of one). */
PGresult *pg_run(pg_use *u, kg_call *c, const char *sql, const pg_params *p, int *rc, const char *what);

/* A call made of several round trips (COPY...): BEGIN/COMMIT, or a
 * savepoint inside the caller's transaction. pg_op_end commits on rc == 0,
 * else rolls back, and returns the final code. */
int pg_op_begin(pg_use *u, kg_call *c, const char *what);
int pg_op_end(pg_use *u, kg_call *c, int rc, const char *what);

/* JSON text whose exponent-notation numbers are rewritten in plain
 * decimal (see jsonb.c): `text` itself, or a malloc'd copy left in *owned
 * (free it). NULL when out of memory. */
const char *pg_json_for_jsonb(const char *text, char **owned);

/* A text[] literal of the strings, for array parameters. malloc'd. */
char *pg_text_array(const char *const *v, size_t n);
int pg_add_entity_one(pg_backend *pb, kg_call *c, const kg_entity *e, unsigned flags, size_t *added);
/* pgvector: the vector column and the trigger that fills it (vector.c). */
int pg_vector_setup_tables(kg_pg_conn *k, kg_call *c, const pg_tables *t);
int pg_vector_search(kg_backend *b, kg_call *c, const float *query, size_t dim, const char *entity_type, size_t k,
                     double threshold, kg_entity_list **out);

#endif /* KG_PG_INTERNAL_H */
