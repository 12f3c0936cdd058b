/*
 * unit_memory.c - what is particular to the in-memory backend: the memory
 * budget, the writer lock a transaction holds, compaction under a running
 * iterator, and the property index kept in step through it all.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kgstore.h"

static kg_entity ent(const char *id, const char *type, const char *props)
{
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = type;
	e.properties = props;
	return e;
}

static size_t count_entities(kg_store *s)
{
	kg_stats *st = NULL;
	size_t n = (size_t)-1;
	if (kg_get_stats(s, &st) == 0)
		n = st->entity_count;
	kg_stats_free(st);
	return n;
}

static void test_budget(void)
{
	kg_store *s = NULL;
	CHECK_OK(s, kg_open("memory:?budget=64KB", &s));
	char id[32];
	int rc = 0, i;
	for (i = 0; i < 10000 && rc == 0; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		kg_entity e = ent(id, "T", "{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
		rc = kg_add_entity(s, &e);
	}
	CHECK(rc == KG_EBUDGET);
	CHECK(strstr(kg_errmsg(s), "budget") != NULL);
	size_t before = count_entities(s);
	CHECK(before == (size_t)(i - 1));
	/* A refused batch adds nothing. */
	kg_entity batch[50];
	char ids[50][16];
	for (int k = 0; k < 50; k++) {
		snprintf(ids[k], sizeof(ids[k]), "b%d", k);
		batch[k] = ent(ids[k], "T", "{}");
	}
	CHECK_RC(s, kg_add_entities(s, batch, 50, 0, NULL), KG_EBUDGET);
	CHECK(count_entities(s) == before);
	/* Deleting frees room again. */
	for (int k = 0; k < 40; k++) {
		snprintf(id, sizeof(id), "e%d", k);
		CHECK_OK(s, kg_delete_entity(s, id));
	}
	CHECK_OK(s, kg_add_entities(s, batch, 10, 0, NULL));
	kg_close(s);
}

typedef struct writer_arg {
	kg_store *s;
	int rc;
} writer_arg;

static void *write_other(void *p)
{
	writer_arg *a = p;
	kg_entity e = ent("other", "T", NULL);
	a->rc = kg_add_entity(a->s, &e);
	return NULL;
}

static void test_txn_blocks_other_writers(void)
{
	kg_options o = KG_OPTIONS_INIT;
	o.backend = KG_BACKEND_MEMORY;
	o.timeout = 0.2;
	kg_store *s = NULL, *t = NULL;
	CHECK_OK(s, kg_open_options(&o, &s));
	CHECK_OK(s, kg_begin(s, &t));
	kg_entity e = ent("mine", "T", NULL);
	CHECK_OK(t, kg_add_entity(t, &e));
	/* Another writer waits for the transaction, then gives up with EBUSY. */
	writer_arg a = { s, 0 };
	pthread_t th;
	pthread_create(&th, NULL, write_other, &a);
	pthread_join(th, NULL);
	CHECK(a.rc == KG_EBUSY);
	/* Readers are not blocked. */
	kg_entity *got = NULL;
	CHECK_OK(s, kg_get_entity(s, "mine", &got));
	kg_entity_free(got);
	CHECK_OK(s, kg_commit(t));
	/* After the commit the writer gets through. */
	pthread_create(&th, NULL, write_other, &a);
	pthread_join(th, NULL);
	CHECK(a.rc == 0);
	kg_close(s);
}

static void test_compaction_under_iterator(void)
{
	kg_store *s = NULL;
	CHECK_OK(s, kg_open("memory:", &s));
	CHECK_OK(s, kg_add_indexed_property(s, "g"));
	enum { N = 3000 };
	char id[32], props[32];
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		snprintf(props, sizeof(props), "{\"g\":%d}", i % 7);
		kg_entity e = ent(id, "T", props);
		CHECK_OK(s, kg_add_entity(s, &e));
	}
	kg_relation r = KG_RELATION_INIT;
	r.id = "keep-rel";
	r.relation_type = "R";
	r.source_id = "e2999";
	r.target_id = "e2998";
	CHECK_OK(s, kg_add_relation(s, &r));
	kg_entity_iter *it = NULL;
	CHECK_OK(s, kg_entity_iter_new(s, NULL, &it));
	const kg_entity *e;
	int seen = 0, ordered = 1, last = -1;
	/* Read a little, delete most of the store (compaction renumbers the
	 * slots), then read on: no repeat, nothing deleted, order kept. */
	while (seen < 10 && kg_entity_iter_next(it, &e) == 1) {
		last = atoi(e->id + 1);
		seen++;
	}
	for (int i = 0; i < N - 100; i++) {
		if (i % 2 == 0 || i < 20)
			continue;
		snprintf(id, sizeof(id), "e%d", i);
		CHECK_OK(s, kg_delete_entity(s, id));
	}
	int rc;
	while ((rc = kg_entity_iter_next(it, &e)) == 1) {
		int k = atoi(e->id + 1);
		ordered &= k > last && (k % 2 == 0 || k < 20 || k >= N - 100);
		last = k;
		seen++;
	}
	CHECK(rc == 0 && ordered);
	kg_entity_iter_free(it);
	size_t live = count_entities(s);
	CHECK(seen == (int)live);
	/* Relations and the index survived the renumbering. */
	kg_relation_list *rl = NULL;
	CHECK_OK(s, kg_relations_of(s, "e2999", NULL, KG_OUT, &rl));
	CHECK(rl && rl->count == 1);
	kg_relation_list_free(rl);
	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_lookup_by_property(s, "g", "3", &l));
	size_t want = 0;
	for (int i = 0; i < N; i++)
		if (i % 7 == 3 && (i % 2 == 0 || i < 20 || i >= N - 100))
			want++;
	CHECK(l && l->count == want);
	kg_entity_list_free(l);
	kg_close(s);
}

static void test_rollback_restores_order(void)
{
	kg_store *s = NULL, *t = NULL;
	CHECK_OK(s, kg_open("memory:", &s));
	const char *ids[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		kg_entity e = ent(ids[i], "T", "{\"v\":1}");
		CHECK_OK(s, kg_add_entity(s, &e));
	}
	kg_relation r = KG_RELATION_INIT;
	r.id = "ab";
	r.relation_type = "R";
	r.source_id = "a";
	r.target_id = "b";
	CHECK_OK(s, kg_add_relation(s, &r));
	CHECK_OK(s, kg_begin(s, &t));
	CHECK_OK(t, kg_delete_entity(t, "b"));
	kg_entity upd = ent("a", "Changed", "{}");
	CHECK_OK(t, kg_update_entity(t, &upd));
	CHECK_OK(t, kg_clear(t));
	CHECK(count_entities(t) == 0);
	CHECK_OK(s, kg_rollback(t));
	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_list_entities(s, NULL, 0, 0, &l));
	CHECK(l && l->count == 3);
	if (l && l->count == 3) {
		CHECK_STR(l->items[0]->id, "a");
		CHECK_STR(l->items[0]->entity_type, "T");
		CHECK_STR(l->items[1]->id, "b");
		CHECK_STR(l->items[2]->id, "c");
	}
	kg_entity_list_free(l);
	kg_relation *got = NULL;
	CHECK_OK(s, kg_get_relation(s, "ab", &got));
	kg_relation_free(got);
	kg_close(s);
}

int main(void)
{
	RUN(test_budget);
	RUN(test_txn_blocks_other_writers);
	RUN(test_compaction_under_iterator);
	RUN(test_rollback_restores_order);
	return th_summary("unit_memory");
}
