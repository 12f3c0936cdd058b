/*
 * bench.c - `kgstore bench`: the workload of bench/WORKLOAD.md on each
 * backend, every figure beside the raw engine doing the same job
 * without kgstore (raw_*.c), measured in the same run, and their ratio.
 *
 * Each (backend, N) is measured in a child process of its own, so its peak
 * memory is its own and one backend's leftovers never slow the next; the
 * child sends its figures back through a pipe as fixed-size records.
 *
 * Within a run, kgstore and the raw engine take turns job by job on equal
 * data: add_entity_1k (the first 1,000 entities one durable call each, on
 * fresh stores), batch_insert_10k (all N entities in one bulk call),
 * load_relations (the 3N relations), bulk_load (both, rows/s), get_entity,
 * neighbors, find_paths_d5 (random pairs, most not joined within 5 edges),
 * find_paths_reach_d5 (pairs joined by a walk: the search that finds
 * paths), and for PostgreSQL get_entity_batch (100 ids a
 * call: kg_get_entities against pipelined SELECTs). Figures are medians
 * over the runs. --report adds, at the first N, text search per method,
 * read throughput on 1, 2 and 4 threads and a mixed read/write run, and
 * vector search (D = 64, k = 10) over --vector-n entities.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_internal.h"
#include "workload.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

size_t bench_proc_status(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0, klen = strlen(key);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':')
			kb = strtoull(line + klen + 1, NULL, 10);
	if (f)
		fclose(f);
	return kb * 1024;
}

/* Bytes the heap has handed out and not taken back (glibc). Unlike RSS it
 * is exact when a store reuses memory an earlier one freed. */
static double heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return (double)mi.uordblks + (double)mi.hblkhd;
}

/* AIECS's own figures (Python), for its four rows at N = 10K. */
typedef struct seed_row {
	const char *backend, *op;
	double seconds;
} seed_row;

static const seed_row SEED[] = {
	{ "memory", "add_entity_1k", 10e-3 },   { "memory", "get_entity", 0.01e-3 },
	{ "memory", "find_paths_d5", 10e-3 },   { "memory", "batch_insert_10k", 150e-3 },
	{ "sqlite", "add_entity_1k", 500e-3 },  { "sqlite", "get_entity", 3e-3 },
	{ "sqlite", "find_paths_d5", 200e-3 },  { "sqlite", "batch_insert_10k", 5.0 },
	{ "postgres", "add_entity_1k", 300e-3 }, { "postgres", "get_entity", 2e-3 },
	{ "postgres", "find_paths_d5", 50e-3 }, { "postgres", "batch_insert_10k", 300e-3 },
};

static double seed_figure(const char *backend, const char *op, size_t n)
{
	if (n != 10000)
		return 0;
	for (size_t i = 0; i < sizeof(SEED) / sizeof(SEED[0]); i++)
		if (!strcmp(SEED[i].backend, backend) && !strcmp(SEED[i].op, op))
			return SEED[i].seconds;
	return 0;
}

static const raw_engine *raw_for(const char *backend)
{
	if (!strcmp(backend, "memory"))
		return &bench_raw_memory;
#ifdef KG_HAVE_SQLITE
	if (!strcmp(backend, "sqlite"))
		return &bench_raw_sqlite;
#endif
#ifdef KG_HAVE_POSTGRES
	if (!strcmp(backend, "postgres"))
		return &bench_raw_postgres;
#endif
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The child: one backend at one N                                      */
/* ------------------------------------------------------------------ */

typedef struct job {
	const char *backend;
	const bench_cfg *cfg;
	const kg_workload *w;
	const raw_engine *raw;
	int out_fd;    /* records go here */
	int base;      /* the first N: the extra sections run here */
	char path[4096];
	char why[1024];
} job;

static void send_result(job *j, const char *op, const char *unit, double median, double raw_median, size_t runs,
                        const char *note)
{
	bench_result r;
	memset(&r, 0, sizeof(r));
	snprintf(r.backend, sizeof(r.backend), "%s", j->backend);
	snprintf(r.op, sizeof(r.op), "%s", op);
	snprintf(r.unit, sizeof(r.unit), "%s", unit);
	snprintf(r.note, sizeof(r.note), "%s", note ? note : "");
	r.n = j->w->n;
	r.runs = (uint32_t)runs;
	r.median = median;
	r.raw_median = raw_median;
	r.seed = strcmp(unit, "s") ? 0 : seed_figure(j->backend, op, j->w->n);
	ssize_t wr = write(j->out_fd, &r, sizeof(r)); /* < PIPE_BUF: one piece */
	(void)wr;
}

static void progress(const job *j, const char *what)
{
	if (j->cfg->progress)
		fprintf(stderr, "\r\033[K%s n=%zu: %s", j->backend, j->w->n, what);
}

/* A fresh, empty store: a new temp file for SQLite, a cleared database for
 * PostgreSQL. j->path gets the temp file to delete. */
static int kg_fresh(job *j, kg_store **s)
{
	char uri[4200];
	j->path[0] = '\0';
	if (!strcmp(j->backend, "memory")) {
		snprintf(uri, sizeof(uri), "memory:");
	} else if (!strcmp(j->backend, "sqlite")) {
		const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(j->path, sizeof(j->path), "%s/kgbench-XXXXXX", dir);
		int fd = mkstemp(j->path);
		if (fd < 0) {
			snprintf(j->why, sizeof(j->why), "cannot create a temp file in %s", dir);
			j->path[0] = '\0';
			return KG_EIO;
		}
		close(fd);
		unlink(j->path); /* SQLite creates it with its own schema */
		snprintf(uri, sizeof(uri), "sqlite:%s", j->path);
	} else {
		const char *u = j->cfg->uri ? j->cfg->uri : getenv("KG_BENCH_PG_URI");
		if (!u) {
			snprintf(j->why, sizeof(j->why), "no server given: pass --uri postgresql://... or set KG_BENCH_PG_URI");
			return KG_EUNSUPPORTED;
		}
		snprintf(uri, sizeof(uri), "%s", u);
	}
	int rc = kg_open(uri, s);
	if (rc < 0) {
		snprintf(j->why, sizeof(j->why), "%s", *s ? kg_errmsg(*s) : "out of memory");
		kg_close(*s);
		*s = NULL;
		return rc;
	}
	if (!strcmp(j->backend, "postgres") && (rc = kg_clear(*s)) < 0) {
		snprintf(j->why, sizeof(j->why), "%s", kg_errmsg(*s));
		kg_close(*s);
		*s = NULL;
	}
	return rc;
}

static void kg_done(job *j, kg_store *s)
{
	kg_close(s);
	if (j->path[0]) {
		char f[4200];
		const char *sfx[] = { "", "-wal", "-shm", "-journal" };
		for (int i = 0; i < 4; i++) {
			snprintf(f, sizeof(f), "%s%s", j->path, sfx[i]);
			unlink(f);
		}
		j->path[0] = '\0';
	}
}

static int kg_fail(job *j, kg_store *s, const char *what)
{
	snprintf(j->why, sizeof(j->why), "kgstore %s: %s", what, kg_errmsg(s));
	return -1;
}

static int raw_fail(job *j)
{
	snprintf(j->why, sizeof(j->why), "%s", bench_raw_err);
	return -1;
}

/* How many runs at this N: the full count on small graphs, fewer on big ones. */
static size_t runs_for(const bench_cfg *cfg, size_t n)
{
	size_t r = cfg->runs;
	if (n > 200000)
		return 1;
	if (n > 20000 && r > 3)
		return 3;
	return r;
}

/* Calls timed for get_entity (the workload's 100,000) and neighbors (fewer
 * where a call is a round trip); tiny graphs (the smoke test) take 50 per
 * entity, at least 1,000. */
static size_t gets_for(const char *backend, size_t which, size_t n)
{
	size_t q = which == 0 || !strcmp(backend, "memory") ? KG_WORKLOAD_GETS : 10000;
	size_t cap = 50 * n < 1000 ? 1000 : 50 * n;
	return q < cap ? q : cap;
}

enum { T_ADD1K, T_BATCH, T_RELS, T_BULK, T_GET, T_NB, T_PATHS, T_REACH, T_GETB, N_T };
static const char *const T_NAMES[N_T] = { "add_entity_1k", "batch_insert_10k",    "load_relations",
	                                  "bulk_load",     "get_entity",          "neighbors",
	                                  "find_paths_d5", "find_paths_reach_d5", "get_entity_batch" };

/* The two pair sets of find_paths: random pairs, and pairs joined by a walk. */
static const uint32_t *pair_set(const kg_workload *w, int reach, int dst)
{
	return reach ? (dst ? w->reach_dst : w->reach_src) : (dst ? w->pair_dst : w->pair_src);
}

/* ---- threads: read throughput and the mixed run ---- */

typedef struct thr {
	job *j;
	kg_store *s;       /* kgstore side, or NULL for the raw side */
	void *db, *rd;     /* raw side */
	pthread_barrier_t *bar;
	size_t from, count;
	int writer;
	const kg_entity *wents;
	double t0, t1;
	int rc;
} thr;

static void *thr_main(void *p)
{
	thr *t = p;
	const kg_workload *w = t->j->w;
	pthread_barrier_wait(t->bar);
	t->t0 = bench_now();
	for (size_t q = 0; q < t->count && t->rc >= 0; q++) {
		if (t->writer) {
			t->rc = t->s ? kg_add_entity(t->s, &t->wents[q]) : t->j->raw->add_one(t->db, &t->wents[q]);
		} else {
			const char *id = w->get_ids[(t->from + q) % KG_WORKLOAD_GETS];
			if (t->s) {
				kg_entity *e = NULL;
				t->rc = kg_get_entity(t->s, id, &e);
				kg_entity_free(e);
			} else {
				t->rc = t->j->raw->get(t->rd, id);
			}
		}
	}
	t->t1 = bench_now();
	return NULL;
}

/* Runs `readers` reader threads (total `reads` lookups) and optionally one
 * writer (`writes` adds) at once; gives reads/s and writes/s. */
static int run_threads(job *j, kg_store *s, void *db, int readers, size_t reads, size_t writes,
                       const kg_entity *wents, double *rps, double *wps)
{
	int nt = readers + (writes ? 1 : 0), rc = 0;
	thr t[8];
	pthread_t tid[8];
	pthread_barrier_t bar;
	memset(t, 0, sizeof(t));
	pthread_barrier_init(&bar, NULL, (unsigned)nt);
	for (int i = 0; i < nt; i++) {
		t[i] = (thr){ .j = j, .s = s, .db = db, .bar = &bar };
		if (i < readers) {
			t[i].count = reads / (size_t)readers;
			t[i].from = (size_t)i * (KG_WORKLOAD_GETS / (size_t)readers);
			if (!s && !(t[i].rd = j->raw->reader(db)))
				rc = raw_fail(j);
		} else {
			t[i].writer = 1;
			t[i].count = writes;
			t[i].wents = wents;
		}
	}
	if (rc < 0) {
		for (int i = 0; i < nt; i++)
			if (t[i].rd)
				j->raw->reader_close(t[i].rd);
		pthread_barrier_destroy(&bar);
		return rc;
	}
	for (int i = 0; i < nt; i++)
		pthread_create(&tid[i], NULL, thr_main, &t[i]);
	for (int i = 0; i < nt; i++)
		pthread_join(tid[i], NULL);
	double r0 = 1e300, r1 = 0;
	for (int i = 0; i < nt; i++) {
		if (t[i].rc < 0 && rc == 0) {
			rc = s ? kg_fail(j, s, t[i].writer ? "add_entity (mixed)" : "get_entity (threads)") : raw_fail(j);
		}
		if (!t[i].writer) {
			r0 = t[i].t0 < r0 ? t[i].t0 : r0;
			r1 = t[i].t1 > r1 ? t[i].t1 : r1;
		} else if (wps) {
			*wps = (double)writes / (t[i].t1 - t[i].t0);
		}
		if (t[i].rd)
			j->raw->reader_close(t[i].rd);
	}
	*rps = (double)(reads / (size_t)readers * (size_t)readers) / (r1 - r0);
	pthread_barrier_destroy(&bar);
	return rc;
}

/* Entities for the writer of the mixed run: the workload's, under new ids. */
static kg_entity *mixed_entities(const kg_workload *w, size_t count, char **idbuf)
{
	kg_entity *e = calloc(count, sizeof(*e));
	char *ids = malloc(count * 32);
	if (!e || !ids) {
		free(e);
		free(ids);
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		e[i] = w->ents[i % w->n];
		snprintf(ids + i * 32, 32, "mixed%zu", i); /* 5 + at most 20 digits */
		e[i].id = ids + i * 32;
	}
	*idbuf = ids;
	return e;
}

static int extras(job *j, kg_store *s, void *db)
{
	const kg_workload *w = j->w;
	int mem = !strcmp(j->backend, "memory"), sq = !strcmp(j->backend, "sqlite");
	size_t reads = mem ? 10000000 : sq ? 200000 : 20000; /* each side runs ~0.3 s or more */
	if (reads > 100 * w->n) /* small graphs (the smoke test): fewer reads */
		reads = 100 * w->n < 10000 ? 10000 : 100 * w->n;
	double kr, rr;
	char op[32];
	/* Read throughput, 1 / 2 / 4 threads on one shared handle (raw: a reader each). */
	for (int th = 1; th <= 4; th *= 2) {
		snprintf(op, sizeof(op), "read_threads_%d", th);
		progress(j, op);
		if (run_threads(j, s, NULL, th, reads, 0, NULL, &kr, NULL) < 0 ||
		    run_threads(j, NULL, db, th, reads, 0, NULL, &rr, NULL) < 0)
			return -1;
		send_result(j, op, "ops/s", kr, rr, 1, NULL);
	}
	/* Mixed: two readers while one writer adds entities one call at a time. */
	progress(j, "mixed read/write");
	size_t writes = mem ? 20000 : 1000, mreads = reads / 2;
	if (writes > 10 * w->n)
		writes = 10 * w->n < 500 ? 500 : 10 * w->n;
	char *ids1 = NULL, *ids2 = NULL;
	kg_entity *we = mixed_entities(w, writes, &ids1), *we2 = mixed_entities(w, writes, &ids2);
	double kw = 0, rw = 0;
	int rc = 0;
	if (!we || !we2) {
		snprintf(j->why, sizeof(j->why), "out of memory");
		rc = -1;
	}
	if (rc == 0)
		rc = run_threads(j, s, NULL, 2, mreads, writes, we, &kr, &kw);
	if (rc == 0) {
		if (j->raw->concurrent)
			j->raw->concurrent(db, 1);
		rc = run_threads(j, NULL, db, 2, mreads, writes, we2, &rr, &rw);
		if (j->raw->concurrent)
			j->raw->concurrent(db, 0);
	}
	free(we);
	free(we2);
	free(ids1);
	free(ids2);
	if (rc < 0)
		return rc;
	send_result(j, "mixed_reads", "ops/s", kr, rr, 1, "2 reader threads while 1 thread writes");
	send_result(j, "mixed_writes", "ops/s", kw, rw, 1, "1 writer thread, one add per call");

	/* Text search, each method (kgstore only: no raw engine scores these). */
	static const char *const METHOD[] = { "bm25", "jaccard", "cosine", "levenshtein" };
	size_t nq = mem ? 20 : 5;
	for (int m = 0; m < 4; m++) {
		double per[32];
		snprintf(op, sizeof(op), "text_search_%s", METHOD[m]);
		progress(j, op);
		for (size_t q = 0; q < nq; q++) {
			char query[96];
			const kg_entity *e = &w->ents[w->gets[q]];
			const char *tags = strstr(e->properties, "\"tags\":[\"");
			snprintf(query, sizeof(query), "%s %.4s", e->id, tags ? tags + 9 : "");
			kg_entity_list *l = NULL;
			double t0 = bench_now();
			int r = kg_text_search(s, query, NULL, 10, 0.0, (kg_text_method)m, &l);
			per[q] = bench_now() - t0;
			kg_entity_list_free(l);
			if (r < 0)
				return kg_fail(j, s, op);
		}
		send_result(j, op, "s", bench_median(per, nq), -1, 1, "k = 10, query: an id and a tag");
	}
	return 0;
}

/* ---- the main job ---- */

#define CHECK_IDS 200  /* neighbor answers compared between the two sides */
#define BATCH_CALLS 100 /* get_entity_batch: calls of 100 ids */

/* find_paths over one pair set on kgstore: the paths found per pair into
 * counts[], the median time into *median. */
static int kg_pairs(job *j, kg_store *s, int reach, size_t *counts, double *per, double *median)
{
	const kg_workload *w = j->w;
	const uint32_t *src = pair_set(w, reach, 0), *dst = pair_set(w, reach, 1);
	for (size_t i = 0; i < KG_WORKLOAD_PAIRS; i++) {
		kg_path_list *pl = NULL;
		double t0 = bench_now();
		int rc = kg_find_paths(s, w->ents[src[i]].id, w->ents[dst[i]].id, BENCH_PATH_DEPTH, BENCH_MAX_PATHS, &pl);
		per[i] = bench_now() - t0;
		counts[i] = pl ? pl->count : 0;
		kg_path_list_free(pl);
		if (rc < 0)
			return kg_fail(j, s, "find_paths");
	}
	*median = bench_median(per, KG_WORKLOAD_PAIRS);
	return 0;
}

/* The same on the raw engine; counts the pairs whose path count differs
 * from kgstore's (kcounts). */
static int raw_pairs(job *j, void *rd, int reach, const size_t *kcounts, double *per, double *median, size_t *diff)
{
	const kg_workload *w = j->w;
	const uint32_t *src = pair_set(w, reach, 0), *dst = pair_set(w, reach, 1);
	for (size_t i = 0; i < KG_WORKLOAD_PAIRS; i++) {
		double t0 = bench_now();
		int c = j->raw->paths(rd, w->ents[src[i]].id, w->ents[dst[i]].id);
		per[i] = bench_now() - t0;
		if (c < 0)
			return raw_fail(j);
		*diff += (size_t)c != kcounts[i];
	}
	*median = bench_median(per, KG_WORKLOAD_PAIRS);
	return 0;
}

/* One run's kgstore side: fills kt[], keeps the answers' sizes (paths per
 * pair of both sets, neighbors of the first ids) for the raw side to be
 * checked against, and leaves the loaded store in *sp. */
static int kg_phase(job *j, size_t run, double *kt, size_t *kpaths, size_t *knb, double *per, double *mem,
                    kg_store **sp)
{
	const kg_workload *w = j->w;
	size_t n1k = w->n < 1000 ? w->n : 1000, m = 3 * w->n;
	kg_store *s = NULL;
	double t0;
	int rc;
	/* add_entity x1000, one durable call each, on a fresh store. */
	progress(j, "add_entity x1000");
	if ((rc = kg_fresh(j, &s)) < 0)
		return rc;
	t0 = bench_now();
	for (size_t i = 0; i < n1k; i++)
		if (kg_add_entity(s, &w->ents[i]) < 0) {
			rc = kg_fail(j, s, "add_entity");
			kg_done(j, s);
			return rc;
		}
	kt[T_ADD1K] = bench_now() - t0;
	kg_done(j, s);

	/* Bulk: all N entities in one call, then the 3N relations. */
	progress(j, "bulk load");
	double heap0 = heap_bytes();
	if ((rc = kg_fresh(j, &s)) < 0)
		return rc;
	*sp = s;
	t0 = bench_now();
	if (kg_add_entities(s, w->ents, w->n, 0, NULL) < 0)
		return kg_fail(j, s, "add_entities");
	kt[T_BATCH] = bench_now() - t0;
	t0 = bench_now();
	if (kg_add_relations(s, w->rels, m, 0, NULL) < 0)
		return kg_fail(j, s, "add_relations");
	kt[T_RELS] = bench_now() - t0;
	kt[T_BULK] = (double)(w->n + m) / (kt[T_BATCH] + kt[T_RELS]);
	double heap1 = heap_bytes();
	if (run == 0)
		*mem = heap1 > heap0 ? heap1 - heap0 : 0;

	/* get_entity: mean over the lookups, store warm. */
	progress(j, "get_entity");
	size_t q = gets_for(j->backend, 0, w->n);
	t0 = bench_now();
	for (size_t i = 0; i < q; i++) {
		kg_entity *e = NULL;
		if (kg_get_entity(s, w->get_ids[i], &e) < 0)
			return kg_fail(j, s, "get_entity");
		kg_entity_free(e);
	}
	kt[T_GET] = (bench_now() - t0) / (double)q;

	/* neighbors (outgoing), mean per call. */
	progress(j, "neighbors");
	q = gets_for(j->backend, 1, w->n);
	t0 = bench_now();
	for (size_t i = 0; i < q; i++) {
		kg_entity_list *l = NULL;
		if (kg_neighbors(s, w->get_ids[i], NULL, KG_OUT, &l) < 0)
			return kg_fail(j, s, "neighbors");
		if (i < CHECK_IDS)
			knb[i] = l->count;
		kg_entity_list_free(l);
	}
	kt[T_NB] = (bench_now() - t0) / (double)q;

	/* find_paths depth 5, 10 paths: median over the pairs of each set. */
	progress(j, "find_paths");
	if ((rc = kg_pairs(j, s, 0, kpaths, per, &kt[T_PATHS])) < 0 ||
	    (rc = kg_pairs(j, s, 1, kpaths + KG_WORKLOAD_PAIRS, per, &kt[T_REACH])) < 0)
		return rc;

	/* PostgreSQL: 100 ids per call (kg_get_entities, the batched read). */
	if (!strcmp(j->backend, "postgres")) {
		progress(j, "get_entity_batch");
		t0 = bench_now();
		for (size_t c = 0; c < BATCH_CALLS; c++) {
			kg_entity_list *l = NULL;
			if (kg_get_entities(s, (const char *const *)(w->get_ids + c * 100), 100, &l) < 0)
				return kg_fail(j, s, "get_entities");
			kg_entity_list_free(l);
		}
		kt[T_GETB] = (bench_now() - t0) / (double)(BATCH_CALLS * 100);
	}
	return 0;
}

/* The same run's raw side, into rt[]; *dbp and *rdp stay open. Counts the
 * pairs (of each set) and ids where the raw engine's answer differs from
 * kgstore's. */
static int raw_phase(job *j, double *rt, const size_t *kpaths, const size_t *knb, double *per, void **dbp,
                     void **rdp, size_t path_diff[2], size_t *nb_diff)
{
	const kg_workload *w = j->w;
	const raw_engine *R = j->raw;
	size_t n1k = w->n < 1000 ? w->n : 1000, m = 3 * w->n;
	void *db;
	double t0;
	progress(j, "raw engine: add x1000");
	if (!(db = R->open(j->cfg)))
		return raw_fail(j);
	t0 = bench_now();
	for (size_t i = 0; i < n1k; i++)
		if (R->add_one(db, &w->ents[i]) < 0) {
			R->close(db);
			return raw_fail(j);
		}
	rt[T_ADD1K] = bench_now() - t0;
	R->close(db);

	progress(j, "raw engine: bulk load");
	if (!(db = R->open(j->cfg)))
		return raw_fail(j);
	*dbp = db;
	t0 = bench_now();
	if (R->load_entities(db, w->ents, w->n) < 0)
		return raw_fail(j);
	rt[T_BATCH] = bench_now() - t0;
	t0 = bench_now();
	if (R->load_relations(db, w->rels, m) < 0)
		return raw_fail(j);
	rt[T_RELS] = bench_now() - t0;
	rt[T_BULK] = (double)(w->n + m) / (rt[T_BATCH] + rt[T_RELS]);
	void *rd = R->reader(db);
	if (!(*rdp = rd))
		return raw_fail(j);

	progress(j, "raw engine: reads");
	size_t q = gets_for(j->backend, 0, w->n);
	t0 = bench_now();
	for (size_t i = 0; i < q; i++)
		if (R->get(rd, w->get_ids[i]) != 1) {
			if (bench_raw_err[0] == '\0')
				bench_raw_fail("raw %s: %s not found", j->backend, w->get_ids[i]);
			return raw_fail(j);
		}
	rt[T_GET] = (bench_now() - t0) / (double)q;

	q = gets_for(j->backend, 1, w->n);
	t0 = bench_now();
	for (size_t i = 0; i < q; i++) {
		int c = R->neighbors(rd, w->get_ids[i]);
		if (c < 0)
			return raw_fail(j);
		if (i < CHECK_IDS) /* both sides must find the same neighbors */
			*nb_diff += (size_t)c != knb[i];
	}
	rt[T_NB] = (bench_now() - t0) / (double)q;

	if (raw_pairs(j, rd, 0, kpaths, per, &rt[T_PATHS], &path_diff[0]) < 0 ||
	    raw_pairs(j, rd, 1, kpaths + KG_WORKLOAD_PAIRS, per, &rt[T_REACH], &path_diff[1]) < 0)
		return -1;

	if (R->get_batch && !strcmp(j->backend, "postgres")) {
		t0 = bench_now();
		for (size_t c = 0; c < BATCH_CALLS; c++)
			if (R->get_batch(rd, w->get_ids + c * 100, 100) < 0)
				return raw_fail(j);
		rt[T_GETB] = (bench_now() - t0) / (double)(BATCH_CALLS * 100);
	}
	return 0;
}

/*
 * The main job: per run, kgstore's side then the raw engine's, each on
 * fresh stores. The kgstore store is closed before the raw engine loads
 * (so the two never hold the graph at once), except in the run that goes
 * on to the extra sections, which need both.
 */
static int core_job(job *j)
{
	const kg_workload *w = j->w;
	const raw_engine *R = j->raw;
	size_t runs = runs_for(j->cfg, w->n);
	double *k = calloc(runs * N_T, sizeof(double)), *r = calloc(runs * N_T, sizeof(double));
	double *per = malloc(KG_WORKLOAD_PAIRS * sizeof(double));
	size_t *kpaths = malloc(2 * KG_WORKLOAD_PAIRS * sizeof(size_t)), *knb = calloc(CHECK_IDS, sizeof(size_t));
	double kg_mem = 0, raw_mem = 0;
	size_t path_diff[2] = { 0, 0 }, nb_diff = 0; /* pairs / ids where kgstore and the raw engine disagree */
	size_t unjoined = 0; /* reachable pairs kgstore found no path for */
	int is_pg = !strcmp(j->backend, "postgres"), rc = -1;
	kg_store *s = NULL;
	void *db = NULL, *rd = NULL;
	if (!k || !r || !per || !kpaths || !knb) {
		snprintf(j->why, sizeof(j->why), "out of memory");
		goto done;
	}
	for (size_t run = 0; run < runs; run++) {
		int extra = run == 0 && j->base && j->cfg->report;
		if ((rc = kg_phase(j, run, k + run * N_T, kpaths, knb, per, &kg_mem, &s)) < 0)
			goto done;
		rc = -1;
		for (size_t i = 0; i < KG_WORKLOAD_PAIRS; i++)
			unjoined += kpaths[KG_WORKLOAD_PAIRS + i] == 0;
		if (!extra) {
			kg_done(j, s);
			s = NULL;
		}
		double heap0 = heap_bytes();
		if (raw_phase(j, r + run * N_T, kpaths, knb, per, &db, &rd, path_diff, &nb_diff) < 0)
			goto done;
		if (run == 0) { /* the raw side's reader is included, as kgstore's are */
			double heap1 = heap_bytes();
			raw_mem = heap1 > heap0 ? heap1 - heap0 : 0;
		}
		if (extra && extras(j, s, db) < 0)
			goto done;
		R->reader_close(rd);
		rd = NULL;
		R->close(db);
		db = NULL;
		if (s)
			kg_done(j, s);
		s = NULL;
	}
	if (j->cfg->progress)
		fprintf(stderr, "\r\033[K");
	for (int op = 0; op < N_T; op++) {
		double kc[64], rc2[64];
		if (op == T_GETB && !is_pg)
			continue;
		for (size_t i = 0; i < runs; i++) {
			kc[i] = k[i * N_T + op];
			rc2[i] = r[i * N_T + op];
		}
		char note[80] = "";
		if (op == T_GETB)
			snprintf(note, sizeof(note), "100 ids a call: kg_get_entities vs pipelined SELECTs");
		else if ((op == T_PATHS || op == T_REACH) && path_diff[op == T_REACH])
			snprintf(note, sizeof(note), "WARNING: path counts differ on %zu of %zu pairs",
			         path_diff[op == T_REACH], runs * KG_WORKLOAD_PAIRS);
		else if (op == T_REACH && unjoined)
			snprintf(note, sizeof(note), "WARNING: no path found for %zu of %zu joined pairs", unjoined,
			         runs * KG_WORKLOAD_PAIRS);
		else if (op == T_NB && nb_diff)
			snprintf(note, sizeof(note), "WARNING: neighbor counts differ on %zu of %zu ids", nb_diff,
			         runs * (size_t)CHECK_IDS);
		send_result(j, T_NAMES[op], op == T_BULK ? "rows/s" : "s", bench_median(kc, runs), bench_median(rc2, runs),
		            runs, note);
	}
	send_result(j, "store_memory", "bytes", kg_mem, raw_mem, 1,
	            is_pg ? "client heap after the load (the server's not counted)" : "heap in use after the load");
	send_result(j, "peak_rss", "bytes", (double)bench_proc_status("VmHWM"), -1, 1,
	            "the whole benchmark process, workload arrays included");
	rc = 0;
done:
	if (rd)
		R->reader_close(rd);
	if (db)
		R->close(db);
	if (s)
		kg_done(j, s);
	free(k);
	free(r);
	free(per);
	free(kpaths);
	free(knb);
	return rc;
}

/* Vector search: N entities with D = 64 embeddings, k = 10, median per query. */
static int vector_job(job *j)
{
	const kg_workload *w = j->w;
	const raw_engine *R = j->raw;
	size_t nq = !strcmp(j->backend, "memory") ? KG_WORKLOAD_QUERIES : 10;
	double per[KG_WORKLOAD_QUERIES], rper[KG_WORKLOAD_QUERIES];
	kg_store *s = NULL;
	void *db = NULL, *rd = NULL;
	int rc;
	progress(j, "vector search");
	if ((rc = kg_fresh(j, &s)) < 0)
		return rc;
	rc = -1;
	if (kg_add_entities(s, w->ents, w->n, 0, NULL) < 0) {
		kg_fail(j, s, "add_entities");
		goto done;
	}
	if (!(db = R->open(j->cfg)) || R->load_entities(db, w->ents, w->n) < 0 || !(rd = R->reader(db))) {
		raw_fail(j);
		goto done;
	}
	for (size_t q = 0; q < nq; q++) {
		const float *qv = w->queries + q * w->dim;
		kg_entity_list *l = NULL;
		double t0 = bench_now();
		int vr = kg_vector_search(s, qv, w->dim, NULL, BENCH_VEC_K, -1.0, &l);
		per[q] = bench_now() - t0;
		kg_entity_list_free(l);
		if (vr < 0) {
			kg_fail(j, s, "vector_search");
			goto done;
		}
		t0 = bench_now();
		vr = R->vector(rd, qv, w->dim, BENCH_VEC_K);
		rper[q] = bench_now() - t0;
		if (vr < 0) {
			raw_fail(j);
			goto done;
		}
	}
	if (j->cfg->progress)
		fprintf(stderr, "\r\033[K");
	send_result(j, "vector_search_d64", "s", bench_median(per, nq), bench_median(rper, nq), 1,
	            "k = 10, brute-force cosine; raw: one contiguous scan");
	rc = 0;
done:
	if (rd)
		R->reader_close(rd);
	if (db)
		R->close(db);
	kg_done(j, s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The parent                                                           */
/* ------------------------------------------------------------------ */

typedef struct results {
	bench_result *v;
	size_t n, cap;
} results;

static int push(results *r, const bench_result *x)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		bench_result *p = realloc(r->v, cap * sizeof(*p));
		if (!p)
			return -1;
		r->v = p;
		r->cap = cap;
	}
	r->v[r->n++] = *x;
	return 0;
}

/* Runs one job in a child; its records go to `out` and are printed as they
 * come. Returns 0, or the exit code the command should end with. */
static int run_child(const char *backend, const bench_cfg *cfg, const kg_workload *w, int base, int vector,
                     results *out)
{
	const raw_engine *raw = raw_for(backend);
	int fds[2];
	if (!raw) {
		bench_result sk = { 0 };
		snprintf(sk.backend, sizeof(sk.backend), "%s", backend);
		snprintf(sk.op, sizeof(sk.op), "skipped");
		snprintf(sk.note, sizeof(sk.note), "backend not built in");
		sk.n = w->n;
		bench_emit_row(cfg, &sk);
		return 0;
	}
	fflush(stdout);
	fflush(stderr);
	if (pipe(fds) < 0) {
		fprintf(stderr, "kgstore bench: pipe: %s\n", strerror(errno));
		return 10;
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "kgstore bench: fork: %s\n", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return 10;
	}
	if (pid == 0) {
		close(fds[0]);
		if (cfg->pin_cpu >= 0 && !strcmp(backend, "postgres")) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(cfg->pin_cpu, &set);
			if (sched_setaffinity(0, sizeof(set), &set) < 0)
				fprintf(stderr, "kgstore bench: --pin: %s\n", strerror(errno));
		}
		job j = { .backend = backend, .cfg = cfg, .w = w, .raw = raw, .out_fd = fds[1], .base = base };
		int rc = vector ? vector_job(&j) : core_job(&j);
		if (cfg->progress)
			fprintf(stderr, "\r\033[K");
		if (rc == KG_EUNSUPPORTED) {
			bench_result sk = { 0 };
			snprintf(sk.backend, sizeof(sk.backend), "%s", backend);
			snprintf(sk.op, sizeof(sk.op), "skipped");
			snprintf(sk.note, sizeof(sk.note), "%.79s", j.why);
			sk.n = w->n;
			ssize_t wr = write(fds[1], &sk, sizeof(sk));
			(void)wr;
			rc = 0;
		} else if (rc < 0) {
			fprintf(stderr, "kgstore bench: %s (n = %zu) failed: %s\n", backend, w->n, j.why);
		}
		close(fds[1]);
		fflush(stdout);
		exit(rc < 0 ? 4 : 0); /* not _exit: the leak checker runs in the child too */
	}
	close(fds[1]);
	bench_result r;
	ssize_t got;
	int rc = 0;
	while ((got = read(fds[0], &r, sizeof(r))) == (ssize_t)sizeof(r)) {
		bench_emit_row(cfg, &r);
		if (strcmp(r.op, "skipped") && push(out, &r) < 0)
			rc = 10;
	}
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "kgstore bench: the %s run (n = %zu) died of signal %d\n", backend, w->n, WTERMSIG(status));
		return 4;
	}
	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status))
		rc = WEXITSTATUS(status);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: kgstore bench [--backend memory|sqlite|postgres|all] [--n N] [--runs R] [--seed S]\n"
	        "                     [--uri URI] [--json] [--report] [--scale N1,N2,...] [--long]\n"
	        "                     [--vector-n N] [--markdown[=FILE]] [--svg FILE] [--pin[=CPU]]\n\n"
	        "Generates the workload of bench/WORKLOAD.md (N entities, 3N relations) and times\n"
	        "each job on kgstore and on the raw engine doing the same job without kgstore (memory:\n"
	        "an open-addressing hash and CSR adjacency; sqlite: a bare prepared-statement loop and a\n"
	        "recursive CTE; postgres: a bare COPY, a prepared SELECT one at a time and pipelined, a\n"
	        "recursive CTE), in the same run, and prints the ratio kgstore / raw (for rows/s and\n"
	        "ops/s figures a ratio below 1 means kgstore is slower; for times, above 1).\n\n"
	        "Rows: add_entity_1k (1,000 single adds), batch_insert_10k (the N entities in one bulk\n"
	        "call), load_relations, bulk_load (rows/s), get_entity (mean of 100,000 lookups),\n"
	        "neighbors, find_paths_d5 (median of 100 random pairs, depth 5, 10 paths),\n"
	        "find_paths_reach_d5 (the same over 100 pairs joined by a walk of 2-5 relations),\n"
	        "get_entity_batch (postgres), store_memory, peak_rss. Medians over R runs (default 5;\n"
	        "3 above N = 20K, 1 above 200K).\n"
	        "  --report      the whole set: N = 10K, 100K, 1M (unless --scale), text search\n"
	        "                per method, reads on 1/2/4 threads, a mixed read/write run (at the\n"
	        "                first N) and vector search D = 64, k = 10 over --vector-n (100000)\n"
	        "  --long        adds N = 10M for memory and sqlite\n"
	        "  --json        one object per figure: backend, operation, n, median, unit,\n"
	        "                raw_median, ratio (null without a raw counterpart)\n"
	        "  --markdown    markdown tables (to FILE, or stdout at the end)\n"
	        "  --svg FILE    plot: time against N, log scales, one line per backend\n"
	        "  --pin[=CPU]   run this process and the PostgreSQL server's processes on one CPU\n"
	        "                (default 0); without it the scheduler places them (reported)\n"
	        "postgres needs --uri or KG_BENCH_PG_URI; a backend not available is reported as skipped.\n");
}

static int parse_scale(const char *s, bench_cfg *cfg)
{
	cfg->n_scale = 0;
	while (*s) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		if (end == s || v < 1 || v > 100000000 || cfg->n_scale == 7)
			return -1;
		if (*end == 'K' || *end == 'k')
			v *= 1000, end++;
		else if (*end == 'M' || *end == 'm')
			v *= 1000000, end++;
		cfg->scale[cfg->n_scale++] = (size_t)v;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	return cfg->n_scale ? 0 : -1;
}

int kg_bench_main(int argc, char **argv)
{
	bench_cfg cfg = { .n = 10000, .runs = 5, .seed = 42, .progress = isatty(2), .vector_n = 100000,
		          .pin_cpu = -1 };
	const char *backend = "all", *md = NULL, *svg = NULL;
	int md_stdout = 0, n_given = 0;
	static const struct option opts[] = {
		{ "backend", required_argument, 0, 'b' }, { "n", required_argument, 0, 'n' },
		{ "runs", required_argument, 0, 'r' },    { "seed", required_argument, 0, 's' },
		{ "uri", required_argument, 0, 'u' },     { "json", no_argument, 0, 'j' },
		{ "report", no_argument, 0, 'R' },        { "scale", required_argument, 0, 'S' },
		{ "long", no_argument, 0, 'L' },          { "vector-n", required_argument, 0, 'V' },
		{ "markdown", optional_argument, 0, 'M' }, { "svg", required_argument, 0, 'G' },
		{ "pin", optional_argument, 0, 'P' },     { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "b:n:r:s:u:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'b': backend = optarg; break;
		case 'n': cfg.n = strtoull(optarg, NULL, 10); n_given = 1; break;
		case 'r': cfg.runs = strtoull(optarg, NULL, 10); break;
		case 's': cfg.seed = strtoull(optarg, NULL, 10); break;
		case 'u': cfg.uri = optarg; break;
		case 'j': cfg.json = 1; break;
		case 'R': cfg.report = 1; break;
		case 'L': cfg.long_mode = 1; break;
		case 'V': cfg.vector_n = strtoull(optarg, NULL, 10); break;
		case 'G': svg = optarg; break;
		case 'M':
			if (optarg)
				md = optarg;
			else
				md_stdout = 1;
			break;
		case 'P': cfg.pin_cpu = optarg ? atoi(optarg) : 0; break;
		case 'S':
			if (parse_scale(optarg, &cfg) < 0) {
				fprintf(stderr, "kgstore bench: --scale wants up to 7 sizes 1..100000000, e.g. 10K,100K,1M\n");
				return 1;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kgstore bench: unexpected argument '%s' (see kgstore bench --help)\n", argv[optind]);
		return 1;
	}
	if (cfg.n < 1 || cfg.n > 100000000 || cfg.runs < 1 || cfg.runs > 64 || cfg.vector_n < 1 ||
	    cfg.vector_n > 100000000 || cfg.pin_cpu < -1 || cfg.pin_cpu >= CPU_SETSIZE) {
		fprintf(stderr, "kgstore bench: --n and --vector-n must be 1..100000000, --runs 1..64, --pin a CPU number\n");
		return 1;
	}
	if (!cfg.n_scale) {
		if (cfg.report && !n_given) {
			cfg.scale[0] = 10000, cfg.scale[1] = 100000, cfg.scale[2] = 1000000;
			cfg.n_scale = 3;
		} else {
			cfg.scale[0] = cfg.n;
			cfg.n_scale = 1;
		}
	}
	if (cfg.long_mode && cfg.n_scale < 8)
		cfg.scale[cfg.n_scale++] = 10000000;
	const char *all[] = { "memory", "sqlite", "postgres" };
	const char **list = all;
	size_t count = 3;
	if (strcmp(backend, "all") != 0) {
		size_t i = 0;
		while (i < 3 && strcmp(all[i], backend))
			i++;
		if (i == 3) {
			fprintf(stderr, "kgstore bench: unknown backend '%s' (memory, sqlite, postgres or all)\n", backend);
			return 1;
		}
		list = all + i;
		count = 1;
	}
	int want_pg = 0, server_pinned = 0;
	for (size_t i = 0; i < count; i++)
		want_pg |= !strcmp(list[i], "postgres");
	char placement[160] = "unpinned: the scheduler places client and server";
	if (cfg.pin_cpu >= 0) {
		/* Only the PostgreSQL runs are pinned (in their child): the thread
		 * scaling of the embedded backends needs every CPU. */
		cpu_set_t set;
		CPU_ZERO(&set);
		if (sched_getaffinity(0, sizeof(set), &set) < 0 || !CPU_ISSET(cfg.pin_cpu, &set)) {
			fprintf(stderr, "kgstore bench: --pin=%d: this process may not run on that CPU (see nproc)\n",
			        cfg.pin_cpu);
			return 1;
		}
#ifdef KG_HAVE_POSTGRES
		const char *u = cfg.uri ? cfg.uri : getenv("KG_BENCH_PG_URI");
		if (want_pg && u) {
			if (bench_pg_pin_server(u, cfg.pin_cpu) < 0) {
				fprintf(stderr, "kgstore bench: %s\n", bench_raw_err);
				return 1;
			}
			snprintf(placement, sizeof(placement),
			         "pinned: benchmark client and PostgreSQL server processes all on CPU %d", cfg.pin_cpu);
			server_pinned = 1;
		}
#endif
	}
	cfg.n = cfg.scale[0];
	cfg.quiet = md_stdout;
	if (!cfg.json && !md_stdout) {
		if (want_pg)
			printf("# postgres placement: %s\n", placement);
		printf("%-9s %-19s %9s %14s %14s %8s %10s\n", "backend", "operation", "n", "kgstore", "raw", "kg/raw",
		       "AIECS");
	}
	results res = { 0 };
	int rc = 0;
	for (size_t si = 0; si < cfg.n_scale && rc == 0; si++) {
		size_t n = cfg.scale[si];
		if (cfg.progress)
			fprintf(stderr, "generating the workload (N = %zu)...", n);
		kg_workload w;
		if (kg_workload_generate(n, 0, cfg.seed, &w) < 0) {
			fprintf(stderr, "kgstore bench: out of memory generating N = %zu\n", n);
			rc = 10;
			break;
		}
		if (cfg.progress)
			fprintf(stderr, "\r\033[K");
		for (size_t b = 0; b < count && rc == 0; b++) {
			/* 10M is the long mode's, for the embedded backends only. */
			if (cfg.long_mode && si == cfg.n_scale - 1 && !strcmp(list[b], "postgres"))
				continue;
			rc = run_child(list[b], &cfg, &w, si == 0, 0, &res);
		}
		kg_workload_free(&w);
	}
	if (cfg.report && rc == 0) {
		kg_workload w;
		if (kg_workload_generate(cfg.vector_n, 64, cfg.seed, &w) < 0) {
			fprintf(stderr, "kgstore bench: out of memory generating N = %zu, D = 64\n", cfg.vector_n);
			rc = 10;
		} else {
			for (size_t b = 0; b < count && rc == 0; b++)
				rc = run_child(list[b], &cfg, &w, 0, 1, &res);
			kg_workload_free(&w);
		}
	}
#ifdef KG_HAVE_POSTGRES
	if (server_pinned) /* leave the server as it was found */
		bench_pg_pin_server(cfg.uri ? cfg.uri : getenv("KG_BENCH_PG_URI"), -1);
#endif
	if (md_stdout && bench_write_markdown(NULL, &cfg, res.v, res.n, want_pg ? placement : NULL) < 0)
		rc = rc ? rc : 5;
	if (md && bench_write_markdown(md, &cfg, res.v, res.n, want_pg ? placement : NULL) < 0) {
		fprintf(stderr, "kgstore bench: cannot write %s: %s\n", md, strerror(errno));
		rc = rc ? rc : 5;
	}
	if (svg && bench_write_svg(svg, res.v, res.n) < 0) {
		fprintf(stderr, "kgstore bench: cannot write %s: %s\n", svg, strerror(errno));
		rc = rc ? rc : 5;
	}
	free(res.v);
	return rc;
}
