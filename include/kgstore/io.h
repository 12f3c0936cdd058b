/*
 * kgstore/io.h - moving graphs in and out: streaming export and import
 * (JSONL, JSONL.gz, JSON, CSV pairs), migration between two stores, and a
 * verify step that compares two stores by counts and content checksums.
 *
 * Everything here is built on the public API (kgstore.h) only, so it works
 * for every backend, including ones written later.
 *
 * Conventions:
 *  - Every call returns KG_OK (0) or a negative kg_status code. The detail
 *    (file, line and reason for input errors) is written into the result
 *    struct's `errmsg`, which the caller owns (it is a plain array: nothing
 *    to free). Pass a result struct even if you ignore it (NULL is allowed;
 *    the detail is then lost).
 *  - Option structs are versioned: start from the _INIT macro; every field
 *    left 0 / NULL takes its documented default.
 *  - Progress: every long operation calls `progress(done, total, phase,
 *    user)` every batch. `total` is 0 when unknown (import of a file: then
 *    `done` counts records read). Returning non-zero from the callback
 *    interrupts the operation: it stops as after an error (an import is
 *    undone; a migration keeps its committed batches and can be resumed) and
 *    returns KG_EIO with the message "interrupted by the progress callback".
 *
 * File formats (the original AIECS GraphStreamExporter's):
 *  - JSONL: one object per line, entities first, then relations:
 *      {"type": "entity", "data": {"id":..., "entity_type":..., "properties":{...},
 *        "embedding":[...] (absent when none), "created_at":"ISO 8601",
 *        "updated_at":..., "source":... (absent when none),
 *        "tenant_id":... (absent for the global namespace)}}
 *      {"type": "relation", "data": {"id", "relation_type", "source_id",
 *        "target_id", "properties", "weight", "created_at", "updated_at",
 *        "source", "tenant_id"}}
 *    On import a line without "type" is a bare entity; blank lines are skipped.
 *  - JSON: {"entities": [...], "relations": [...]} with the same objects as
 *    the "data" members above.
 *  - gzip: by a ".gz" suffix or the gzip option on export (".gz" is appended
 *    when asked to compress, as the original did); detected by the magic
 *    bytes on import, whatever the name.
 *  - CSV pair (import only): a nodes file and an edges file, RFC 4180 with a
 *    header row; columns are documented at kg_import below (neo4j-admin import
 *    headers such as ":ID", ":LABEL", ":START_ID", ":END_ID", ":TYPE" and
 *    Kuzu's "from"/"to" are accepted too).
 */
#ifndef KGSTORE_IO_H
#define KGSTORE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "kgstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called once per batch. total == 0: unknown. Non-zero return interrupts. */
typedef int (*kg_progress_fn)(uint64_t done, uint64_t total, const char *phase, void *user);

typedef enum kg_io_format {
	KG_FORMAT_AUTO = 0,  /* by name: *.json[.gz] -> JSON, *.csv[.gz] -> CSV, else JSONL */
	KG_FORMAT_JSONL = 1,
	KG_FORMAT_JSON = 2,
	KG_FORMAT_CSV = 3    /* import only: nodes file + opts.edges_path */
} kg_io_format;

#define KG_IO_ERRMSG_SIZE 1024
#define KG_IO_PATH_SIZE 4096

/* ------------------------------------------------------------------ */
/* Export                                                               */
/* ------------------------------------------------------------------ */

#define KG_EXPORT_OPTIONS_VERSION 1

typedef struct kg_export_options {
	unsigned version;          /* KG_EXPORT_OPTIONS_VERSION */
	kg_io_format format;       /* AUTO: by the path's suffix */
	int gzip;                  /* 1: compress (".gz" appended if missing);
	                              0: compress only if the path ends in ".gz" */
	int gzip_level;            /* 1..9; 0 = default (6) */
	const char *entity_type;   /* only entities of this type (NULL = all); the
	                              relations written are those whose two
	                              endpoints are of this type */
	const char *relation_type; /* only relations of this type (NULL = all) */
	int no_relations;          /* 1: entities only */
	int all_tenants;           /* 1: the global namespace and every tenant
	                              (store must be a base handle) */
	const char *tenant_id;     /* export this tenant (from a base handle);
	                              NULL: the handle's own namespace */
	kg_progress_fn progress;
	void *progress_user;
} kg_export_options;

#define KG_EXPORT_OPTIONS_INIT { .version = KG_EXPORT_OPTIONS_VERSION }

/* What the original's exporter reported, plus the error detail. */
typedef struct kg_export_result {
	uint64_t entity_count;
	uint64_t relation_count;
	char filepath[KG_IO_PATH_SIZE]; /* the file written (".gz" appended) */
	int compressed;
	char errmsg[KG_IO_ERRMSG_SIZE]; /* "" on success */
} kg_export_result;

/*
 * Streams the store into `path` (entities then relations, insertion order,
 * per namespace: global first, then tenants sorted). Records of a tenant
 * carry "tenant_id". Memory does not grow with the graph. The file is
 * written to "<path>.tmp" and renamed at the end, so a failed export never
 * leaves a half-written file under the final name. opts may be NULL.
 */
int kg_export(kg_store *s, const char *path, const kg_export_options *opts,
              kg_export_result *res);

/* The same to an open stdio stream (e.g. stdout; not closed). gzip as in
 * opts->gzip; format AUTO means JSONL. res->filepath is "-". */
int kg_export_stream(kg_store *s, void *stdio_file, const kg_export_options *opts,
                     kg_export_result *res);

/* ------------------------------------------------------------------ */
/* Import                                                               */
/* ------------------------------------------------------------------ */

#define KG_IMPORT_OPTIONS_VERSION 1

/* Flags */
#define KG_IMPORT_SKIP_BAD       (1u << 0) /* skip bad records (to reject_path) instead of stopping */
#define KG_IMPORT_SKIP_EXISTING  (1u << 1) /* ids already in the store are skipped, not errors */
#define KG_IMPORT_IGNORE_TENANT  (1u << 2) /* ignore records' tenant_id: all go to the handle's namespace */
#define KG_IMPORT_NO_TRANSACTION (1u << 3) /* commit batch by batch; a failure deletes what was added */

typedef struct kg_import_options {
	unsigned version;          /* KG_IMPORT_OPTIONS_VERSION */
	kg_io_format format;       /* AUTO: by the path's suffix (gzip: by magic bytes) */
	const char *edges_path;    /* CSV: the edges file (path is the nodes file; either may be NULL) */
	size_t batch_size;         /* records per bulk call; default 1000 */
	unsigned flags;            /* KG_IMPORT_* */
	const char *reject_path;   /* with SKIP_BAD: bad records and reasons are
	                              written here as JSONL {"file","line","reason","record"};
	                              NULL = "<path>.rejects.jsonl" */
	size_t max_deferred_memory;/* bytes of relations held in memory while their
	                              entities are still to come; beyond it they go to
	                              a temporary file. Default 64 MB */
	kg_progress_fn progress;
	void *progress_user;
} kg_import_options;

#define KG_IMPORT_OPTIONS_INIT { .version = KG_IMPORT_OPTIONS_VERSION }

typedef struct kg_import_result {
	uint64_t entity_count;    /* entities added */
	uint64_t relation_count;  /* relations added */
	uint64_t skipped;         /* existing ids skipped (SKIP_EXISTING) */
	uint64_t rejected;        /* bad records skipped (SKIP_BAD) */
	uint64_t lines;           /* lines (records for JSON) read */
	char errfile[KG_IO_PATH_SIZE]; /* on error: the file... */
	uint64_t errline;         /* ...and line (1-based; 0 = not tied to a line) */
	char errmsg[KG_IO_ERRMSG_SIZE]; /* "FILE:LINE: reason" ("" on success) */
} kg_import_result;

/*
 * Reads `path` into the store. Records with "tenant_id" go to that tenant
 * (the store must then be a base handle, or use KG_IMPORT_IGNORE_TENANT);
 * the others go to the handle's namespace. Relations may come before their
 * entities. All or nothing by default: on bad input (invalid JSON, truncated
 * gzip, wrong field type, duplicate id, dangling relation) it returns
 * KG_ECORRUPT / KG_EINVAL / KG_EEXISTS / KG_ENOTFOUND with file, line and
 * reason, and the store is left as it was. opts may be NULL.
 *
 * Path "-" reads standard input. gzip is recognised by its magic bytes.
 *
 * How all-or-nothing is kept: the whole import runs in one transaction
 * (kg_begin) when the backend has them and the file's records all go to one
 * namespace (or the core lets a tenant view share a transaction). Otherwise
 * (several tenants, a backend without transactions, or
 * KG_IMPORT_NO_TRANSACTION) each batch commits on its own, the ids added are
 * logged to a temporary file, and a failure deletes them again; other
 * readers may then see the records for a moment.
 *
 * CSV pair (format KG_FORMAT_CSV; `path` = nodes file, opts->edges_path =
 * edges file). RFC 4180: comma-separated, a header row, fields may be quoted
 * ("" inside quotes is a quote; quoted fields may span lines). Header names
 * (case-insensitive):
 *   nodes: id | :ID | NAME:ID           the entity id (NAME:ID also keeps
 *                                       the value as property NAME)
 *          entity_type | type | label | :LABEL   (neo4j "A;B": the first)
 *   edges: source_id | from | :START_ID, target_id | to | :END_ID,
 *          relation_type | type | label | :TYPE, weight (number, default 1),
 *          id (optional: else "<edges file name without extension>-<row>")
 *   both:  properties (a JSON object; property columns are added to it),
 *          embedding (nodes: "[0.1, 0.2]" or "0.1;0.2"), tenant_id,
 *          created_at, updated_at (ISO 8601), source, NAME:IGNORE
 *   any other column is a property: NAME (string), NAME:int|long,
 *   NAME:float|double, NAME:boolean, NAME:json, NAME:string, and arrays
 *   NAME:int[] etc. with ';' between values. An empty cell leaves the
 *   property out (as neo4j-admin does).
 * Kuzu users: COPY ... TO 'x.csv' (HEADER=true) output works when its columns
 * are named as above (from/to for relationship tables).
 */
int kg_import(kg_store *s, const char *path, const kg_import_options *opts,
              kg_import_result *res);

/* ------------------------------------------------------------------ */
/* Checksums, verify, migrate                                           */
/* ------------------------------------------------------------------ */

/* Content checksum of one table of one namespace: an order-independent sum
 * of 128-bit hashes of canonical records (id, type, properties as sorted
 * compact JSON, embedding float bits, weight bits, endpoints, source,
 * timestamps, tenant). Identical on every backend for identical content. */
typedef struct kg_checksum {
	uint64_t count;
	uint64_t sum_lo, sum_hi;
} kg_checksum;

typedef struct kg_store_checksum {
	kg_checksum entities;   /* every namespace together */
	kg_checksum relations;
	size_t namespaces;      /* global (if it holds data) + tenants */
} kg_store_checksum;

#define KG_VERIFY_OPTIONS_VERSION 1
typedef struct kg_verify_options {
	unsigned version;
	int own_namespace_only; /* 1: only the handles' own namespaces; default:
	                           global + every tenant (base handles) */
	kg_progress_fn progress;
	void *progress_user;
} kg_verify_options;
#define KG_VERIFY_OPTIONS_INIT { .version = KG_VERIFY_OPTIONS_VERSION }

typedef struct kg_verify_result {
	int equal;                 /* 1: same counts and checksums everywhere */
	kg_store_checksum a, b;
	char errmsg[KG_IO_ERRMSG_SIZE]; /* first difference ("tenant t1: relations:
	                                   count 10 vs 9") or the error */
} kg_verify_result;

/* Checksums of one store (all namespaces unless opts->own_namespace_only). */
int kg_store_checksum_compute(kg_store *s, const kg_verify_options *opts,
                              kg_store_checksum *out, char errmsg[KG_IO_ERRMSG_SIZE]);

/* Compares two stores namespace by namespace. Returns KG_OK whether or not
 * they are equal (see res->equal); < 0 only if reading failed. */
int kg_verify(kg_store *a, kg_store *b, const kg_verify_options *opts,
              kg_verify_result *res);

#define KG_MIGRATE_OPTIONS_VERSION 1
#define KG_MIGRATE_NO_VERIFY     (1u << 0) /* skip the verify step */
#define KG_MIGRATE_SKIP_EXISTING (1u << 1) /* ids already in dst are skipped (restart without a resume file) */
#define KG_MIGRATE_NO_RELATIONS  (1u << 2)

typedef struct kg_migrate_options {
	unsigned version;         /* KG_MIGRATE_OPTIONS_VERSION */
	size_t batch_size;        /* records per bulk call and per transaction; default 5000 */
	unsigned flags;           /* KG_MIGRATE_* */
	const char *resume_path;  /* if set: progress is recorded here after each
	                             committed batch, and a migration started with
	                             an existing file continues after its last
	                             committed batch. Removed on success. */
	kg_progress_fn progress;
	void *progress_user;
} kg_migrate_options;

#define KG_MIGRATE_OPTIONS_INIT { .version = KG_MIGRATE_OPTIONS_VERSION }

typedef struct kg_migrate_result {
	uint64_t entity_count;    /* copied by this run */
	uint64_t relation_count;
	uint64_t skipped;         /* already in dst (resume / SKIP_EXISTING) */
	size_t namespaces;
	int resumed;              /* 1: continued from a resume file */
	int verified;             /* 1: the verify step ran and found dst == src */
	kg_verify_result verify;
	char errmsg[KG_IO_ERRMSG_SIZE];
} kg_migrate_result;

/*
 * Copies every namespace (global and all tenants, when src is a base handle;
 * else the view's tenant into dst's namespace) from src to dst: entities,
 * then relations, in batches, each batch committed in its own transaction
 * where dst supports them. Then verifies (unless KG_MIGRATE_NO_VERIFY):
 * a difference is KG_ECORRUPT. src and dst may be any two backends.
 */
int kg_migrate(kg_store *src, kg_store *dst, const kg_migrate_options *opts,
               kg_migrate_result *res);

#ifdef __cplusplus
}
#endif
#endif /* KGSTORE_IO_H */
