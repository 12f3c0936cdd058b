/*
 * report.c - the benchmark's output: a table row or a JSON object per
 * figure as it comes, then markdown tables (AIECS's four rows, every
 * figure, the targets checked) and an SVG plot drawn here, so no plotting
 * package is needed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

/* A figure in a readable unit, into buf. */
static const char *fmt_value(const char *unit, double v, char *buf, size_t cap)
{
	if (v < 0 || isnan(v)) {
		snprintf(buf, cap, "-");
	} else if (!strcmp(unit, "s")) {
		if (v < 1e-6)
			snprintf(buf, cap, "%.0f ns", v * 1e9);
		else if (v < 1e-3)
			snprintf(buf, cap, "%.3g us", v * 1e6);
		else if (v < 1)
			snprintf(buf, cap, "%.3g ms", v * 1e3);
		else
			snprintf(buf, cap, "%.3g s", v);
	} else if (!strcmp(unit, "bytes")) {
		snprintf(buf, cap, "%.1f MB", v / 1048576.0);
	} else {
		const char *what = !strcmp(unit, "rows/s") ? "rows/s" : "/s";
		if (v >= 1e6)
			snprintf(buf, cap, "%.3gM %s", v / 1e6, what);
		else if (v >= 1e3)
			snprintf(buf, cap, "%.3gK %s", v / 1e3, what);
		else
			snprintf(buf, cap, "%.3g %s", v, what);
	}
	return buf;
}

static double ratio_of(const bench_result *r)
{
	return r->raw_median > 0 && r->median >= 0 ? r->median / r->raw_median : -1;
}

/* JSON string body: the notes are ASCII text of ours, but escape anyway. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void bench_emit_row(const bench_cfg *cfg, const bench_result *r)
{
	if (!strcmp(r->op, "skipped")) {
		if (cfg->json) {
			printf("{\"backend\":\"%s\",\"n\":%llu,\"skipped\":true,\"reason\":", r->backend,
			       (unsigned long long)r->n);
			json_str(stdout, r->note);
			printf("}\n");
		} else if (!cfg->quiet) {
			printf("%-9s skipped: %s\n", r->backend, r->note);
		}
		fflush(stdout);
		return;
	}
	double ratio = ratio_of(r);
	if (cfg->json) {
		printf("{\"backend\":\"%s\",\"operation\":\"%s\",\"n\":%llu,\"median\":%.6g,\"unit\":\"%s\"", r->backend,
		       r->op, (unsigned long long)r->n, r->median, r->unit);
		if (r->raw_median >= 0)
			printf(",\"raw_median\":%.6g", r->raw_median);
		else
			printf(",\"raw_median\":null");
		if (ratio >= 0)
			printf(",\"ratio\":%.4g", ratio);
		else
			printf(",\"ratio\":null");
		printf(",\"runs\":%u", r->runs);
		if (!strcmp(r->unit, "s"))
			printf(",\"median_s\":%.6g", r->median); /* the field of earlier versions */
		if (r->seed > 0)
			printf(",\"seed_s\":%.6g", r->seed);
		if (r->note[0]) {
			printf(",\"note\":");
			json_str(stdout, r->note);
		}
		printf("}\n");
	} else if (!cfg->quiet) {
		char a[32], b[32], c[32], rt[16] = "-";
		if (ratio >= 0)
			snprintf(rt, sizeof(rt), "%.2fx", ratio);
		printf("%-9s %-19s %9llu %14s %14s %8s %10s%s%s\n", r->backend, r->op, (unsigned long long)r->n,
		       fmt_value(r->unit, r->median, a, sizeof(a)), fmt_value(r->unit, r->raw_median, b, sizeof(b)), rt,
		       r->seed > 0 ? fmt_value("s", r->seed, c, sizeof(c)) : "", r->note[0] ? "  " : "", r->note);
	}
	fflush(stdout);
}

static const bench_result *find(const bench_result *res, size_t n, const char *backend, const char *op, size_t size)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(res[i].backend, backend) && !strcmp(res[i].op, op) && (size == 0 || res[i].n == size))
			return &res[i];
	return NULL;
}

/* The performance targets, checked against this run. */
typedef enum { RATIO_LE, RATIO_GE, VALUE_LE, VALUE_GE, SCALE_GE } tkind;
typedef struct target {
	const char *backend, *op;
	size_t n; /* 0: the first N of the run */
	tkind kind;
	double limit;
	const char *text;
} target;

static const target TARGETS[] = {
	{ "memory", "get_entity", 10000, RATIO_LE, 2, "memory get_entity <= 2x the bare hash lookup, N = 10K" },
	{ "memory", "get_entity", 1000000, RATIO_LE, 2, "memory get_entity <= 2x the bare hash lookup, N = 1M" },
	{ "memory", "neighbors", 10000, RATIO_LE, 2, "memory neighbors <= 2x the bare CSR, N = 10K" },
	{ "memory", "neighbors", 1000000, RATIO_LE, 2, "memory neighbors <= 2x the bare CSR, N = 1M" },
	{ "memory", "find_paths_d5", 0, RATIO_LE, 5, "memory find_paths d5 <= 5x the bare CSR search" },
	{ "memory", "find_paths_d5", 10000, VALUE_LE, 20e-6, "memory find_paths d5 <= 20 us at N = 10K" },
	{ "memory", "find_paths_reach_d5", 10000, RATIO_LE, 2,
	  "memory find_paths d5, joined pairs <= 2x the bare CSR search, N = 10K" },
	{ "memory", "find_paths_reach_d5", 1000000, RATIO_LE, 2,
	  "memory find_paths d5, joined pairs <= 2x the bare CSR search, N = 1M" },
	{ "memory", "bulk_load", 10000, RATIO_GE, 0.8, "memory bulk load >= 0.8x the bare arrays' rows/s, N = 10K" },
	{ "memory", "bulk_load", 1000000, RATIO_GE, 0.8, "memory bulk load >= 0.8x the bare arrays' rows/s, N = 1M" },
	{ "memory", "store_memory", 1000000, RATIO_LE, 1.1, "memory heap <= 1.1x the bare layout's, N = 1M" },
	{ "memory", "store_memory", 10000000, VALUE_LE, 6e9, "memory: 10M entities + 30M relations in <= 6 GB" },
	{ "memory", "get_entity", 10000000, VALUE_LE, 1e-6, "memory get_entity <= 1 us at N = 10M" },
	{ "memory", "find_paths_reach_d5", 10000000, VALUE_LE, 50e-6,
	  "memory find_paths d5, joined pairs <= 50 us at N = 10M" },
	{ "memory", "vector_search_d64", 100000, VALUE_LE, 5e-3, "memory vector search, 100K x D 64, k 10 <= 5 ms" },
	{ "memory", "read_threads_2", 0, SCALE_GE, 1.7, "memory: 2 threads read >= 1.7x 1 thread" },
	{ "sqlite", "bulk_load", 0, RATIO_GE, 0.7, "sqlite bulk load >= 0.7x the bare prepared loop" },
	{ "sqlite", "get_entity", 0, RATIO_LE, 2, "sqlite get_entity <= 2x the bare SELECT" },
	{ "sqlite", "read_threads_2", 0, SCALE_GE, 1.7, "sqlite: 2 threads read >= 1.7x 1 thread" },
	{ "sqlite", "add_entity_1k", 10000, VALUE_LE, 30e-3, "sqlite add_entity x1K <= 30 ms" },
	{ "sqlite", "get_entity", 10000, VALUE_LE, 3e-6, "sqlite get_entity <= 3 us at N = 10K" },
	{ "sqlite", "find_paths_d5", 10000, VALUE_LE, 0.5e-3, "sqlite find_paths d5 <= 0.5 ms" },
	{ "sqlite", "batch_insert_10k", 10000, VALUE_LE, 30e-3, "sqlite batch insert 10K <= 30 ms" },
	{ "sqlite", "bulk_load", 1000000, VALUE_GE, 300e3, "sqlite bulk load at 1M >= 300K rows/s" },
	{ "sqlite", "get_entity", 1000000, VALUE_LE, 5e-6, "sqlite get_entity at 1M <= 5 us" },
	{ "postgres", "bulk_load", 0, RATIO_GE, 0.8, "postgres bulk load >= 0.8x the bare COPY" },
	{ "postgres", "get_entity", 0, RATIO_LE, 1.5, "postgres get_entity <= 1.5x the bare prepared SELECT" },
	{ "postgres", "get_entity_batch", 0, RATIO_LE, 1.5, "postgres batched get <= 1.5x the pipelined SELECT" },
	{ "postgres", "add_entity_1k", 10000, VALUE_LE, 100e-3, "postgres add_entity x1K <= 100 ms" },
	{ "postgres", "find_paths_d5", 10000, VALUE_LE, 1e-3, "postgres find_paths d5 <= 1 ms" },
	{ "postgres", "batch_insert_10k", 10000, RATIO_LE, 1.3, "postgres batch insert 10K <= 1.3x the bare COPY" },
	{ "postgres", "bulk_load", 1000000, VALUE_GE, 100e3, "postgres full load at 1M >= 100K rows/s" },
};

static void md_targets(FILE *f, const bench_cfg *cfg, const bench_result *res, size_t n)
{
	fprintf(f, "| target | measured | met |\n| --- | --- | --- |\n");
	for (size_t i = 0; i < sizeof(TARGETS) / sizeof(TARGETS[0]); i++) {
		const target *t = &TARGETS[i];
		size_t size = t->n ? t->n : cfg->scale[0];
		const bench_result *r = find(res, n, t->backend, t->op, size);
		char meas[96], a[32];
		int met = 0;
		if (!r) {
			fprintf(f, "| %s | not measured in this run (N = %zu) | - |\n", t->text, size);
			continue;
		}
		double ratio = ratio_of(r);
		switch (t->kind) {
		case RATIO_LE:
		case RATIO_GE:
			met = ratio >= 0 && (t->kind == RATIO_LE ? ratio <= t->limit : ratio >= t->limit);
			snprintf(meas, sizeof(meas), "%.2fx (%s, N = %zu)", ratio, fmt_value(r->unit, r->median, a, sizeof(a)),
			         size);
			break;
		case VALUE_LE:
		case VALUE_GE:
			met = t->kind == VALUE_LE ? r->median <= t->limit : r->median >= t->limit;
			snprintf(meas, sizeof(meas), "%s (N = %zu)", fmt_value(r->unit, r->median, a, sizeof(a)), size);
			break;
		case SCALE_GE: {
			const bench_result *one = find(res, n, t->backend, "read_threads_1", size);
			double sc = one && one->median > 0 ? r->median / one->median : -1;
			met = sc >= t->limit;
			snprintf(meas, sizeof(meas), "%.2fx (N = %zu)", sc, size);
			break;
		}
		}
		fprintf(f, "| %s | %s | %s |\n", t->text, meas, met ? "yes" : "**no**");
	}
}

/* Table order: backend, then N, then the operations in the order of the help. */
static int rank(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(list[i], s, strlen(list[i])))
			return (int)i;
	return (int)n;
}

static int result_cmp(const void *pa, const void *pb)
{
	static const char *const B[] = { "memory", "sqlite", "postgres" };
	static const char *const O[] = { "add_entity_1k", "batch_insert_10k", "load_relations", "bulk_load",
		                         "get_entity_batch", "get_entity", "neighbors", "find_paths_d5",
		                         "find_paths_reach_d5", "vector_search", "text_search_bm25", "text_search_jaccard",
		                         "text_search_cosine", "text_search_levenshtein", "read_threads_1",
		                         "read_threads_2", "read_threads_4", "mixed_reads", "mixed_writes",
		                         "store_memory", "peak_rss" };
	const bench_result *a = pa, *b = pb;
	int d = rank(B, 3, a->backend) - rank(B, 3, b->backend);
	if (d)
		return d;
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	return rank(O, sizeof(O) / sizeof(O[0]), a->op) - rank(O, sizeof(O) / sizeof(O[0]), b->op);
}

int bench_write_markdown(const char *path, const bench_cfg *cfg, const bench_result *unsorted, size_t n,
                         const char *placement)
{
	char a[32], b[32], c[32];
	bench_result *res = malloc((n ? n : 1) * sizeof(*res));
	if (!res)
		return -1;
	if (n)
		memcpy(res, unsorted, n * sizeof(*res));
	qsort(res, n, sizeof(*res), result_cmp);
	FILE *f = path ? fopen(path, "w") : stdout;
	if (!f) {
		free(res);
		return -1;
	}
	fprintf(f, "Sizes:");
	for (size_t i = 0; i < cfg->n_scale; i++)
		fprintf(f, " %zu", cfg->scale[i]);
	fprintf(f, " entities (3N relations each); runs per figure (medians): %zu at N <= 20K, %zu up to 200K, 1 above; "
	           "random seed %llu.",
	        cfg->runs, cfg->runs < 3 ? cfg->runs : 3, (unsigned long long)cfg->seed);
	if (placement)
		fprintf(f, " PostgreSQL placement: %s.", placement);
	fprintf(f, "\n\n### Against AIECS (N = 10,000)\n\n");
	fprintf(f, "| backend | row | AIECS (Python) | kgstore | raw engine | kgstore / raw | AIECS / kgstore |\n"
	           "| --- | --- | --- | --- | --- | --- | --- |\n");
	static const char *const ROWS[] = { "add_entity_1k", "get_entity", "find_paths_d5", "batch_insert_10k" };
	static const char *const BACKENDS[] = { "memory", "sqlite", "postgres" };
	for (int bi = 0; bi < 3; bi++)
		for (int ri = 0; ri < 4; ri++) {
			const bench_result *r = find(res, n, BACKENDS[bi], ROWS[ri], 10000);
			if (!r)
				continue;
			fprintf(f, "| %s | %s | %s | %s | %s | %.2fx | %.0fx |\n", r->backend, r->op,
			        fmt_value("s", r->seed, a, sizeof(a)), fmt_value(r->unit, r->median, b, sizeof(b)),
			        fmt_value(r->unit, r->raw_median, c, sizeof(c)), ratio_of(r),
			        r->median > 0 ? r->seed / r->median : 0);
		}
	fprintf(f, "\n### Every figure\n\n"
	           "Ratio = kgstore / raw engine: for times above 1 means kgstore is slower; for rows/s and "
	           "ops/s below 1 means kgstore is slower.\n\n"
	           "| backend | operation | N | kgstore | raw engine | ratio | runs | note |\n"
	           "| --- | --- | --- | --- | --- | --- | --- | --- |\n");
	for (size_t i = 0; i < n; i++) {
		const bench_result *r = &res[i];
		double ratio = ratio_of(r);
		char rt[16] = "-";
		if (ratio >= 0)
			snprintf(rt, sizeof(rt), "%.2fx", ratio);
		fprintf(f, "| %s | %s | %llu | %s | %s | %s | %u | %s |\n", r->backend, r->op, (unsigned long long)r->n,
		        fmt_value(r->unit, r->median, a, sizeof(a)), fmt_value(r->unit, r->raw_median, b, sizeof(b)), rt,
		        r->runs, r->note);
	}
	fprintf(f, "\n### Targets\n\n");
	md_targets(f, cfg, res, n);
	int bad = ferror(f);
	if (path)
		bad |= fclose(f) != 0;
	else
		fflush(f);
	free(res);
	return bad ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* SVG: time against N, log scales, one line per backend                */
/* ------------------------------------------------------------------ */

#define PLOT_PANELS 5
static const char *const PLOT_OPS[PLOT_PANELS] = { "bulk_load", "get_entity", "neighbors", "find_paths_d5",
	                                           "find_paths_reach_d5" };
static const char *const PLOT_TITLES[PLOT_PANELS] = { "bulk load (N entities + 3N relations)", "get_entity (per call)",
	                                              "neighbors (per call)", "find_paths depth 5, random pairs (median)",
	                                              "find_paths depth 5, joined pairs (median)" };
static const char *const PLOT_BACKENDS[] = { "memory", "sqlite", "postgres" };
static const char *const PLOT_COLORS[] = { "#1b9e77", "#d95f02", "#7570b3" };

/* Seconds of a figure: bulk_load is rows/s, turned into the load's time. */
static double secs(const bench_result *r, int raw)
{
	double v = raw ? r->raw_median : r->median;
	if (v <= 0)
		return -1;
	return !strcmp(r->unit, "rows/s") ? (double)(4 * r->n) / v : v;
}

static void tick_label(double v, char *buf, size_t cap)
{
	if (v < 1e-6)
		snprintf(buf, cap, "%g ns", v * 1e9);
	else if (v < 1e-3)
		snprintf(buf, cap, "%g us", v * 1e6);
	else if (v < 1)
		snprintf(buf, cap, "%g ms", v * 1e3);
	else
		snprintf(buf, cap, "%g s", v);
}

int bench_write_svg(const char *path, const bench_result *res, size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	const int pw = 460, ph = 300, ml = 70, mr = 20, mt = 40, mb = 45;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
	           "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
	        2 * pw, (PLOT_PANELS + 1) / 2 * ph + 40);
	fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"14\">kgstore: time against N (log scales); solid = kgstore, "
	           "dashed = raw engine</text>\n",
	        10);
	for (int p = 0; p < PLOT_PANELS; p++) {
		int ox = (p % 2) * pw, oy = 24 + (p / 2) * ph;
		double xmin = 1e300, xmax = 0, ymin = 1e300, ymax = 0;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(res[i].op, PLOT_OPS[p]))
				continue;
			for (int raw = 0; raw < 2; raw++) {
				double y = secs(&res[i], raw);
				if (y <= 0)
					continue;
				ymin = fmin(ymin, y);
				ymax = fmax(ymax, y);
			}
			xmin = fmin(xmin, (double)res[i].n);
			xmax = fmax(xmax, (double)res[i].n);
		}
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n", ox + ml, oy + mt - 10, PLOT_TITLES[p]);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", ox + ml,
		        oy + mt, pw - ml - mr, ph - mt - mb);
		if (xmax <= 0 || ymax <= 0)
			continue;
		/* Whole decades around the data. */
		double lx0 = floor(log10(xmin)), lx1 = ceil(log10(xmax)), ly0 = floor(log10(ymin)), ly1 = ceil(log10(ymax));
		if (lx1 <= lx0)
			lx1 = lx0 + 1;
		if (ly1 <= ly0)
			ly1 = ly0 + 1;
		double W = pw - ml - mr, H = ph - mt - mb;
#define PX(x) (ox + ml + (log10(x) - lx0) / (lx1 - lx0) * W)
#define PY(y) (oy + mt + H - (log10(y) - ly0) / (ly1 - ly0) * H)
		for (double d = lx0; d <= lx1; d++) {
			double x = PX(pow(10, d));
			fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", x, oy + mt, x,
			        oy + mt + H);
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x, oy + mt + H + 14,
			        pow(10, d));
		}
		for (double d = ly0; d <= ly1; d++) {
			char lab[32];
			double y = PY(pow(10, d));
			tick_label(pow(10, d), lab, sizeof(lab));
			fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", ox + ml, y,
			        ox + ml + W, y);
			fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ox + ml - 4, y + 4, lab);
		}
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">N (entities)</text>\n", ox + ml + W / 2,
		        oy + ph - 12);
		for (int b = 0; b < 3; b++)
			for (int raw = 0; raw < 2; raw++) {
				/* The figures of this backend in the order of N. */
				double xs[16], ys[16];
				int k = 0;
				for (size_t i = 0; i < n && k < 16; i++) {
					if (strcmp(res[i].op, PLOT_OPS[p]) || strcmp(res[i].backend, PLOT_BACKENDS[b]))
						continue;
					double y = secs(&res[i], raw);
					if (y <= 0)
						continue;
					int at = k++;
					while (at > 0 && xs[at - 1] > (double)res[i].n) {
						xs[at] = xs[at - 1];
						ys[at] = ys[at - 1];
						at--;
					}
					xs[at] = (double)res[i].n;
					ys[at] = y;
				}
				if (!k)
					continue;
				fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", PLOT_COLORS[b],
				        raw ? " stroke-dasharray=\"5,4\"" : "");
				for (int i = 0; i < k; i++)
					fprintf(f, "%.1f,%.1f ", PX(xs[i]), PY(ys[i]));
				fprintf(f, "\"/>\n");
				for (int i = 0; i < k; i++)
					fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" stroke=\"%s\"/>\n", PX(xs[i]),
					        PY(ys[i]), raw ? "white" : PLOT_COLORS[b], PLOT_COLORS[b]);
			}
#undef PX
#undef PY
		/* Legend. */
		for (int b = 0; b < 3; b++)
			fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", ox + ml + 8, oy + mt + 14 + 13 * b,
			        PLOT_COLORS[b], PLOT_BACKENDS[b]);
	}
	fprintf(f, "</svg>\n");
	int bad = ferror(f);
	bad |= fclose(f) != 0;
	return bad ? -1 : 0;
}
