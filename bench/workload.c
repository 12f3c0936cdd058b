/*
 * workload.c - generator of the benchmark graph (bench/WORKLOAD.md).
 * Strings go into one arena, written with offsets first and turned into
 * pointers at the end, so generating a million entities is one allocation
 * that grows, not millions.
 */
#include "workload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t kg_splitmix64(uint64_t *state)
{
	*state += 0x9E3779B97F4A7C15ull;
	uint64_t z = *state;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

double kg_u01(uint64_t *state) { return (double)(kg_splitmix64(state) >> 11) * 0x1.0p-53; }

static const char *const ENTITY_TYPES[] = { "Person", "Company", "Product", "Place",
                                            "Event",  "Concept", "Document", "Topic" };
static const char *const RELATION_TYPES[] = { "KNOWS", "WORKS_FOR", "LOCATED_IN",
                                              "PART_OF", "MENTIONS", "RELATED_TO" };

typedef struct arena {
	char *buf;
	size_t len, cap;
} arena;

/* Appends formatted text plus a NUL; returns its offset, or SIZE_MAX on ENOMEM. */
static size_t arena_printf(arena *a, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(a->buf ? a->buf + a->len : NULL, a->buf ? a->cap - a->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return SIZE_MAX;
		if (a->buf && a->len + (size_t)n + 1 <= a->cap) {
			size_t off = a->len;
			a->len += (size_t)n + 1;
			return off;
		}
		size_t cap = a->cap ? a->cap * 2 : 1 << 20;
		while (cap < a->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(a->buf, cap);
		if (!p)
			return SIZE_MAX;
		a->buf = p;
		a->cap = cap;
	}
}

#define OFF(x) ((const char *)(uintptr_t)(x))
#define FIX(a, p) ((p) = (a) + (uintptr_t)(p))

/*
 * The reachable pairs, drawn after everything else so that the figures of
 * the other rows keep their data: a start with outgoing relations, then a
 * walk of 2-5 steps, each along a relation picked at random among the
 * current node's outgoing ones (in relation order), stopping early at a
 * node with none. Runs while the endpoints are still indexes.
 */
static int reachable_pairs(kg_workload *w, uint64_t *st)
{
	size_t n = w->n, m = 3 * n;
	uint32_t *off = calloc(n + 1, sizeof(*off)), *to = malloc((m ? m : 1) * sizeof(*to));
	if (!off || !to) {
		free(off);
		free(to);
		return KG_ENOMEM;
	}
	/* out[v] as CSR: off[v] .. off[v + 1] index `to`, in relation order. */
	for (size_t j = 0; j < m; j++)
		off[(uintptr_t)w->rels[j].source_id + 1]++;
	for (size_t v = 0; v < n; v++)
		off[v + 1] += off[v];
	for (size_t j = 0; j < m; j++)
		to[off[(uintptr_t)w->rels[j].source_id]++] = (uint32_t)(uintptr_t)w->rels[j].target_id;
	for (size_t v = n; v > 0; v--) /* each off[v] was advanced to off[v + 1]: shift back */
		off[v] = off[v - 1];
	off[0] = 0;
	for (size_t q = 0; q < KG_WORKLOAD_PAIRS; q++) {
		uint64_t s = kg_splitmix64(st) % n;
		while (off[s] == off[s + 1])
			s = kg_splitmix64(st) % n;
		uint64_t steps = 2 + kg_splitmix64(st) % 4, v = s;
		for (uint64_t k = 0; k < steps && off[v] < off[v + 1]; k++)
			v = to[off[v] + kg_splitmix64(st) % (off[v + 1] - off[v])];
		w->reach_src[q] = (uint32_t)s;
		w->reach_dst[q] = (uint32_t)v;
	}
	free(off);
	free(to);
	return 0;
}

int kg_workload_generate(size_t n, size_t dim, uint64_t seed, kg_workload *w)
{
	memset(w, 0, sizeof(*w));
	w->n = n;
	w->dim = dim;
	w->seed = seed;
	uint64_t st = seed;
	arena a = { 0 };
	size_t m = 3 * n;
	w->ents = calloc(n ? n : 1, sizeof(*w->ents));
	w->rels = calloc(m ? m : 1, sizeof(*w->rels));
	w->gets = malloc(KG_WORKLOAD_GETS * sizeof(*w->gets));
	w->get_ids = malloc(KG_WORKLOAD_GETS * sizeof(*w->get_ids));
	w->pair_src = malloc(KG_WORKLOAD_PAIRS * sizeof(uint32_t));
	w->pair_dst = malloc(KG_WORKLOAD_PAIRS * sizeof(uint32_t));
	w->reach_src = malloc(KG_WORKLOAD_PAIRS * sizeof(uint32_t));
	w->reach_dst = malloc(KG_WORKLOAD_PAIRS * sizeof(uint32_t));
	if (dim) {
		w->embeddings = malloc(n * dim * sizeof(float));
		w->queries = malloc(KG_WORKLOAD_QUERIES * dim * sizeof(float));
	}
	if (!w->ents || !w->rels || !w->gets || !w->get_ids || !w->pair_src || !w->pair_dst || !w->reach_src ||
	    !w->reach_dst || (dim && (!w->embeddings || !w->queries)))
		goto fail;
	/* Entity type strings are static; ids and properties go to the arena. */
	for (size_t i = 0; i < n; i++) {
		kg_entity *e = &w->ents[i];
		uint64_t ta = kg_splitmix64(&st) % 50, tb = kg_splitmix64(&st) % 50;
		double s = kg_u01(&st);
		size_t id = arena_printf(&a, "e%zu", i);
		size_t props = arena_printf(&a, "{\"name\":\"entity %zu\",\"rank\":%zu,\"score\":%.6f,\"tags\":[\"t%u\",\"t%u\"]}",
		                            i, i, s, (unsigned)ta, (unsigned)tb);
		if (id == SIZE_MAX || props == SIZE_MAX)
			goto fail;
		e->id = OFF(id);
		e->properties = OFF(props);
		e->entity_type = ENTITY_TYPES[i % 8];
		if (dim) {
			float *v = w->embeddings + i * dim;
			for (size_t d = 0; d < dim; d++)
				v[d] = (float)(2 * kg_u01(&st) - 1);
			e->embedding = v;
			e->embedding_dim = dim;
		}
	}
	for (size_t j = 0; j < m; j++) {
		kg_relation *r = &w->rels[j];
		uint64_t s = kg_splitmix64(&st) % n, t = kg_splitmix64(&st) % n, k = kg_splitmix64(&st) % 6;
		uint64_t wt = kg_splitmix64(&st) % 1001, y = kg_splitmix64(&st) % 25;
		size_t id = arena_printf(&a, "r%zu", j);
		size_t props = arena_printf(&a, "{\"since\":%u}", (unsigned)(2000 + y));
		if (id == SIZE_MAX || props == SIZE_MAX)
			goto fail;
		r->id = OFF(id);
		r->properties = OFF(props);
		r->relation_type = RELATION_TYPES[k];
		r->weight = (double)wt / 1000.0;
		/* Endpoints point at the entities' ids once the arena is final. */
		r->source_id = OFF(s);
		r->target_id = OFF(t);
	}
	for (size_t q = 0; q < KG_WORKLOAD_GETS; q++)
		w->gets[q] = (uint32_t)(kg_splitmix64(&st) % n);
	for (size_t q = 0; q < KG_WORKLOAD_PAIRS; q++) {
		w->pair_src[q] = (uint32_t)(kg_splitmix64(&st) % n);
		w->pair_dst[q] = (uint32_t)(kg_splitmix64(&st) % n);
	}
	for (size_t q = 0; dim && q < KG_WORKLOAD_QUERIES * dim; q++)
		w->queries[q] = (float)(2 * kg_u01(&st) - 1);
	if (reachable_pairs(w, &st) < 0)
		goto fail;
	w->arena = a.buf;
	for (size_t i = 0; i < n; i++) {
		FIX(w->arena, w->ents[i].id);
		FIX(w->arena, w->ents[i].properties);
	}
	for (size_t q = 0; q < KG_WORKLOAD_GETS; q++)
		w->get_ids[q] = w->ents[w->gets[q]].id;
	for (size_t j = 0; j < m; j++) {
		FIX(w->arena, w->rels[j].id);
		FIX(w->arena, w->rels[j].properties);
		w->rels[j].source_id = w->ents[(uintptr_t)w->rels[j].source_id].id;
		w->rels[j].target_id = w->ents[(uintptr_t)w->rels[j].target_id].id;
	}
	return 0;
fail:
	free(a.buf);
	kg_workload_free(w);
	return KG_ENOMEM;
}

void kg_workload_free(kg_workload *w)
{
	free(w->ents);
	free(w->rels);
	free(w->gets);
	free(w->get_ids);
	free(w->pair_src);
	free(w->pair_dst);
	free(w->reach_src);
	free(w->reach_dst);
	free(w->queries);
	free(w->embeddings);
	free(w->arena);
	memset(w, 0, sizeof(*w));
}
