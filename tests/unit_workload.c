/* unit_workload.c - the benchmark generator matches WORKLOAD.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "workload.h"

static void test_first_entity(void)
{
	kg_workload w;
	CHECK(kg_workload_generate(10, 0, 42, &w) == 0);
	/* The value WORKLOAD.md's issue gives to check generators against. */
	CHECK_STR(w.ents[0].properties, "{\"name\":\"entity 0\",\"rank\":0,\"score\":0.278601,\"tags\":[\"t13\",\"t41\"]}");
	CHECK_STR(w.ents[0].id, "e0");
	CHECK_STR(w.ents[9].id, "e9");
	int types_ok = 1, rels_ok = 1;
	const char *types[] = { "Person", "Company", "Product", "Place", "Event", "Concept", "Document", "Topic" };
	for (size_t i = 0; i < 10; i++)
		types_ok &= !strcmp(w.ents[i].entity_type, types[i % 8]) && w.ents[i].embedding == NULL;
	CHECK(types_ok);
	for (size_t j = 0; j < 30; j++) {
		char id[16];
		snprintf(id, sizeof(id), "r%zu", j);
		rels_ok &= !strcmp(w.rels[j].id, id) && w.rels[j].weight >= 0 && w.rels[j].weight <= 1 &&
		           w.rels[j].source_id[0] == 'e' && w.rels[j].target_id[0] == 'e' &&
		           !strncmp(w.rels[j].properties, "{\"since\":20", 11);
	}
	CHECK(rels_ok);
	kg_workload_free(&w);
}

static void test_generator(void)
{
	/* splitmix64 from state 0: the reference sequence's first value. */
	uint64_t st = 0;
	CHECK(kg_splitmix64(&st) == 0xE220A8397B1DCDAFull);
	st = 42;
	double u = kg_u01(&st);
	CHECK(u >= 0 && u < 1);
	kg_workload a, b;
	CHECK(kg_workload_generate(100, 64, 42, &a) == 0);
	CHECK(kg_workload_generate(100, 64, 42, &b) == 0);
	int same = 1, in_range = 1;
	for (size_t i = 0; i < 100; i++)
		same &= !strcmp(a.ents[i].properties, b.ents[i].properties);
	for (size_t i = 0; i < 100 * 64; i++)
		in_range &= a.embeddings[i] >= -1 && a.embeddings[i] <= 1;
	CHECK(same && in_range);
	CHECK(a.ents[5].embedding_dim == 64);
	/* Embeddings are drawn between entities, so they change the properties that follow. */
	kg_workload c;
	CHECK(kg_workload_generate(100, 0, 42, &c) == 0);
	CHECK(!strcmp(a.ents[0].properties, c.ents[0].properties));
	CHECK(strcmp(a.ents[1].properties, c.ents[1].properties) != 0);
	kg_workload_free(&a);
	kg_workload_free(&b);
	kg_workload_free(&c);
}

/* The reachable pairs: the first five WORKLOAD.md gives at N = 10K, seed 42,
 * each pair joined by a walk, and the other draws unmoved by them. */
static void test_reachable_pairs(void)
{
	kg_workload w;
	CHECK(kg_workload_generate(10000, 0, 42, &w) == 0);
	static const uint32_t want[5][2] = { { 9026, 7031 }, { 5052, 7040 }, { 87, 1513 }, { 6725, 8901 }, { 1464, 2158 } };
	for (int i = 0; i < 5; i++) {
		CHECK(w.reach_src[i] == want[i][0]);
		CHECK(w.reach_dst[i] == want[i][1]);
	}
	/* Every pair is a node to itself or joined within 5 edges: a BFS over
	 * the relations by index. */
	size_t m = 3 * w.n, joined = 0;
	int8_t *dist = malloc(w.n);
	uint32_t *src = malloc(m * sizeof(*src)), *dst = malloc(m * sizeof(*dst));
	CHECK(dist && src && dst);
	for (size_t j = 0; dist && src && dst && j < m; j++) {
		src[j] = (uint32_t)atoi(w.rels[j].source_id + 1);
		dst[j] = (uint32_t)atoi(w.rels[j].target_id + 1);
	}
	for (size_t q = 0; dist && src && dst && q < KG_WORKLOAD_PAIRS; q++) {
		memset(dist, -1, w.n);
		dist[w.reach_src[q]] = 0;
		for (int d = 0; d < 5; d++) /* relax all edges once per level */
			for (size_t j = 0; j < m; j++)
				if (dist[src[j]] == d && dist[dst[j]] < 0)
					dist[dst[j]] = (int8_t)(d + 1);
		joined += dist[w.reach_dst[q]] >= 0;
	}
	CHECK(joined == KG_WORKLOAD_PAIRS);
	free(dist);
	free(src);
	free(dst);
	/* Drawn last: the random pairs and the lookups are those of the draws before. */
	uint64_t st = 42;
	for (size_t i = 0; i < w.n * 3 + 3 * w.n * 5; i++)
		kg_splitmix64(&st);
	CHECK(w.gets[0] == kg_splitmix64(&st) % w.n);
	kg_workload_free(&w);
}

int main(void)
{
	RUN(test_first_entity);
	RUN(test_generator);
	RUN(test_reachable_pairs);
	return th_summary("unit_workload");
}
