/*
 * bench_internal.h - pieces shared by the benchmark's files: the raw
 * engines (the same jobs done without kgstore, to give every figure a
 * ratio), result records and small helpers.
 */
#ifndef KG_BENCH_INTERNAL_H
#define KG_BENCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kgstore.h"

#define BENCH_PATH_DEPTH 5
#define BENCH_MAX_PATHS 10
#define BENCH_VEC_K 10

/* Settings every part reads. */
typedef struct bench_cfg {
	size_t n, runs, vector_n, text_n;
	uint64_t seed;
	const char *uri;   /* PostgreSQL URI, NULL = KG_BENCH_PG_URI */
	int json, progress, report, long_mode;
	int quiet;         /* no plain table rows (markdown goes to stdout) */
	int pin_cpu;       /* -1 = no pinning */
	size_t scale[8], n_scale;
} bench_cfg;

/* One figure. median and raw_median are in `unit`; raw_median < 0 when the
 * raw engine has no counterpart. ratio = median / raw_median. */
typedef struct bench_result {
	char backend[12];
	char op[32];
	char unit[8];      /* "s", "rows/s", "ops/s", "bytes" */
	char note[80];
	uint64_t n;
	uint32_t runs;
	double median, raw_median, seed;
} bench_result;

/*
 * A raw engine: the bare job, no kgstore. `db` is a fresh, empty store with
 * the same schema as kgstore's; a reader is one thread's handle to it.
 * Every call returns 0 (or a count >= 0) or a negative value with the
 * message in bench_raw_err. Calls that load data run on one thread.
 */
typedef struct raw_engine {
	const char *backend;
	void *(*open)(const bench_cfg *cfg);
	void (*close)(void *db);
	int (*add_one)(void *db, const kg_entity *e);             /* one durable insert */
	int (*load_entities)(void *db, const kg_entity *e, size_t n);
	int (*load_relations)(void *db, const kg_relation *r, size_t m);
	void *(*reader)(void *db);                                 /* NULL on failure */
	void (*reader_close)(void *rd);
	int (*get)(void *rd, const char *id);                      /* 1 found, 0 not */
	int (*get_batch)(void *rd, const char *const *ids, size_t n); /* NULL if none */
	int (*neighbors)(void *rd, const char *id);                /* count */
	int (*paths)(void *rd, const char *src, const char *dst);  /* paths found */
	int (*vector)(void *rd, const float *q, size_t dim, size_t k);
	void (*concurrent)(void *db, int on);                      /* mixed run starts/ends */
} raw_engine;

extern _Thread_local char bench_raw_err[512];
void bench_raw_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

extern const raw_engine bench_raw_memory;
#ifdef KG_HAVE_SQLITE
extern const raw_engine bench_raw_sqlite;
#endif
#ifdef KG_HAVE_POSTGRES
extern const raw_engine bench_raw_postgres;
/* Pins the server's postmaster and every backend process to `cpu`
 * (children forked later inherit it); cpu -1 lets them run anywhere again.
 * Returns 0 or -1 (message in bench_raw_err). */
int bench_pg_pin_server(const char *uri, int cpu);
#endif

/* Helpers (bench.c). */
double bench_now(void);
double bench_median(double *v, size_t n);
size_t bench_proc_status(const char *key); /* bytes of a /proc/self/status line */

/* The cosine top-k over contiguous rows, the raw vector search (raw_memory.c);
 * rows may be NULL-skipped via has (NULL = all present). Returns hits. */
size_t bench_cosine_topk(const float *rows, const float *norms, size_t n, size_t dim, const float *q, size_t k,
                         uint32_t *top, float *topscore);
float bench_norm(const float *v, size_t dim);

/* Output (report.c). */
void bench_emit_row(const bench_cfg *cfg, const bench_result *r);
int bench_write_markdown(const char *path, const bench_cfg *cfg, const bench_result *res, size_t n,
                         const char *placement);
int bench_write_svg(const char *path, const bench_result *res, size_t n);

#endif
