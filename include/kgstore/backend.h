/*
 * kgstore/backend.h - for people who write a kgstore backend (and for the
 * wrappers built on the backend interface, such as graceful degradation).
 * Users of the library need only kgstore.h.
 *
 * A backend is a struct of function pointers that begins with its version,
 * like SQLite's VFS and libgit2's ODB backends. Optional operations may be
 * NULL: the core then runs its generic algorithm over the required ones.
 * Operations added later are appended, grouped by the version that added
 * them, so a backend written for version 1 keeps working.
 *
 * Every operation gets a kg_call: the tenant the call is for, the backend's
 * transaction (if the call runs inside one), and a buffer for the message.
 * Arguments reaching a backend are already validated by the core: ids and
 * types non-empty, properties a JSON object, weights in [0,1], tenant ids
 * well formed, bulk batches free of repeated ids (unless
 * KG_BULK_SKIP_EXISTING, where the backend skips repeats itself).
 */
#ifndef KGSTORE_BACKEND_H
#define KGSTORE_BACKEND_H

#include <stdarg.h>
#include "../kgstore.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KG_BACKEND_VERSION 2

/* Per-call context, made by the core on the stack. */
typedef struct kg_call {
	const char *tenant;  /* NULL = global namespace */
	void *txn;           /* from txn_begin, or NULL outside a transaction */
	char *msg;           /* message buffer (msgcap bytes) for kg_call_error */
	size_t msgcap;
	unsigned result_flags; /* KG_RESULT_* a backend may set */
} kg_call;

/* The call was answered by a fallback store (graceful degradation). */
#define KG_RESULT_DEGRADED (1u << 0)

/* Writes the message (printf style) and returns `code`, so a backend can
 * `return kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found", id);` */
int kg_call_error(kg_call *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;
int kg_call_verror(kg_call *c, int code, const char *fmt, va_list ap);

/* A streaming cursor made by a backend. `next` returns 1 and sets *item
 * (a kg_entity* or kg_relation*, owned by the iterator, valid until the next
 * call), 0 at the end, < 0 on error (message through the kg_call). */
typedef struct kg_iter kg_iter;
struct kg_iter {
	int (*next)(kg_iter *it, kg_call *c, const void **item);
	void (*free)(kg_iter *it);
};

typedef struct kg_backend kg_backend;

#define KG_UPSERT (1u << 0) /* flag of update_entity/update_relation */

struct kg_backend {
	unsigned version; /* KG_BACKEND_VERSION the backend was written for */
	const char *name; /* "memory", "sqlite", ... static storage */
	unsigned caps;    /* KG_CAP_* */

	/* ---- version 1: required ---- */

	/* Bulk add; n == 1 for kg_add_entity. All or nothing unless
	 * KG_BULK_SKIP_EXISTING. Sets *added. */
	int (*add_entities)(kg_backend *b, kg_call *c, const kg_entity *ents,
	                    size_t n, unsigned flags, size_t *added);
	int (*get_entity)(kg_backend *b, kg_call *c, const char *id, kg_entity **out);
	/* Replace an existing entity; with KG_UPSERT add it when absent. */
	int (*update_entity)(kg_backend *b, kg_call *c, const kg_entity *e, unsigned flags);
	/* Delete an entity and its relations. */
	int (*delete_entity)(kg_backend *b, kg_call *c, const char *id);

	int (*add_relations)(kg_backend *b, kg_call *c, const kg_relation *rels,
	                     size_t n, unsigned flags, size_t *added);
	int (*get_relation)(kg_backend *b, kg_call *c, const char *id, kg_relation **out);
	int (*update_relation)(kg_backend *b, kg_call *c, const kg_relation *r, unsigned flags);
	int (*delete_relation)(kg_backend *b, kg_call *c, const char *id);

	/* Relations touching `id` (see kg_relations_of). KG_ENOTFOUND if the
	 * entity does not exist. */
	int (*relations_of)(kg_backend *b, kg_call *c, const char *id,
	                    const char *relation_type, kg_direction dir,
	                    kg_relation_list **out);

	/* Streaming cursors in insertion order, optionally filtered by type. */
	int (*iter_entities)(kg_backend *b, kg_call *c, const char *entity_type, kg_iter **out);
	int (*iter_relations)(kg_backend *b, kg_call *c, const char *relation_type, kg_iter **out);

	int (*stats)(kg_backend *b, kg_call *c, kg_stats **out);
	int (*clear)(kg_backend *b, kg_call *c);
	int (*list_tenants)(kg_backend *b, kg_call *c, char ***out, size_t *n);

	/* Transactions: begin returns the backend's transaction object, which
	 * the core passes in kg_call.txn to every call on the transaction
	 * handle until commit or rollback. NULL ops: KG_EUNSUPPORTED. */
	int (*txn_begin)(kg_backend *b, kg_call *c, void **txn);
	int (*txn_commit)(kg_backend *b, kg_call *c, void *txn);
	int (*txn_rollback)(kg_backend *b, kg_call *c, void *txn);

	/* ---- version 1: optional (NULL = the core's generic algorithm) ---- */

	int (*neighbors)(kg_backend *b, kg_call *c, const char *id,
	                 const char *relation_type, kg_direction dir,
	                 kg_entity_list **out);
	int (*traverse)(kg_backend *b, kg_call *c, const char *start,
	                const char *relation_type, int max_depth,
	                size_t max_results, kg_path_list **out);
	int (*find_paths)(kg_backend *b, kg_call *c, const char *source,
	                  const char *target, int max_depth, size_t max_paths,
	                  kg_path_list **out);
	int (*subgraph)(kg_backend *b, kg_call *c, const char *const *ids,
	                size_t n, kg_subgraph **out);
	int (*list_entities)(kg_backend *b, kg_call *c, const char *entity_type,
	                     size_t limit, size_t offset, kg_entity_list **out);
	int (*vector_search)(kg_backend *b, kg_call *c, const float *query,
	                     size_t dim, const char *entity_type, size_t k,
	                     double threshold, kg_entity_list **out);
	int (*text_search)(kg_backend *b, kg_call *c, const char *query,
	                   const char *entity_type, size_t k, double threshold,
	                   kg_text_method method, kg_entity_list **out);
	int (*add_indexed_property)(kg_backend *b, kg_call *c, const char *name);
	int (*lookup_by_property)(kg_backend *b, kg_call *c, const char *name,
	                          const char *json_value, kg_entity_list **out);

	/* Backend-specific requests by opcode (like SQLite's xFileControl);
	 * unknown opcodes: KG_EUNSUPPORTED. May be NULL. Opcodes every
	 * persistent backend should answer: KG_CTL_*, below. */
	int (*control)(kg_backend *b, kg_call *c, int op, void *arg);

	/* ---- version 2: optional (read only when version >= 2) ---- */

	/* The entities of `ids` that exist, in the order given, each once
	 * (see kg_get_entities): one round trip where a server is involved. */
	int (*get_entities)(kg_backend *b, kg_call *c, const char *const *ids,
	                    size_t n, kg_entity_list **out);

	/* ---- required, last ---- */
	void (*free)(kg_backend *b);
};

/* Control opcodes for every backend (backend-specific ones use their own
 * prefix, e.g. KG_PG_CTL_*). */
#define KG_CTL_SCHEMA_VERSION 0x4B470001 /* arg: int *: see kg_schema_version */

/* Wrap a backend in a store handle. Takes ownership of `b` (freed by
 * kg_close, and on failure). The way wrappers and custom backends enter the
 * public API. */
int kg_store_from_backend(kg_backend *b, kg_store **out);

/* The backend under a store handle (borrowed). */
kg_backend *kg_store_backend(kg_store *s);

/* ------------------------------------------------------------------ */
/* Helpers for backends: building results                               */
/* ------------------------------------------------------------------ */

/* One-block deep copies (free with kg_entity_free / kg_relation_free).
 * tenant_id and the timestamps are copied as they are. NULL on ENOMEM. */
kg_entity *kg_entity_dup(const kg_entity *src);
kg_relation *kg_relation_dup(const kg_relation *src);

/* Allocate an empty list (NULL on ENOMEM); push takes ownership of the item
 * (also on failure, when it is freed). Returns 0 or KG_ENOMEM. */
kg_entity_list *kg_entity_list_new(void);
int kg_entity_list_push(kg_entity_list *l, kg_entity *owned);
/* Same, with a score (makes l->scores exist). */
int kg_entity_list_push_scored(kg_entity_list *l, kg_entity *owned, double score);
kg_relation_list *kg_relation_list_new(void);
int kg_relation_list_push(kg_relation_list *l, kg_relation *owned);

/* Path lists: add the entities and relations once (they are owned by the
 * list from then on, also on failure), then add paths as index arrays. */
kg_path_list *kg_path_list_new(void);
int kg_path_list_add_entity(kg_path_list *l, kg_entity *owned, size_t *index);
int kg_path_list_add_relation(kg_path_list *l, kg_relation *owned, size_t *index);
int kg_path_list_add_path(kg_path_list *l, const size_t *node_idx, size_t n_nodes,
                          const size_t *edge_idx, double score);

/* Stats builder: counts are given per type; builds the one-block result. */
typedef struct kg_stats_builder kg_stats_builder;
kg_stats_builder *kg_stats_builder_new(void);
int kg_stats_builder_add(kg_stats_builder *sb, int is_relation, const char *type, size_t count);
/* Consumes the builder (also on failure). */
int kg_stats_builder_finish(kg_stats_builder *sb, const char *backend, kg_stats **out);

/* ------------------------------------------------------------------ */
/* Helpers for backends: validation and encoding                         */
/* ------------------------------------------------------------------ */

/* 1 if `text` is a well-formed JSON object, else 0 (fast, no allocation). */
int kg_json_is_object(const char *text, size_t len);
/* A string hash for open-addressing tables (FNV-1a, then a mixer so the
 * low bits, which a power-of-two mask keeps, depend on every byte). */
uint64_t kg_hash_str(const char *s);
/* 1 if `t` matches [A-Za-z0-9_-]{1,255}. */
int kg_tenant_id_valid(const char *t);

/* Embeddings in files and databases: little-endian float32, 4 bytes a value. */
void kg_embedding_to_le(const float *v, size_t dim, unsigned char *out);
void kg_embedding_from_le(const unsigned char *in, size_t dim, float *out);

/* The core's generic algorithms, callable by a backend that wants to handle
 * part of a request itself and fall back for the rest. They use only the
 * required operations of `b`. */
int kg_generic_neighbors(kg_backend *b, kg_call *c, const char *id,
                         const char *relation_type, kg_direction dir,
                         kg_entity_list **out);
int kg_generic_traverse(kg_backend *b, kg_call *c, const char *start,
                        const char *relation_type, int max_depth,
                        size_t max_results, kg_path_list **out);
int kg_generic_find_paths(kg_backend *b, kg_call *c, const char *source,
                          const char *target, int max_depth, size_t max_paths,
                          kg_path_list **out);
int kg_generic_subgraph(kg_backend *b, kg_call *c, const char *const *ids,
                        size_t n, kg_subgraph **out);
int kg_generic_get_entities(kg_backend *b, kg_call *c, const char *const *ids,
                            size_t n, kg_entity_list **out);
int kg_generic_list_entities(kg_backend *b, kg_call *c, const char *entity_type,
                             size_t limit, size_t offset, kg_entity_list **out);
int kg_generic_vector_search(kg_backend *b, kg_call *c, const float *query,
                             size_t dim, const char *entity_type, size_t k,
                             double threshold, kg_entity_list **out);
int kg_generic_text_search(kg_backend *b, kg_call *c, const char *query,
                           const char *entity_type, size_t k, double threshold,
                           kg_text_method method, kg_entity_list **out);
int kg_generic_lookup_by_property(kg_backend *b, kg_call *c, const char *name,
                                  const char *json_value, kg_entity_list **out);

/* Text scoring used by the generic text search, exposed so that a backend
 * with its own candidate selection (FTS5) ranks exactly as the core does.
 * The scorer is built from the query, fed every candidate document's text,
 * then asked for scores. */
typedef struct kg_text_scorer kg_text_scorer;
int kg_text_scorer_new(const char *query, kg_text_method method, kg_text_scorer **out);
/* Adds a candidate document (the entity's searchable text); returns its
 * index. Documents must all be added before kg_text_scorer_score. */
int kg_text_scorer_add(kg_text_scorer *ts, const kg_entity *e, size_t *doc_index);
double kg_text_scorer_score(kg_text_scorer *ts, size_t doc_index);
/* For a backend that adds only the candidate documents (those holding a
 * query term, e.g. from FTS5): BM25's corpus is n_docs documents holding
 * total_tokens tokens in all (document frequencies are still counted over
 * the added documents, as only they hold a term). KG_EINVAL if n_docs is
 * less than the documents added. */
int kg_text_scorer_set_corpus(kg_text_scorer *ts, size_t n_docs, double total_tokens);
void kg_text_scorer_free(kg_text_scorer *ts);

/* Cosine similarity of two float vectors (0 when either is all zero). */
double kg_cosine(const float *a, const float *b, size_t dim);

/* ------------------------------------------------------------------ */
/* Built-in backends                                                    */
/* ------------------------------------------------------------------ */

/* Each creates a backend from options; on failure writes a message into
 * err (errcap bytes) and returns a negative code. Backends not built into
 * this library return KG_EUNSUPPORTED. */
int kg_memory_backend_new(const kg_options *o, kg_backend **out, char *err, size_t errcap);
int kg_sqlite_backend_new(const kg_options *o, kg_backend **out, char *err, size_t errcap);
int kg_postgres_backend_new(const kg_options *o, kg_backend **out, char *err, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif /* KGSTORE_BACKEND_H */
