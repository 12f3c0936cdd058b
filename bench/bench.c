/*
 * bench.c - `kgstore bench`: the seed's four rows (WORKLOAD.md) for each
 * backend built in, as a table or as JSON lines.
 *
 * Each run uses fresh stores: store A takes the first 1,000 entities one
 * call at a time (add_entity_1k); store B takes all N through one bulk call
 * (batch_insert_10k), then the 3N relations (load_relations), then answers
 * the get_entity lookups and the find_paths pairs. Medians over --runs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "kgstore.h"
#include "workload.h"

typedef struct seed_row {
	const char *backend, *op;
	double seconds; /* the seed's own figure (AIECS, Python) */
} seed_row;

static const seed_row SEED[] = {
	{ "memory", "add_entity_1k", 10e-3 },   { "memory", "get_entity", 0.01e-3 },
	{ "memory", "find_paths_d5", 10e-3 },   { "memory", "batch_insert_10k", 150e-3 },
	{ "sqlite", "add_entity_1k", 500e-3 },  { "sqlite", "get_entity", 3e-3 },
	{ "sqlite", "find_paths_d5", 200e-3 },  { "sqlite", "batch_insert_10k", 5.0 },
	{ "postgres", "add_entity_1k", 300e-3 }, { "postgres", "get_entity", 2e-3 },
	{ "postgres", "find_paths_d5", 50e-3 }, { "postgres", "batch_insert_10k", 300e-3 },
};

static double seed_figure(const char *backend, const char *op)
{
	for (size_t i = 0; i < sizeof(SEED) / sizeof(SEED[0]); i++)
		if (!strcmp(SEED[i].backend, backend) && !strcmp(SEED[i].op, op))
			return SEED[i].seconds;
	return 0;
}

static double now_s(void)
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

static double median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A line of /proc/self/status in bytes (VmHWM, VmRSS), 0 if unknown. */
static size_t proc_status_bytes(const char *key)
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

enum { OP_ADD1K, OP_GET, OP_PATHS, OP_BATCH, OP_RELS, N_OPS };
static const char *const OP_NAMES[N_OPS] = { "add_entity_1k", "get_entity", "find_paths_d5", "batch_insert_10k",
                                             "load_relations" };

typedef struct bench_cfg {
	size_t n, runs;
	uint64_t seed;
	const char *uri;
	int json, progress;
} bench_cfg;

/* A fresh store for the backend: a new temp file for SQLite, a cleared
 * database for PostgreSQL. *path gets the temp file to delete. */
static int open_fresh(const char *backend, const bench_cfg *cfg, kg_store **s, char *path, size_t pathcap,
                      char *why, size_t whycap)
{
	char uri[4200];
	path[0] = '\0';
	if (!strcmp(backend, "memory")) {
		snprintf(uri, sizeof(uri), "memory:");
	} else if (!strcmp(backend, "sqlite")) {
		const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(path, pathcap, "%s/kgbench-XXXXXX", dir);
		int fd = mkstemp(path);
		if (fd < 0) {
			snprintf(why, whycap, "cannot create a temp file in %s", dir);
			return KG_EIO;
		}
		close(fd);
		unlink(path); /* SQLite creates it with its own schema */
		snprintf(uri, sizeof(uri), "sqlite:%s", path);
	} else {
		const char *u = cfg->uri ? cfg->uri : getenv("KG_BENCH_PG_URI");
		if (!u) {
			snprintf(why, whycap, "no server given: pass --uri postgresql://... or set KG_BENCH_PG_URI");
			return KG_EUNSUPPORTED;
		}
		snprintf(uri, sizeof(uri), "%s", u);
	}
	int rc = kg_open(uri, s);
	if (rc < 0) {
		snprintf(why, whycap, "%s", kg_errmsg(*s));
		kg_close(*s);
		*s = NULL;
		return rc;
	}
	if (!strcmp(backend, "postgres") && (rc = kg_clear(*s)) < 0) {
		snprintf(why, whycap, "%s", kg_errmsg(*s));
		kg_close(*s);
		*s = NULL;
	}
	return rc;
}

static void close_fresh(kg_store *s, const char *path)
{
	kg_close(s);
	if (path[0]) {
		char f[4200];
		const char *sfx[] = { "", "-wal", "-shm", "-journal" };
		for (int i = 0; i < 4; i++) {
			snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
			unlink(f);
		}
	}
}

static void progress(const bench_cfg *cfg, const char *backend, size_t run, const char *what)
{
	if (cfg->progress)
		fprintf(stderr, "\r\033[K%s run %zu/%zu: %s", backend, run + 1, cfg->runs, what);
}

/* One run: fills t[op] with seconds (per call for get/paths). */
static int bench_run(const char *backend, const bench_cfg *cfg, const kg_workload *w, size_t run, double *t,
                     char *why, size_t whycap)
{
	kg_store *s = NULL;
	char path[4096];
	int rc;
	size_t n1k = w->n < 1000 ? w->n : 1000;

	progress(cfg, backend, run, "add_entity x1000");
	if ((rc = open_fresh(backend, cfg, &s, path, sizeof(path), why, whycap)) < 0)
		return rc;
	double t0 = now_s();
	for (size_t i = 0; i < n1k && rc == 0; i++)
		rc = kg_add_entity(s, &w->ents[i]);
	t[OP_ADD1K] = now_s() - t0;
	if (rc < 0)
		goto fail;
	close_fresh(s, path);

	progress(cfg, backend, run, "batch insert");
	if ((rc = open_fresh(backend, cfg, &s, path, sizeof(path), why, whycap)) < 0)
		return rc;
	t0 = now_s();
	rc = kg_add_entities(s, w->ents, w->n, 0, NULL);
	t[OP_BATCH] = now_s() - t0;
	if (rc < 0)
		goto fail;
	progress(cfg, backend, run, "relations");
	t0 = now_s();
	rc = kg_add_relations(s, w->rels, 3 * w->n, 0, NULL);
	t[OP_RELS] = now_s() - t0;
	if (rc < 0)
		goto fail;

	progress(cfg, backend, run, "get_entity");
	t0 = now_s();
	for (size_t q = 0; q < KG_WORKLOAD_GETS && rc == 0; q++) {
		kg_entity *e = NULL;
		rc = kg_get_entity(s, w->get_ids[q], &e);
		kg_entity_free(e);
	}
	t[OP_GET] = (now_s() - t0) / KG_WORKLOAD_GETS;
	if (rc < 0)
		goto fail;

	progress(cfg, backend, run, "find_paths");
	double per[KG_WORKLOAD_PAIRS];
	for (size_t q = 0; q < KG_WORKLOAD_PAIRS && rc == 0; q++) {
		kg_path_list *pl = NULL;
		t0 = now_s();
		rc = kg_find_paths(s, w->ents[w->pair_src[q]].id, w->ents[w->pair_dst[q]].id, 5, 10, &pl);
		per[q] = now_s() - t0;
		kg_path_list_free(pl);
	}
	if (rc < 0)
		goto fail;
	t[OP_PATHS] = median(per, KG_WORKLOAD_PAIRS);
	close_fresh(s, path);
	return 0;
fail:
	snprintf(why, whycap, "%s", kg_errmsg(s));
	close_fresh(s, path);
	return rc;
}

static void print_row(const bench_cfg *cfg, const char *backend, const char *op, double secs, double per_s)
{
	double seed = seed_figure(backend, op);
	if (cfg->json) {
		printf("{\"backend\":\"%s\",\"operation\":\"%s\",\"n\":%zu,\"median_s\":%.6g,\"runs\":%zu", backend, op,
		       cfg->n, secs, cfg->runs);
		if (seed > 0)
			printf(",\"seed_s\":%.6g", seed);
		if (per_s > 0)
			printf(",\"rows_per_s\":%.0f", per_s);
		printf("}\n");
		return;
	}
	char ratio[32] = "";
	if (seed > 0 && secs > 0)
		snprintf(ratio, sizeof(ratio), "%.0fx", seed / secs);
	char seedtxt[32] = "";
	if (seed > 0)
		snprintf(seedtxt, sizeof(seedtxt), "%.3g ms", seed * 1e3);
	char extra[48] = "";
	if (per_s > 0)
		snprintf(extra, sizeof(extra), "  (%.0f rows/s)", per_s);
	printf("%-9s %-18s %8zu %12.3f us %12s %10s%s\n", backend, op, cfg->n, secs * 1e6, seedtxt, ratio, extra);
}

static int bench_backend(const char *backend, const bench_cfg *cfg, const kg_workload *w)
{
	double *t = calloc(cfg->runs * N_OPS, sizeof(double)), col[64];
	char why[1024] = "";
	if (!t)
		return 10;
	size_t rss_before = proc_status_bytes("VmRSS");
	for (size_t r = 0; r < cfg->runs; r++) {
		int rc = bench_run(backend, cfg, w, r, t + r * N_OPS, why, sizeof(why));
		if (cfg->progress)
			fprintf(stderr, "\r\033[K");
		if (rc == KG_EUNSUPPORTED) {
			if (cfg->json)
				printf("{\"backend\":\"%s\",\"skipped\":true,\"reason\":\"%s\"}\n", backend, "not available");
			else
				printf("%-9s skipped: %s\n", backend, why);
			free(t);
			return 0;
		}
		if (rc < 0) {
			fprintf(stderr, "kgstore bench: %s failed: %s\n", backend, why);
			free(t);
			return rc == KG_EINVAL ? 3 : rc == KG_ENOTFOUND ? 2 : 4;
		}
	}
	for (int op = 0; op < N_OPS; op++) {
		for (size_t r = 0; r < cfg->runs; r++)
			col[r] = t[r * N_OPS + op];
		double m = median(col, cfg->runs);
		print_row(cfg, backend, OP_NAMES[op], m, op == OP_RELS && m > 0 ? 3.0 * (double)cfg->n / m : 0);
	}
	size_t hwm = proc_status_bytes("VmHWM");
	if (cfg->json)
		printf("{\"backend\":\"%s\",\"operation\":\"peak_rss\",\"n\":%zu,\"median_s\":null,\"bytes\":%zu,"
		       "\"rss_before_bytes\":%zu}\n",
		       backend, cfg->n, hwm, rss_before);
	else
		printf("%-9s %-18s %8zu %12.1f MB  (process peak, workload arrays included; %.1f MB before)\n", backend,
		       "peak_rss", cfg->n, (double)hwm / 1048576.0, (double)rss_before / 1048576.0);
	fflush(stdout);
	free(t);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kgstore bench [--backend memory|sqlite|postgres|all] [--n N] [--runs R] [--seed S]\n"
	           "                     [--uri URI] [--json]\n\n"
	           "Generates the workload of shared/bench/WORKLOAD.md (N entities, 3N relations) and times\n"
	           "the seed's rows on each backend: add_entity_1k (1,000 single adds), get_entity (mean of\n"
	           "100,000 lookups), find_paths_d5 (median of 100 pairs, depth 5, 10 paths),\n"
	           "batch_insert_10k (the N entities in one bulk call), plus load_relations and peak_rss.\n"
	           "Figures are medians over R runs (default 5). With --json: one object per line,\n"
	           "{\"backend\":...,\"operation\":...,\"n\":...,\"median_s\":...}.\n"
	           "postgres needs --uri or KG_BENCH_PG_URI; a backend not built in is reported as skipped.\n");
}

int kg_bench_main(int argc, char **argv)
{
	bench_cfg cfg = { .n = 10000, .runs = 5, .seed = 42, .progress = isatty(2) };
	const char *backend = "all";
	static const struct option opts[] = {
		{ "backend", required_argument, 0, 'b' }, { "n", required_argument, 0, 'n' },
		{ "runs", required_argument, 0, 'r' },    { "seed", required_argument, 0, 's' },
		{ "uri", required_argument, 0, 'u' },     { "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },          { 0, 0, 0, 0 },
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "b:n:r:s:u:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'b': backend = optarg; break;
		case 'n': cfg.n = strtoull(optarg, NULL, 10); break;
		case 'r': cfg.runs = strtoull(optarg, NULL, 10); break;
		case 's': cfg.seed = strtoull(optarg, NULL, 10); break;
		case 'u': cfg.uri = optarg; break;
		case 'j': cfg.json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (cfg.n < 1 || cfg.n > 100000000 || cfg.runs < 1 || cfg.runs > 64) {
		fprintf(stderr, "kgstore bench: --n must be 1..100000000 and --runs 1..64\n");
		return 1;
	}
	const char *all[] = { "memory", "sqlite", "postgres" };
	const char *one[1] = { backend };
	const char **list = all;
	size_t count = 3;
	if (strcmp(backend, "all") != 0) {
		if (strcmp(backend, "memory") && strcmp(backend, "sqlite") && strcmp(backend, "postgres")) {
			fprintf(stderr, "kgstore bench: unknown backend '%s' (memory, sqlite, postgres or all)\n", backend);
			return 1;
		}
		list = one;
		count = 1;
	}
	if (cfg.progress)
		fprintf(stderr, "generating the workload (N = %zu)...", cfg.n);
	kg_workload w;
	if (kg_workload_generate(cfg.n, 0, cfg.seed, &w) < 0) {
		fprintf(stderr, "kgstore bench: out of memory generating N = %zu\n", cfg.n);
		return 10;
	}
	if (cfg.progress)
		fprintf(stderr, "\r\033[K");
	if (!cfg.json)
		printf("%-9s %-18s %8s %15s %12s %10s\n", "backend", "operation", "n", "median", "seed", "seed/kg");
	int rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = bench_backend(list[i], &cfg, &w);
	kg_workload_free(&w);
	return rc;
}
