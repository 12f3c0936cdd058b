/*
 * workload.h - the benchmark graph of bench/WORKLOAD.md, generated exactly
 * (same generator, same draws in the same order, byte-identical property
 * text), so kgstore, the original (AIECS) and the raw engines are measured
 * on identical data.
 */
#ifndef KG_BENCH_WORKLOAD_H
#define KG_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "kgstore.h"

#define KG_WORKLOAD_GETS 100000 /* get_entity lookups */
#define KG_WORKLOAD_PAIRS 100   /* find_paths pairs, in each of the two sets */
#define KG_WORKLOAD_QUERIES 100 /* vector queries (dim > 0) */

typedef struct kg_workload {
	size_t n;          /* entities; relations are 3n */
	size_t dim;        /* embedding dimension, 0 = none */
	uint64_t seed;
	kg_entity *ents;   /* n, strings in `arena` */
	kg_relation *rels; /* 3n */
	uint32_t *gets;    /* KG_WORKLOAD_GETS entity indexes */
	const char **get_ids; /* the same as ids, read in order by the timed loop */
	uint32_t *pair_src, *pair_dst; /* KG_WORKLOAD_PAIRS each: random pairs */
	uint32_t *reach_src, *reach_dst; /* KG_WORKLOAD_PAIRS each: pairs joined by a
	                                    walk of 2-5 steps (drawn last) */
	float *queries;    /* KG_WORKLOAD_QUERIES * dim */
	char *arena;
	float *embeddings; /* n * dim */
} kg_workload;

/* Generates the workload. Returns 0 or KG_ENOMEM. Free with kg_workload_free. */
int kg_workload_generate(size_t n, size_t dim, uint64_t seed, kg_workload *w);
void kg_workload_free(kg_workload *w);

/* The generator itself, exposed for tests. */
uint64_t kg_splitmix64(uint64_t *state);
double kg_u01(uint64_t *state);

#endif
