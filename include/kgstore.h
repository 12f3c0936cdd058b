/*
 * kgstore.h - the public API of kgstore, a knowledge-graph store.
 *
 * One interface over three backends: in-memory, SQLite and PostgreSQL.
 *
 * Conventions used by every function below:
 *  - Return value: KG_OK (0) or a negative kg_status code. The message of the
 *    last error (what failed and what to do) is read with kg_errmsg(store).
 *  - Ownership: every function that hands back data says how it is freed.
 *    A returned kg_entity / kg_relation is ONE allocation: free it with
 *    kg_entity_free / kg_relation_free. Lists are freed by their _free call,
 *    which frees every item too.
 *  - Threads: a kg_store handle may be used from several threads at once.
 *    A transaction handle (kg_begin) is for one thread at a time.
 *    kg_errmsg() is kept per handle and per thread.
 *  - Strings are UTF-8 and NUL-terminated. Properties are the JSON text of an
 *    object. Timestamps are microseconds since 1970-01-01T00:00:00Z.
 */
#ifndef KGSTORE_H
#define KGSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KGSTORE_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------ */
/* Status codes                                                         */
/* ------------------------------------------------------------------ */

typedef enum kg_status {
	KG_OK = 0,
	KG_ENOTFOUND = -1,    /* no such id in this tenant (also: a relation endpoint) */
	KG_EEXISTS = -2,      /* the id is already used in this tenant */
	KG_EINVAL = -3,       /* bad argument: invalid JSON, bad tenant id, bad weight... */
	KG_EBUSY = -4,        /* database locked by another writer past the timeout */
	KG_ECONNLOST = -5,    /* server unreachable or connection broken */
	KG_EPOOL = -6,        /* connection pool exhausted past its timeout */
	KG_EBUDGET = -7,      /* the store's memory budget would be exceeded */
	KG_EIO = -8,          /* file or network I/O failed */
	KG_ECORRUPT = -9,     /* corrupt or truncated input / database file */
	KG_EUNSUPPORTED = -10,/* not available on this backend or build */
	KG_ENOMEM = -11,      /* the process is out of memory */
	KG_EINTERNAL = -12    /* a bug in kgstore or an unexpected engine error */
} kg_status;

/* Generic text of a status code; static storage, never freed. */
const char *kg_strerror(int code);

/* ------------------------------------------------------------------ */
/* Data model                                                           */
/* ------------------------------------------------------------------ */

/*
 * An entity. On input the caller owns every pointer and the call copies what
 * it keeps. On output (kg_get_entity, lists) the struct and everything it
 * points to is one block, freed by kg_entity_free.
 */
typedef struct kg_entity {
	const char *id;          /* non-empty, unique within its tenant */
	const char *entity_type; /* non-empty, e.g. "Person" */
	const char *properties;  /* JSON object text; NULL on input means "{}" */
	const float *embedding;  /* NULL = no embedding */
	size_t embedding_dim;    /* number of floats in embedding */
	int64_t created_at;      /* µs since epoch; 0 on input = now */
	int64_t updated_at;      /* µs since epoch; 0 on input = now */
	const char *source;      /* optional provenance text, NULL = none */
	const char *tenant_id;   /* output only (NULL = global namespace);
	                            ignored on input: the handle's tenant decides */
} kg_entity;

/* A directed, typed, weighted relation (edge). Ownership as for kg_entity. */
typedef struct kg_relation {
	const char *id;            /* non-empty, unique within its tenant */
	const char *relation_type; /* non-empty, e.g. "WORKS_FOR" */
	const char *source_id;     /* must exist in the same tenant */
	const char *target_id;     /* must exist in the same tenant; == source_id allowed */
	const char *properties;    /* JSON object text; NULL on input means "{}" */
	double weight;             /* in [0, 1]; stored and returned exactly.
	                              KG_RELATION_INIT sets the default 1.0 */
	int64_t created_at;
	int64_t updated_at;
	const char *source;
	const char *tenant_id;     /* output only, as for kg_entity */
} kg_relation;

#define KG_ENTITY_INIT { 0 }
#define KG_RELATION_INIT { .weight = 1.0 }

void kg_entity_free(kg_entity *e);     /* NULL is a no-op */
void kg_relation_free(kg_relation *r); /* NULL is a no-op */

/* A list of entities; scores is non-NULL for search results (parallel to
 * items, best first). Freed with kg_entity_list_free (items included). */
typedef struct kg_entity_list {
	size_t count;
	kg_entity **items;
	double *scores;
	size_t cap_; /* internal */
} kg_entity_list;

typedef struct kg_relation_list {
	size_t count;
	kg_relation **items;
	size_t cap_; /* internal */
} kg_relation_list;

void kg_entity_list_free(kg_entity_list *l);
void kg_relation_list_free(kg_relation_list *l);

/* A path: nodes[0] -edges[0]-> nodes[1] ... ; n_edges == n_nodes - 1 and
 * edges[i] goes from nodes[i] to nodes[i+1]. The pointers belong to the
 * kg_path_list that holds the path (entities shared by several paths are
 * stored once). */
typedef struct kg_path {
	size_t n_nodes;
	kg_entity **nodes;
	size_t n_edges;
	kg_relation **edges;
	double score; /* in [0,1]; 1/(1+length) unless a backend says otherwise */
} kg_path;

typedef struct kg_path_list {
	size_t count;
	kg_path *items;
	void *priv_; /* internal: owns the entities and relations */
} kg_path_list;

void kg_path_list_free(kg_path_list *l);

/* Entities and the relations among them. Freed with kg_subgraph_free. */
typedef struct kg_subgraph {
	kg_entity_list *entities;
	kg_relation_list *relations;
} kg_subgraph;

void kg_subgraph_free(kg_subgraph *g);

typedef struct kg_type_count {
	const char *type;
	size_t count;
} kg_type_count;

/* Counts for one tenant (or the global namespace). Types sorted by name.
 * One block: freed with kg_stats_free. */
typedef struct kg_stats {
	size_t entity_count;
	size_t relation_count;
	size_t n_entity_types;
	kg_type_count *entity_types;
	size_t n_relation_types;
	kg_type_count *relation_types;
	const char *backend; /* "memory", "sqlite", "postgresql", ... */
} kg_stats;

void kg_stats_free(kg_stats *s);

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */
/* ------------------------------------------------------------------ */

typedef struct kg_store kg_store;

typedef enum kg_backend_kind {
	KG_BACKEND_DEFAULT = 0, /* SQLite if path is set, else memory */
	KG_BACKEND_MEMORY = 1,
	KG_BACKEND_SQLITE = 2,
	KG_BACKEND_POSTGRES = 3
} kg_backend_kind;

typedef struct kg_pg_pool kg_pg_pool; /* a PostgreSQL pool several stores share */

#define KG_OPTIONS_VERSION 1

/*
 * Options for kg_open_options. Start from KG_OPTIONS_INIT: every field left
 * 0 / NULL takes its documented default, so fields can be added later
 * without breaking callers. The mirror of the seed's constructor arguments.
 */
typedef struct kg_options {
	unsigned version;        /* KG_OPTIONS_VERSION */
	kg_backend_kind backend;

	/* memory */
	size_t memory_budget;    /* bytes the store may hold; 0 = no limit.
	                            Writes past it fail with KG_EBUDGET. */

	/* sqlite */
	const char *path;        /* file path or ":memory:" */
	double timeout;          /* seconds to wait for a lock; default 5 */
	int check_same_thread;   /* 1: refuse use from another thread; default 0 */
	const char *journal_mode;/* PRAGMA journal_mode, default "WAL" */
	const char *synchronous; /* PRAGMA synchronous, default "NORMAL" */
	long cache_size;         /* PRAGMA cache_size, default -64000 (64 MB) */

	/* postgresql */
	const char *conninfo;    /* "postgresql://..." URI or "key=value ..."; when
	                            set, it is used and host..database are ignored */
	const char *host;        /* default: libpq's (PGHOST, unix socket) */
	int port;                /* default 5432 */
	const char *user;
	const char *password;    /* never copied into error messages */
	const char *database;
	int min_pool_size;       /* default 5 */
	int max_pool_size;       /* default 20 */
	double pool_timeout;     /* seconds an acquire may wait; default 30 */
	int ssl;                 /* 1: sslmode "require" unless sslmode is set */
	const char *sslmode;     /* passed to libpq */
	kg_pg_pool *pool;        /* reuse an existing pool (not owned) */
	int enable_pgvector;     /* 1: use the vector extension */
	int pgvector_fallback;   /* 1: if pgvector is missing, search client-side */
	const char *read_conninfo; /* optional replica for reads */
	int read_your_writes;    /* 1: reads inside a transaction go to the primary */

	/* sqlite: where tenants' rows live. "shared" (rows of every tenant in
	 * entities/relations, tenant_id set) or "tables" (the original's
	 * "separate schema" mode: tenant T in tenant_<T, - as _>_entities and
	 * _relations, no tenant_id column; the global namespace stays in
	 * entities/relations). NULL: "tables" if the file already has such
	 * tables, else "shared". Also sqlite:PATH?tenancy=tables. */
	const char *tenancy;
} kg_options;

#define KG_OPTIONS_INIT { .version = KG_OPTIONS_VERSION }

/*
 * Open a store from a URI:
 *   memory:                      in-memory (memory:?budget=256MB)
 *   sqlite:PATH                  SQLite file (sqlite:g.db?timeout=30&cache_size=-64000)
 *   sqlite::memory:              SQLite in memory
 *   postgresql://u@h:p/db?...    PostgreSQL (postgres:// also accepted)
 *
 * On success *out is a new handle (close with kg_close). On failure the
 * return is negative and *out is a handle that only carries the error
 * message (read kg_errmsg(*out), then kg_close(*out)), or NULL if even that
 * could not be allocated.
 */
int kg_open(const char *uri, kg_store **out);
int kg_open_options(const kg_options *opts, kg_store **out);

/*
 * Open the store the environment names, as the seed's get_graph_store():
 * ENVIRONMENT=production|staging -> PostgreSQL from DB_HOST, DB_PORT, DB_USER,
 * DB_PASSWORD, DB_NAME, ENABLE_PGVECTOR (staging prefers STAGING_DB_HOST);
 * testing -> sqlite::memory:; development or unset -> memory:.
 */
int kg_open_env(kg_store **out);

/* Close a handle. A transaction handle still open is rolled back. Tenant
 * views and transaction handles must be closed before their base store. */
void kg_close(kg_store *s);

/* Message of the last failed call made on this handle by this thread.
 * Owned by the handle; valid until the next failing call on the same handle
 * from the same thread. Never NULL. */
const char *kg_errmsg(kg_store *s);

/* Name of the backend: "memory", "sqlite", "postgresql", ... (static). */
const char *kg_backend_name(kg_store *s);

/* Capabilities a backend does natively (else the core's generic code runs). */
#define KG_CAP_TRANSACTIONS   (1u << 0)
#define KG_CAP_PERSISTENT     (1u << 1)
#define KG_CAP_NATIVE_PATHS   (1u << 2) /* find_paths/traverse in the engine */
#define KG_CAP_NATIVE_VECTOR  (1u << 3) /* e.g. pgvector */
#define KG_CAP_NATIVE_TEXT    (1u << 4) /* e.g. FTS5 */
#define KG_CAP_PROPERTY_INDEX (1u << 5)
unsigned kg_capabilities(kg_store *s);

/* The version of kgstore's schema in the store's tables (the original's
 * tables plus kgstore's additions), KG_SCHEMA_VERSION for a store this
 * library made or brought up to date; the in-memory backend reports the
 * current one. KG_EUNSUPPORTED if the backend does not say. */
#define KG_SCHEMA_VERSION 1
int kg_schema_version(kg_store *s, int *version);

/* ------------------------------------------------------------------ */
/* Tenants and transactions                                             */
/* ------------------------------------------------------------------ */

/*
 * A view of `s` scoped to one tenant ([A-Za-z0-9_-]{1,255}, anything else is
 * KG_EINVAL). Every call on the view sees and touches only that tenant;
 * the base handle is the global namespace. Close the view with kg_close.
 * Made from a transaction handle, the view's calls run inside that
 * transaction (one transaction across tenants, e.g. an import); close such
 * views before kg_commit / kg_rollback: once the transaction has ended
 * their calls fail with KG_EINVAL (closing them is still right).
 */
int kg_tenant(kg_store *s, const char *tenant_id, kg_store **view);

/* The tenant of a handle, NULL for the global namespace. Owned by it. */
const char *kg_tenant_id(kg_store *s);

/*
 * Start a transaction: *txn is a handle on which calls run inside the
 * transaction, for one thread at a time. kg_commit / kg_rollback end it and
 * free the handle whatever they return. Other handles do not see its writes
 * until commit on SQLite and PostgreSQL; the memory backend applies writes
 * in place and undoes them on rollback (readers may see them early).
 */
int kg_begin(kg_store *s, kg_store **txn);
int kg_commit(kg_store *txn);
int kg_rollback(kg_store *txn);

/* ------------------------------------------------------------------ */
/* Entities and relations                                               */
/* ------------------------------------------------------------------ */

/* Adds a new entity; KG_EEXISTS if the id is used in this tenant. */
int kg_add_entity(kg_store *s, const kg_entity *e);

/* *out: a copy, freed with kg_entity_free. KG_ENOTFOUND if absent. */
int kg_get_entity(kg_store *s, const char *id, kg_entity **out);

/* Batched get: the entities of `ids` that exist, in the order given, each
 * once (a missing id is skipped, not an error). One round trip on
 * PostgreSQL. *out freed with kg_entity_list_free. */
int kg_get_entities(kg_store *s, const char *const *ids, size_t n, kg_entity_list **out);

/* Replaces type, properties, embedding and source of an existing entity,
 * keeps created_at, sets updated_at (to e->updated_at or now). */
int kg_update_entity(kg_store *s, const kg_entity *e);

/* Adds, or replaces if the id exists (an explicit upsert). */
int kg_upsert_entity(kg_store *s, const kg_entity *e);

/* Deletes the entity AND every relation that starts or ends at it. */
int kg_delete_entity(kg_store *s, const char *id);

/* Adds a relation; both endpoints must exist in this tenant (KG_ENOTFOUND). */
int kg_add_relation(kg_store *s, const kg_relation *r);
int kg_get_relation(kg_store *s, const char *id, kg_relation **out);
int kg_update_relation(kg_store *s, const kg_relation *r);
int kg_upsert_relation(kg_store *s, const kg_relation *r);
int kg_delete_relation(kg_store *s, const char *id);

/*
 * Bulk add. Default: all or nothing - if any item is invalid, already
 * exists, or repeats an id earlier in the same batch, the call fails,
 * names the item, and adds none of the batch. With KG_BULK_SKIP_EXISTING,
 * items whose id already exists (in the store or earlier in the batch) are
 * skipped instead; *added (may be NULL) counts what was really added.
 * Relations in a batch may refer to entities of the same store only
 * (add entities first).
 */
#define KG_BULK_SKIP_EXISTING (1u << 0)
int kg_add_entities(kg_store *s, const kg_entity *ents, size_t n,
                    unsigned flags, size_t *added);
int kg_add_relations(kg_store *s, const kg_relation *rels, size_t n,
                     unsigned flags, size_t *added);

/* ------------------------------------------------------------------ */
/* Graph queries                                                        */
/* ------------------------------------------------------------------ */

typedef enum kg_direction {
	KG_OUT = 1,  /* follow relations source -> target */
	KG_IN = 2,   /* follow relations target -> source */
	KG_BOTH = 3
} kg_direction;

/* Entities linked to `id` by a relation (of `relation_type` if non-NULL) in
 * direction `dir`; each neighbor once, even with parallel edges. Order is
 * unspecified. *out freed with kg_entity_list_free. */
int kg_neighbors(kg_store *s, const char *id, const char *relation_type,
                 kg_direction dir, kg_entity_list **out);

/* Relations that leave (KG_OUT), enter (KG_IN) or touch (KG_BOTH) `id`,
 * optionally of one type; a self-loop is listed once. Insertion order. */
int kg_relations_of(kg_store *s, const char *id, const char *relation_type,
                    kg_direction dir, kg_relation_list **out);

/*
 * Breadth-first traversal from `start` along outgoing relations (of
 * `relation_type` if non-NULL), at most max_depth hops: one path from start
 * to each entity reached (its first-found shortest path), in BFS order, at
 * most max_results (0 = no limit). The start entity is not listed.
 */
int kg_traverse(kg_store *s, const char *start, const char *relation_type,
                int max_depth, size_t max_results, kg_path_list **out);

/*
 * Simple paths (no entity twice) from source to target along outgoing
 * relations, each made of stored relations (parallel edges give distinct
 * paths), at most max_depth edges, shortest first, at most max_paths
 * (0 = no limit). source == target yields the one-node path.
 */
int kg_find_paths(kg_store *s, const char *source, const char *target,
                  int max_depth, size_t max_paths, kg_path_list **out);

/* The entities of `ids` that exist (in the order given, each once) and every
 * relation whose both endpoints are among them. */
int kg_subgraph_get(kg_store *s, const char *const *ids, size_t n,
                    kg_subgraph **out);

/* Entities (of `entity_type` if non-NULL) in insertion order, skipping
 * `offset`, at most `limit` (0 = no limit). */
int kg_list_entities(kg_store *s, const char *entity_type, size_t limit,
                     size_t offset, kg_entity_list **out);

/* ------------------------------------------------------------------ */
/* Iterators: stream every entity / relation without loading a table     */
/* ------------------------------------------------------------------ */

typedef struct kg_entity_iter kg_entity_iter;
typedef struct kg_relation_iter kg_relation_iter;

/* Insertion order. next returns 1 with *e set, 0 at the end, or < 0 on
 * error (message on the store handle). *e is owned by the iterator and
 * valid until the next call or free. The store must outlive the iterator. */
int kg_entity_iter_new(kg_store *s, const char *entity_type, kg_entity_iter **out);
int kg_entity_iter_next(kg_entity_iter *it, const kg_entity **e);
void kg_entity_iter_free(kg_entity_iter *it);

int kg_relation_iter_new(kg_store *s, const char *relation_type, kg_relation_iter **out);
int kg_relation_iter_next(kg_relation_iter *it, const kg_relation **r);
void kg_relation_iter_free(kg_relation_iter *it);

/* Tenants that hold data (the global namespace not included), sorted.
 * *out is one block of *n strings, freed with free(). */
int kg_list_tenants(kg_store *s, char ***out, size_t *n);

/* ------------------------------------------------------------------ */
/* Search                                                               */
/* ------------------------------------------------------------------ */

/*
 * Entities (of `entity_type` if non-NULL) with an embedding, ranked by cosine
 * similarity to `query` (best first, ties by insertion order), keeping those
 * with score >= threshold, at most k. Scores in [-1, 1], in (*out)->scores.
 * An embedding of another dimension than dim is KG_EINVAL.
 */
int kg_vector_search(kg_store *s, const float *query, size_t dim,
                     const char *entity_type, size_t k, double threshold,
                     kg_entity_list **out);

typedef enum kg_text_method {
	KG_TEXT_BM25 = 0,
	KG_TEXT_JACCARD = 1,
	KG_TEXT_COSINE = 2,
	KG_TEXT_LEVENSHTEIN = 3
} kg_text_method;

/*
 * Text search over an entity's text: its id, type and every string value in
 * its properties (nested too). Tokens: runs of letters/digits, ASCII folded to
 * lower case. Scores in [0, 1], best first, kept when >= threshold, at most k:
 *  BM25        s/(1+s), s the Okapi BM25 sum (k1=1.2, b=0.75) over the
 *              candidate entities
 *  JACCARD     |Q ∩ D| / |Q ∪ D| on token sets
 *  COSINE      cosine of the token-count vectors
 *  LEVENSHTEIN mean over query tokens of the best 1 - dist/max(len)
 *              against the entity's tokens
 * Entities scoring 0 are never returned.
 */
int kg_text_search(kg_store *s, const char *query, const char *entity_type,
                   size_t k, double threshold, kg_text_method method,
                   kg_entity_list **out);

/* Property index (the original's add_indexed_property / lookup_by_property):
 * entities whose top-level property `name` equals the JSON value `json_value`
 * (e.g. "\"Alice\"" or "42"). Works without an index too (by scanning). */
int kg_add_indexed_property(kg_store *s, const char *name);
int kg_lookup_by_property(kg_store *s, const char *name, const char *json_value,
                          kg_entity_list **out);

/* ------------------------------------------------------------------ */
/* Whole store                                                          */
/* ------------------------------------------------------------------ */

/* *out freed with kg_stats_free. Counts this handle's tenant only. */
int kg_get_stats(kg_store *s, kg_stats **out);

/* Deletes every entity and relation of this handle's tenant (the base
 * handle: the global namespace). Other tenants are untouched. */
int kg_clear(kg_store *s);

/* Helpers */
int64_t kg_now_us(void);
/* Writes "YYYY-MM-DDTHH:MM:SS.ffffff" (UTC) into buf (>= 27 bytes). */
void kg_format_time(int64_t us, char buf[32]);
/* Parses ISO 8601 ("T" or " " separator, optional fraction, optional "Z" or
 * +HH:MM). Returns 0 or KG_EINVAL. */
int kg_parse_time(const char *text, int64_t *us);

#ifdef __cplusplus
}
#endif
#endif /* KGSTORE_H */
