/*
 * conformance.c - the contract every backend answers to.
 *
 *   conformance URI [case-name-substring]
 *
 * Runs the same assertions against the store the URI opens: memory:,
 * sqlite:FILE, sqlite::memory:, postgresql://... Each case starts from an
 * empty store (a SQLite file is deleted first; other stores are cleared,
 * every tenant included).
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "state.h"
#include "kgstore.h"
#include "kgstore/backend.h"
#include "kgstore/degrade.h"

static const char *g_uri;

/* ------------------------------------------------------------------ */
/* Fixtures                                                             */
/* ------------------------------------------------------------------ */

static void remove_sqlite_file(const char *uri)
{
	if (strncmp(uri, "sqlite:", 7) != 0)
		return;
	const char *p = uri + 7;
	if (!strncmp(p, "//", 2))
		p += 2;
	if (!strncmp(p, ":memory:", 8))
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s", p);
	char *q = strchr(path, '?');
	if (q)
		*q = '\0';
	const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < 4; i++) {
		char f[4200];
		snprintf(f, sizeof(f), "%s%s", path, suffixes[i]);
		unlink(f);
	}
}

static void clear_all(kg_store *s)
{
	char **tenants = NULL;
	size_t n = 0;
	if (kg_list_tenants(s, &tenants, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			kg_store *v = NULL;
			if (kg_tenant(s, tenants[i], &v) == 0)
				kg_clear(v);
			kg_close(v);
		}
		free(tenants);
	}
	kg_clear(s);
}

/*
 * "generic:" is the memory backend with every optional operation removed,
 * so the core's generic algorithms answer the same assertions the native
 * overrides do.
 */
static int open_uri(const char *uri, kg_store **s)
{
	if (!strncmp(uri, "degrade:", 8)) {
		/* "degrade:URI": the graceful-degradation wrapper over the store at
		 * URI, which stays up: every call must pass through unchanged. */
		char err[512];
		kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
		*s = NULL;
		int rc = kg_degrade_open(uri + 8, &o, s, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "%s\n", err);
		return rc;
	}
	if (strcmp(uri, "generic:") != 0)
		return kg_open(uri, s);
	kg_backend *b = NULL;
	char err[256];
	*s = NULL;
	int rc = kg_memory_backend_new(NULL, &b, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		return rc;
	}
	b->neighbors = NULL;
	b->traverse = NULL;
	b->find_paths = NULL;
	b->subgraph = NULL;
	b->list_entities = NULL;
	b->vector_search = NULL;
	b->text_search = NULL;
	b->add_indexed_property = NULL;
	b->lookup_by_property = NULL;
	b->caps &= ~(unsigned)(KG_CAP_NATIVE_PATHS | KG_CAP_PROPERTY_INDEX);
	return kg_store_from_backend(b, s);
}

/* A fresh, empty store; aborts the run if the backend cannot be opened. */
static kg_store *open_fresh(void)
{
	kg_store *s = NULL;
	remove_sqlite_file(g_uri);
	int rc = open_uri(g_uri, &s);
	if (rc != 0) {
		fprintf(stderr, "cannot open %s: %s\n", g_uri, kg_errmsg(s));
		kg_close(s);
		exit(2);
	}
	clear_all(s);
	return s;
}

static kg_entity ent(const char *id, const char *type, const char *props)
{
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = type;
	e.properties = props;
	return e;
}

static kg_relation rel(const char *id, const char *type, const char *src, const char *dst)
{
	kg_relation r = KG_RELATION_INIT;
	r.id = id;
	r.relation_type = type;
	r.source_id = src;
	r.target_id = dst;
	return r;
}

static int add_e(kg_store *s, const char *id, const char *type)
{
	kg_entity e = ent(id, type, NULL);
	return kg_add_entity(s, &e);
}

static int add_r(kg_store *s, const char *id, const char *type, const char *src, const char *dst)
{
	kg_relation r = rel(id, type, src, dst);
	return kg_add_relation(s, &r);
}

/* JSON equality, since a backend may normalise the text (JSONB). */
static int json_same(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	json_t *x = json_loads(a, JSON_DECODE_ANY, NULL);
	json_t *y = json_loads(b, JSON_DECODE_ANY, NULL);
	int same = x && y && json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return same;
}

static size_t entity_count(kg_store *s)
{
	kg_stats *st = NULL;
	size_t n = (size_t)-1;
	if (kg_get_stats(s, &st) == 0)
		n = st->entity_count;
	kg_stats_free(st);
	return n;
}

static size_t relation_count(kg_store *s)
{
	kg_stats *st = NULL;
	size_t n = (size_t)-1;
	if (kg_get_stats(s, &st) == 0)
		n = st->relation_count;
	kg_stats_free(st);
	return n;
}

static int list_has_entity(const kg_entity_list *l, const char *id)
{
	for (size_t i = 0; l && i < l->count; i++)
		if (!strcmp(l->items[i]->id, id))
			return 1;
	return 0;
}

static int rel_list_has(const kg_relation_list *l, const char *id)
{
	for (size_t i = 0; l && i < l->count; i++)
		if (!strcmp(l->items[i]->id, id))
			return 1;
	return 0;
}

/* A path is well formed: nodes linked by its edges, no entity twice. */
static int path_ok(const kg_path *p)
{
	if (p->n_nodes < 1 || p->n_edges != p->n_nodes - 1)
		return 0;
	for (size_t i = 0; i < p->n_edges; i++) {
		if (strcmp(p->edges[i]->source_id, p->nodes[i]->id) != 0)
			return 0;
		if (strcmp(p->edges[i]->target_id, p->nodes[i + 1]->id) != 0)
			return 0;
	}
	for (size_t i = 0; i < p->n_nodes; i++)
		for (size_t j = i + 1; j < p->n_nodes; j++)
			if (!strcmp(p->nodes[i]->id, p->nodes[j]->id))
				return 0;
	return p->score >= 0.0 && p->score <= 1.0;
}

/* ------------------------------------------------------------------ */
/* Opening and errors                                                   */
/* ------------------------------------------------------------------ */

static void test_open_errors(void)
{
	kg_store *s = NULL;
	CHECK(kg_open("nosuchscheme:x", &s) == KG_EINVAL);
	CHECK(s != NULL && strstr(kg_errmsg(s), "memory:") != NULL);
	kg_entity *e = NULL;
	CHECK(kg_get_entity(s, "x", &e) == KG_EINVAL); /* a failed handle refuses calls */
	CHECK(strlen(kg_errmsg(s)) > 0);
	kg_close(s);
	s = NULL;
	CHECK(kg_open("memory:?budget=lots", &s) == KG_EINVAL);
	CHECK(strstr(kg_errmsg(s), "budget") != NULL);
	kg_close(s);
	CHECK(strcmp(kg_strerror(KG_ENOTFOUND), "not found") == 0);
	CHECK(kg_strerror(KG_EPOOL)[0] != '\0');
	/* Every backend says which schema its tables are in. */
	s = open_fresh();
	int version = 0;
	CHECK_OK(s, kg_schema_version(s, &version));
	CHECK(version == KG_SCHEMA_VERSION);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Entities                                                             */
/* ------------------------------------------------------------------ */

static void test_entity_crud(void)
{
	kg_store *s = open_fresh();
	float emb[3] = { 0.5f, -1.25f, 3.0f };
	kg_entity a = ent("alice", "Person", "{\"name\":\"Alice\",\"age\":30,\"tags\":[\"x\",{\"y\":null}]}");
	a.embedding = emb;
	a.embedding_dim = 3;
	a.source = "unit-test";
	a.created_at = 1700000000123456;
	CHECK_OK(s, kg_add_entity(s, &a));

	kg_entity *got = NULL;
	CHECK_OK(s, kg_get_entity(s, "alice", &got));
	if (got) {
		CHECK_STR(got->id, "alice");
		CHECK_STR(got->entity_type, "Person");
		CHECK(json_same(got->properties, a.properties));
		CHECK(got->embedding_dim == 3 && got->embedding && memcmp(got->embedding, emb, sizeof(emb)) == 0);
		CHECK_STR(got->source, "unit-test");
		CHECK(got->created_at == 1700000000123456);
		CHECK(got->updated_at >= got->created_at);
		CHECK(got->tenant_id == NULL);
	}
	kg_entity_free(got);
	got = NULL;

	/* Duplicate: refused, the stored entity is unchanged. */
	kg_entity dup = ent("alice", "Robot", "{}");
	CHECK_RC(s, kg_add_entity(s, &dup), KG_EEXISTS);
	CHECK(strstr(kg_errmsg(s), "alice") != NULL);
	CHECK_OK(s, kg_get_entity(s, "alice", &got));
	if (got)
		CHECK_STR(got->entity_type, "Person");
	kg_entity_free(got);
	got = NULL;

	CHECK_RC(s, kg_get_entity(s, "bob", &got), KG_ENOTFOUND);
	CHECK(got == NULL);
	CHECK(strstr(kg_errmsg(s), "bob") != NULL);

	/* Update replaces type, properties, embedding; keeps created_at. */
	kg_entity upd = ent("alice", "Engineer", "{\"name\":\"Alice B\"}");
	CHECK_OK(s, kg_update_entity(s, &upd));
	CHECK_OK(s, kg_get_entity(s, "alice", &got));
	if (got) {
		CHECK_STR(got->entity_type, "Engineer");
		CHECK(json_same(got->properties, "{\"name\":\"Alice B\"}"));
		CHECK(got->embedding == NULL && got->embedding_dim == 0);
		CHECK(got->created_at == 1700000000123456);
	}
	kg_entity_free(got);
	got = NULL;
	kg_entity ghost = ent("ghost", "Person", "{}");
	CHECK_RC(s, kg_update_entity(s, &ghost), KG_ENOTFOUND);
	CHECK_RC(s, kg_get_entity(s, "ghost", &got), KG_ENOTFOUND);

	/* Upsert adds, then replaces. */
	CHECK_OK(s, kg_upsert_entity(s, &ghost));
	kg_entity ghost2 = ent("ghost", "Spirit", "{\"v\":2}");
	CHECK_OK(s, kg_upsert_entity(s, &ghost2));
	CHECK_OK(s, kg_get_entity(s, "ghost", &got));
	if (got)
		CHECK_STR(got->entity_type, "Spirit");
	kg_entity_free(got);
	got = NULL;
	CHECK(entity_count(s) == 2);

	/* No updated_at given: the later of now and created_at, so a created_at
	 * in the future is not followed by an earlier update. */
	kg_entity fut = ent("future", "T", "{}");
	fut.created_at = 4102444800000000; /* 2100-01-01 */
	CHECK_OK(s, kg_add_entity(s, &fut));
	CHECK_OK(s, kg_get_entity(s, "future", &got));
	if (got)
		CHECK(got->created_at == 4102444800000000 && got->updated_at == 4102444800000000);
	kg_entity_free(got);
	got = NULL;
	CHECK_OK(s, kg_delete_entity(s, "future"));

	CHECK_OK(s, kg_delete_entity(s, "ghost"));
	CHECK_RC(s, kg_delete_entity(s, "ghost"), KG_ENOTFOUND);
	CHECK_RC(s, kg_get_entity(s, "ghost", &got), KG_ENOTFOUND);
	CHECK(entity_count(s) == 1);
	kg_close(s);
}

static void test_invalid_input(void)
{
	kg_store *s = open_fresh();
	const char *bad_json[] = { "{", "[1,2]", "\"text\"", "{\"a\":}", "{\"a\":1,}", "{'a':1}",
	                           "{\"a\":1} x", "{\"a\":\"\xff\"}", "42", "" };
	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		kg_entity e = ent("x", "T", bad_json[i]);
		CHECK_RC(s, kg_add_entity(s, &e), KG_EINVAL);
		CHECK(strstr(kg_errmsg(s), "JSON") != NULL);
	}
	kg_entity no_id = ent("", "T", "{}");
	CHECK_RC(s, kg_add_entity(s, &no_id), KG_EINVAL);
	kg_entity null_id = ent(NULL, "T", "{}");
	CHECK_RC(s, kg_add_entity(s, &null_id), KG_EINVAL);
	kg_entity no_type = ent("x", NULL, "{}");
	CHECK_RC(s, kg_add_entity(s, &no_type), KG_EINVAL);
	CHECK_RC(s, kg_add_entity(s, NULL), KG_EINVAL);
	CHECK(entity_count(s) == 0);

	CHECK_OK(s, add_e(s, "a", "T"));
	CHECK_OK(s, add_e(s, "b", "T"));
	double bad_w[] = { 1.5, -0.1, NAN, INFINITY };
	for (size_t i = 0; i < 4; i++) {
		kg_relation r = rel("r", "R", "a", "b");
		r.weight = bad_w[i];
		CHECK_RC(s, kg_add_relation(s, &r), KG_EINVAL);
	}
	kg_relation badp = rel("r", "R", "a", "b");
	badp.properties = "{nope}";
	CHECK_RC(s, kg_add_relation(s, &badp), KG_EINVAL);
	/* Dangling endpoints: refused, the message names the missing one. */
	CHECK_RC(s, add_r(s, "r", "R", "a", "zzz"), KG_ENOTFOUND);
	CHECK(strstr(kg_errmsg(s), "zzz") != NULL);
	CHECK_RC(s, add_r(s, "r", "R", "yyy", "a"), KG_ENOTFOUND);
	CHECK(strstr(kg_errmsg(s), "yyy") != NULL);
	CHECK(relation_count(s) == 0);

	kg_entity_list *l = NULL;
	CHECK_RC(s, kg_neighbors(s, "a", NULL, (kg_direction)7, &l), KG_EINVAL);
	kg_path_list *pl = NULL;
	CHECK_RC(s, kg_find_paths(s, "a", "b", -1, 1, &pl), KG_EINVAL);
	CHECK_RC(s, kg_find_paths(s, "a", "nope", 3, 1, &pl), KG_ENOTFOUND);
	CHECK_RC(s, kg_find_paths(s, "nope", "a", 3, 1, &pl), KG_ENOTFOUND);
	CHECK_RC(s, kg_neighbors(s, "nope", NULL, KG_OUT, &l), KG_ENOTFOUND);
	CHECK_RC(s, kg_traverse(s, "nope", NULL, 2, 0, &pl), KG_ENOTFOUND);
	CHECK_RC(s, kg_delete_relation(s, "nope"), KG_ENOTFOUND);
	kg_relation *r = NULL;
	CHECK_RC(s, kg_get_relation(s, "nope", &r), KG_ENOTFOUND);
	kg_close(s);
}

static void test_unicode_and_large(void)
{
	kg_store *s = open_fresh();
	const char *props = "{\"name\":\"Zoë 🦊 東京\",\"esc\":\"tab\\tquote\\\"nl\\n\\u00e9\",\"nested\":{\"ß\":[1,2.5,-3e10,true,null]}}";
	kg_entity e = ent("ünï-çødé-😀", "Persön", props);
	CHECK_OK(s, kg_add_entity(s, &e));
	kg_entity *got = NULL;
	CHECK_OK(s, kg_get_entity(s, "ünï-çødé-😀", &got));
	if (got) {
		CHECK(json_same(got->properties, props));
		CHECK_STR(got->entity_type, "Persön");
	}
	kg_entity_free(got);
	got = NULL;

	/* A property of a megabyte and a half. */
	size_t big = 1536 * 1024;
	char *text = malloc(big + 64);
	strcpy(text, "{\"blob\":\"");
	size_t off = strlen(text);
	for (size_t i = 0; i < big; i++)
		text[off + i] = (char)('a' + (i % 26));
	strcpy(text + off + big, "\"}");
	kg_entity b = ent("big", "Blob", text);
	CHECK_OK(s, kg_add_entity(s, &b));
	CHECK_OK(s, kg_get_entity(s, "big", &got));
	if (got)
		CHECK(json_same(got->properties, text));
	kg_entity_free(got);
	free(text);

	/* Embeddings of several hundred values survive exactly. */
	float v[768];
	for (int i = 0; i < 768; i++)
		v[i] = (float)(i - 384) / 7.0f;
	kg_entity ve = ent("vec", "V", "{}");
	ve.embedding = v;
	ve.embedding_dim = 768;
	CHECK_OK(s, kg_add_entity(s, &ve));
	got = NULL;
	CHECK_OK(s, kg_get_entity(s, "vec", &got));
	if (got)
		CHECK(got->embedding_dim == 768 && memcmp(got->embedding, v, sizeof(v)) == 0);
	kg_entity_free(got);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Relations                                                            */
/* ------------------------------------------------------------------ */

static void test_relation_crud(void)
{
	kg_store *s = open_fresh();
	CHECK_OK(s, add_e(s, "a", "T"));
	CHECK_OK(s, add_e(s, "b", "T"));
	kg_relation r = rel("r1", "KNOWS", "a", "b");
	r.weight = 0.0; /* zero must come back as zero */
	r.properties = "{\"since\":2001}";
	r.source = "import";
	r.created_at = 1600000000000001;
	CHECK_OK(s, kg_add_relation(s, &r));
	kg_relation r2 = rel("r2", "KNOWS", "a", "b");
	r2.weight = 0.123456789012345;
	CHECK_OK(s, kg_add_relation(s, &r2));
	CHECK_OK(s, add_r(s, "loop", "SELF", "a", "a")); /* self-loops are allowed */

	kg_relation *got = NULL;
	CHECK_OK(s, kg_get_relation(s, "r1", &got));
	if (got) {
		CHECK_STR(got->relation_type, "KNOWS");
		CHECK_STR(got->source_id, "a");
		CHECK_STR(got->target_id, "b");
		CHECK(got->weight == 0.0);
		CHECK(json_same(got->properties, "{\"since\":2001}"));
		CHECK_STR(got->source, "import");
		CHECK(got->created_at == 1600000000000001);
	}
	kg_relation_free(got);
	got = NULL;
	CHECK_OK(s, kg_get_relation(s, "r2", &got));
	if (got)
		CHECK(got->weight == 0.123456789012345);
	kg_relation_free(got);
	got = NULL;
	CHECK_OK(s, kg_get_relation(s, "loop", &got));
	kg_relation_free(got);
	got = NULL;

	CHECK_RC(s, add_r(s, "r1", "OTHER", "b", "a"), KG_EEXISTS);
	kg_relation upd = rel("r1", "LIKES", "b", "a");
	upd.weight = 0.5;
	CHECK_OK(s, kg_update_relation(s, &upd));
	CHECK_OK(s, kg_get_relation(s, "r1", &got));
	if (got) {
		CHECK_STR(got->relation_type, "LIKES");
		CHECK_STR(got->source_id, "b");
		CHECK(got->weight == 0.5);
		CHECK(got->created_at == 1600000000000001);
	}
	kg_relation_free(got);
	got = NULL;
	kg_relation ghost = rel("ghost", "R", "a", "b");
	CHECK_RC(s, kg_update_relation(s, &ghost), KG_ENOTFOUND);
	kg_relation dangling = rel("r1", "R", "a", "nowhere");
	CHECK_RC(s, kg_update_relation(s, &dangling), KG_ENOTFOUND);
	CHECK_OK(s, kg_upsert_relation(s, &ghost));
	CHECK_OK(s, kg_get_relation(s, "ghost", &got));
	kg_relation_free(got);
	got = NULL;
	CHECK(relation_count(s) == 4);
	CHECK_OK(s, kg_delete_relation(s, "ghost"));
	CHECK_RC(s, kg_get_relation(s, "ghost", &got), KG_ENOTFOUND);
	CHECK(relation_count(s) == 3);
	CHECK(entity_count(s) == 2);
	kg_close(s);
}

static void test_delete_cascades(void)
{
	kg_store *s = open_fresh();
	add_e(s, "a", "T");
	add_e(s, "b", "T");
	add_e(s, "c", "T");
	CHECK_OK(s, add_r(s, "ab", "R", "a", "b"));
	CHECK_OK(s, add_r(s, "ba", "R", "b", "a"));
	CHECK_OK(s, add_r(s, "bc", "R", "b", "c"));
	CHECK_OK(s, add_r(s, "bb", "R", "b", "b"));
	CHECK_OK(s, kg_delete_entity(s, "b"));
	kg_relation *r = NULL;
	CHECK_RC(s, kg_get_relation(s, "ab", &r), KG_ENOTFOUND);
	CHECK_RC(s, kg_get_relation(s, "ba", &r), KG_ENOTFOUND);
	CHECK_RC(s, kg_get_relation(s, "bc", &r), KG_ENOTFOUND);
	CHECK_RC(s, kg_get_relation(s, "bb", &r), KG_ENOTFOUND);
	CHECK(relation_count(s) == 0);
	kg_relation_list *rl = NULL;
	CHECK_OK(s, kg_relations_of(s, "a", NULL, KG_BOTH, &rl));
	CHECK(rl && rl->count == 0);
	kg_relation_list_free(rl);
	/* The id can be used again, with no old relation coming back. */
	CHECK_OK(s, add_e(s, "b", "T"));
	CHECK_OK(s, kg_relations_of(s, "b", NULL, KG_BOTH, &rl));
	CHECK(rl && rl->count == 0);
	kg_relation_list_free(rl);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Bulk                                                                 */
/* ------------------------------------------------------------------ */

static void test_bulk(void)
{
	kg_store *s = open_fresh();
	enum { N = 300 };
	static char ids[N][16], props[N][48];
	kg_entity ents[N];
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "n%d", i);
		snprintf(props[i], sizeof(props[i]), "{\"i\":%d}", i);
		ents[i] = ent(ids[i], i % 2 ? "Odd" : "Even", props[i]);
	}
	size_t added = 99;
	CHECK_OK(s, kg_add_entities(s, ents, N, 0, &added));
	CHECK(added == N);
	CHECK(entity_count(s) == N);

	/* A batch with a repeat inside it: refused whole. */
	kg_entity batch[3] = { ent("x1", "T", "{}"), ent("x2", "T", "{}"), ent("x1", "T", "{}") };
	CHECK_RC(s, kg_add_entities(s, batch, 3, 0, &added), KG_EEXISTS);
	CHECK(added == 0);
	CHECK(strstr(kg_errmsg(s), "x1") != NULL);
	kg_entity *e = NULL;
	CHECK_RC(s, kg_get_entity(s, "x2", &e), KG_ENOTFOUND);
	/* A batch with an id already stored: refused whole. */
	kg_entity batch2[3] = { ent("y1", "T", "{}"), ent("n5", "T", "{}"), ent("y2", "T", "{}") };
	CHECK_RC(s, kg_add_entities(s, batch2, 3, 0, &added), KG_EEXISTS);
	CHECK(strstr(kg_errmsg(s), "n5") != NULL);
	CHECK_RC(s, kg_get_entity(s, "y1", &e), KG_ENOTFOUND);
	/* A batch with invalid JSON in its last item: refused whole. */
	kg_entity batch3[2] = { ent("z1", "T", "{}"), ent("z2", "T", "{oops") };
	CHECK_RC(s, kg_add_entities(s, batch3, 2, 0, &added), KG_EINVAL);
	CHECK_RC(s, kg_get_entity(s, "z1", &e), KG_ENOTFOUND);
	CHECK(entity_count(s) == N);
	/* Skipping: the stored and repeated ids are skipped, the rest added. */
	CHECK_OK(s, kg_add_entities(s, batch, 3, KG_BULK_SKIP_EXISTING, &added));
	CHECK(added == 2);
	CHECK_OK(s, kg_add_entities(s, batch2, 3, KG_BULK_SKIP_EXISTING, &added));
	CHECK(added == 2);
	CHECK(entity_count(s) == N + 4);
	e = NULL;
	CHECK_OK(s, kg_get_entity(s, "n5", &e));
	if (e)
		CHECK_STR(e->entity_type, "Odd"); /* the stored one was kept */
	kg_entity_free(e);

	static char rids[N][16];
	kg_relation rels[N];
	for (int i = 0; i < N; i++) {
		snprintf(rids[i], sizeof(rids[i]), "r%d", i);
		rels[i] = rel(rids[i], "NEXT", ids[i], ids[(i + 1) % N]);
		rels[i].weight = (double)i / N;
	}
	/* One dangling endpoint: refused whole. */
	rels[N - 1].target_id = "missing";
	CHECK_RC(s, kg_add_relations(s, rels, N, 0, &added), KG_ENOTFOUND);
	CHECK(strstr(kg_errmsg(s), "missing") != NULL);
	CHECK(relation_count(s) == 0);
	rels[N - 1].target_id = ids[0];
	CHECK_OK(s, kg_add_relations(s, rels, N, 0, &added));
	CHECK(added == N);
	CHECK(relation_count(s) == N);
	kg_relation *r = NULL;
	CHECK_OK(s, kg_get_relation(s, "r7", &r));
	if (r)
		CHECK(r->weight == 7.0 / N);
	kg_relation_free(r);
	CHECK_RC(s, kg_add_relations(s, rels, 2, 0, &added), KG_EEXISTS);
	CHECK_OK(s, kg_add_relations(s, rels, 2, KG_BULK_SKIP_EXISTING, &added));
	CHECK(added == 0);
	CHECK_OK(s, kg_add_entities(s, NULL, 0, 0, &added));
	CHECK(added == 0);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Neighbors and relations of an entity                                 */
/* ------------------------------------------------------------------ */

static void test_neighbors(void)
{
	kg_store *s = open_fresh();
	const char *names[] = { "a", "b", "c", "d", "e" };
	for (int i = 0; i < 5; i++)
		add_e(s, names[i], "T");
	CHECK_OK(s, add_r(s, "ab1", "KNOWS", "a", "b"));
	CHECK_OK(s, add_r(s, "ab2", "KNOWS", "a", "b")); /* parallel */
	CHECK_OK(s, add_r(s, "ac", "LIKES", "a", "c"));
	CHECK_OK(s, add_r(s, "da", "KNOWS", "d", "a"));
	CHECK_OK(s, add_r(s, "aa", "SELF", "a", "a"));

	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_neighbors(s, "a", NULL, KG_OUT, &l));
	CHECK(l && l->count == 3 && list_has_entity(l, "b") && list_has_entity(l, "c") && list_has_entity(l, "a"));
	kg_entity_list_free(l);
	CHECK_OK(s, kg_neighbors(s, "a", "KNOWS", KG_OUT, &l));
	CHECK(l && l->count == 1 && list_has_entity(l, "b"));
	kg_entity_list_free(l);
	CHECK_OK(s, kg_neighbors(s, "a", NULL, KG_IN, &l));
	CHECK(l && l->count == 2 && list_has_entity(l, "d") && list_has_entity(l, "a"));
	kg_entity_list_free(l);
	CHECK_OK(s, kg_neighbors(s, "a", NULL, KG_BOTH, &l));
	CHECK(l && l->count == 4);
	kg_entity_list_free(l);
	CHECK_OK(s, kg_neighbors(s, "e", NULL, KG_BOTH, &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	CHECK_OK(s, kg_neighbors(s, "a", "NOPE", KG_BOTH, &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);

	kg_relation_list *rl = NULL;
	CHECK_OK(s, kg_relations_of(s, "a", NULL, KG_OUT, &rl));
	CHECK(rl && rl->count == 4);
	if (rl && rl->count == 4) { /* insertion order */
		CHECK_STR(rl->items[0]->id, "ab1");
		CHECK_STR(rl->items[1]->id, "ab2");
		CHECK_STR(rl->items[2]->id, "ac");
		CHECK_STR(rl->items[3]->id, "aa");
	}
	kg_relation_list_free(rl);
	CHECK_OK(s, kg_relations_of(s, "a", NULL, KG_BOTH, &rl));
	CHECK(rl && rl->count == 5 && rel_list_has(rl, "da") && rel_list_has(rl, "aa")); /* the loop once */
	kg_relation_list_free(rl);
	CHECK_OK(s, kg_relations_of(s, "b", "KNOWS", KG_IN, &rl));
	CHECK(rl && rl->count == 2);
	kg_relation_list_free(rl);
	CHECK_RC(s, kg_relations_of(s, "zz", NULL, KG_IN, &rl), KG_ENOTFOUND);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Traversal and paths                                                  */
/* ------------------------------------------------------------------ */

static void test_traverse(void)
{
	kg_store *s = open_fresh();
	/* root -> a1, a2 ; a1 -> b1 ; a2 -> b1, b2 ; b2 -> root (cycle) ; b1 -> c1 */
	const char *names[] = { "root", "a1", "a2", "b1", "b2", "c1", "lonely" };
	for (int i = 0; i < 7; i++)
		add_e(s, names[i], "T");
	add_r(s, "r1", "E", "root", "a1");
	add_r(s, "r2", "E", "root", "a2");
	add_r(s, "r3", "E", "a1", "b1");
	add_r(s, "r4", "F", "a2", "b1");
	add_r(s, "r5", "E", "a2", "b2");
	add_r(s, "r6", "E", "b2", "root");
	add_r(s, "r7", "E", "b1", "c1");
	add_r(s, "r8", "E", "c1", "c1");

	kg_path_list *pl = NULL;
	CHECK_OK(s, kg_traverse(s, "root", NULL, 5, 0, &pl));
	CHECK(pl && pl->count == 5); /* a1 a2 b1 b2 c1: each reached entity once */
	if (pl) {
		size_t prev = 0;
		int ok = 1, has_root = 0;
		for (size_t i = 0; i < pl->count; i++) {
			kg_path *p = &pl->items[i];
			ok &= path_ok(p);
			ok &= p->n_edges >= prev; /* BFS order */
			prev = p->n_edges;
			ok &= !strcmp(p->nodes[0]->id, "root");
			if (!strcmp(p->nodes[p->n_nodes - 1]->id, "root"))
				has_root = 1;
		}
		CHECK(ok);
		CHECK(!has_root);
		if (pl->count == 5)
			CHECK(pl->items[4].n_edges == 3 && !strcmp(pl->items[4].nodes[3]->id, "c1"));
	}
	kg_path_list_free(pl);
	CHECK_OK(s, kg_traverse(s, "root", NULL, 1, 0, &pl));
	CHECK(pl && pl->count == 2);
	kg_path_list_free(pl);
	CHECK_OK(s, kg_traverse(s, "root", NULL, 5, 3, &pl));
	CHECK(pl && pl->count == 3);
	kg_path_list_free(pl);
	CHECK_OK(s, kg_traverse(s, "root", "E", 5, 0, &pl));
	CHECK(pl && pl->count == 5); /* b1 still reached through a1 */
	kg_path_list_free(pl);
	CHECK_OK(s, kg_traverse(s, "a2", "F", 5, 0, &pl));
	CHECK(pl && pl->count == 1);
	kg_path_list_free(pl);
	CHECK_OK(s, kg_traverse(s, "root", NULL, 0, 0, &pl));
	CHECK(pl && pl->count == 0);
	kg_path_list_free(pl);
	CHECK_OK(s, kg_traverse(s, "lonely", NULL, 3, 0, &pl));
	CHECK(pl && pl->count == 0);
	kg_path_list_free(pl);
	kg_close(s);
}

/* Brute-force enumeration of simple paths, to compare with the backend. */
typedef struct bf_graph {
	int n, m;
	int src[64], dst[64];
} bf_graph;

static void bf_walk(const bf_graph *g, int at, int target, int depth, int max_depth, int *on_path,
                    size_t *count_by_len)
{
	if (at == target && depth > 0) {
		count_by_len[depth]++;
		return;
	}
	if (depth == max_depth)
		return;
	for (int e = 0; e < g->m; e++) {
		if (g->src[e] != at || on_path[g->dst[e]])
			continue;
		on_path[g->dst[e]] = 1;
		bf_walk(g, g->dst[e], target, depth + 1, max_depth, on_path, count_by_len);
		on_path[g->dst[e]] = 0;
	}
}

static void test_find_paths(void)
{
	kg_store *s = open_fresh();
	/* Diamond with parallel edges, a cycle, and a self-loop:
	 * s -> a (x2), s -> b, a -> t, b -> t, a -> b, t -> s, a -> a */
	const char *names[] = { "s", "a", "b", "t", "iso" };
	for (int i = 0; i < 5; i++)
		add_e(s, names[i], "T");
	add_r(s, "sa1", "E", "s", "a");
	add_r(s, "sa2", "E", "s", "a");
	add_r(s, "sb", "E", "s", "b");
	add_r(s, "at", "E", "a", "t");
	add_r(s, "bt", "E", "b", "t");
	add_r(s, "ab", "E", "a", "b");
	add_r(s, "ts", "E", "t", "s");
	add_r(s, "aa", "E", "a", "a");

	kg_path_list *pl = NULL;
	CHECK_OK(s, kg_find_paths(s, "s", "t", 5, 0, &pl));
	/* length 2: sa1-at, sa2-at, sb-bt ; length 3: sa1-ab-bt, sa2-ab-bt */
	CHECK(pl && pl->count == 5);
	if (pl) {
		int ok = 1;
		size_t prev = 0;
		for (size_t i = 0; i < pl->count; i++) {
			ok &= path_ok(&pl->items[i]);
			ok &= pl->items[i].n_edges >= prev;
			prev = pl->items[i].n_edges;
			ok &= !strcmp(pl->items[i].nodes[0]->id, "s");
			ok &= !strcmp(pl->items[i].nodes[pl->items[i].n_nodes - 1]->id, "t");
		}
		CHECK(ok);
		if (pl->count == 5)
			CHECK(pl->items[0].n_edges == 2 && pl->items[2].n_edges == 2 && pl->items[3].n_edges == 3);
	}
	kg_path_list_free(pl);
	CHECK_OK(s, kg_find_paths(s, "s", "t", 5, 2, &pl));
	CHECK(pl && pl->count == 2 && pl->items[0].n_edges == 2 && pl->items[1].n_edges == 2);
	kg_path_list_free(pl);
	CHECK_OK(s, kg_find_paths(s, "s", "t", 1, 0, &pl));
	CHECK(pl && pl->count == 0);
	kg_path_list_free(pl);
	CHECK_OK(s, kg_find_paths(s, "s", "s", 5, 0, &pl));
	CHECK(pl && pl->count == 1 && pl->items[0].n_nodes == 1 && pl->items[0].n_edges == 0);
	kg_path_list_free(pl);
	CHECK_OK(s, kg_find_paths(s, "s", "iso", 5, 0, &pl));
	CHECK(pl && pl->count == 0);
	kg_path_list_free(pl);
	CHECK_OK(s, kg_find_paths(s, "t", "b", 5, 0, &pl)); /* t -> s -> b ; t -> s -> a -> b (x2) */
	CHECK(pl && pl->count == 3);
	kg_path_list_free(pl);
	kg_close(s);

	/* Random small graphs against the brute force, all lengths. */
	uint64_t seed = 12345;
	for (int round = 0; round < 12; round++) {
		s = open_fresh();
		bf_graph g = { 0 };
		g.n = 6 + round % 3;
		g.m = 14 + round;
		char id[16], rid[16];
		for (int i = 0; i < g.n; i++) {
			snprintf(id, sizeof(id), "v%d", i);
			add_e(s, id, "T");
		}
		for (int e = 0; e < g.m; e++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			g.src[e] = (int)((seed >> 33) % (uint64_t)g.n);
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			g.dst[e] = (int)((seed >> 33) % (uint64_t)g.n);
			char sid[16], did[16];
			snprintf(rid, sizeof(rid), "e%d", e);
			snprintf(sid, sizeof(sid), "v%d", g.src[e]);
			snprintf(did, sizeof(did), "v%d", g.dst[e]);
			add_r(s, rid, "E", sid, did);
		}
		int mismatches = 0;
		for (int a = 0; a < g.n; a++) {
			for (int b = 0; b < g.n; b++) {
				if (a == b)
					continue;
				size_t want[8] = { 0 };
				int on_path[16] = { 0 };
				on_path[a] = 1;
				bf_walk(&g, a, b, 0, 4, on_path, want);
				char sa[16], sb[16];
				snprintf(sa, sizeof(sa), "v%d", a);
				snprintf(sb, sizeof(sb), "v%d", b);
				pl = NULL;
				if (kg_find_paths(s, sa, sb, 4, 0, &pl) != 0) {
					mismatches++;
					continue;
				}
				size_t got[8] = { 0 };
				for (size_t i = 0; i < pl->count; i++) {
					if (!path_ok(&pl->items[i]) || pl->items[i].n_edges > 4)
						mismatches++;
					else
						got[pl->items[i].n_edges]++;
				}
				if (memcmp(want, got, sizeof(want)) != 0)
					mismatches++;
				/* With a limit: the shortest ones, as many as asked. */
				size_t total = 0, first_len = 0;
				for (int L = 1; L <= 4; L++) {
					if (want[L] && !first_len)
						first_len = (size_t)L;
					total += want[L];
				}
				kg_path_list_free(pl);
				pl = NULL;
				if (total > 1 && kg_find_paths(s, sa, sb, 4, 1, &pl) == 0) {
					if (pl->count != 1 || pl->items[0].n_edges != first_len)
						mismatches++;
				}
				kg_path_list_free(pl);
			}
		}
		CHECK(mismatches == 0);
		kg_close(s);
	}
}

static void test_subgraph(void)
{
	kg_store *s = open_fresh();
	add_e(s, "a", "T");
	add_e(s, "b", "T");
	add_e(s, "c", "T");
	add_r(s, "ab", "R", "a", "b");
	add_r(s, "ab2", "R", "a", "b");
	add_r(s, "bc", "R", "b", "c");
	add_r(s, "bb", "R", "b", "b");
	const char *ids[] = { "b", "zz", "a", "b" };
	kg_subgraph *g = NULL;
	CHECK_OK(s, kg_subgraph_get(s, ids, 4, &g));
	if (g) {
		CHECK(g->entities->count == 2);
		if (g->entities->count == 2) {
			CHECK_STR(g->entities->items[0]->id, "b");
			CHECK_STR(g->entities->items[1]->id, "a");
		}
		CHECK(g->relations->count == 3);
		CHECK(rel_list_has(g->relations, "ab") && rel_list_has(g->relations, "ab2") && rel_list_has(g->relations, "bb"));
		CHECK(!rel_list_has(g->relations, "bc"));
	}
	kg_subgraph_free(g);
	g = NULL;
	CHECK_OK(s, kg_subgraph_get(s, NULL, 0, &g));
	CHECK(g && g->entities->count == 0 && g->relations->count == 0);
	kg_subgraph_free(g);

	/* Batched get: found ones in the order asked, each once; a tenant's
	 * entity of the same id is not seen from the global namespace. */
	kg_store *t = NULL;
	CHECK_OK(s, kg_tenant(s, "batch_t", &t));
	if (t)
		add_e(t, "zz", "T");
	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_get_entities(s, ids, 4, &l));
	CHECK(l && l->count == 2 && !l->scores);
	if (l && l->count == 2) {
		CHECK_STR(l->items[0]->id, "b");
		CHECK_STR(l->items[1]->id, "a");
		CHECK_STR(l->items[1]->entity_type, "T");
	}
	kg_entity_list_free(l);
	l = NULL;
	if (t) {
		CHECK_OK(t, kg_get_entities(t, ids, 4, &l));
		CHECK(l && l->count == 1 && !strcmp(l->items[0]->id, "zz") && l->items[0]->tenant_id &&
		      !strcmp(l->items[0]->tenant_id, "batch_t"));
		kg_entity_list_free(l);
		l = NULL;
	}
	kg_close(t);
	CHECK_OK(s, kg_get_entities(s, NULL, 0, &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	const char *bad[] = { "a", "" };
	l = NULL;
	CHECK(kg_get_entities(s, bad, 2, &l) == KG_EINVAL && !l);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Listing and iteration                                                */
/* ------------------------------------------------------------------ */

static void test_listing(void)
{
	kg_store *s = open_fresh();
	char id[16];
	/* Ids that do not sort in insertion order, so order is really checked. */
	for (int i = 0; i < 25; i++) {
		snprintf(id, sizeof(id), "k%02d", (i * 7) % 25);
		add_e(s, id, i % 3 ? "Alpha" : "Beta");
	}
	kg_entity_list *all = NULL;
	CHECK_OK(s, kg_list_entities(s, NULL, 0, 0, &all));
	CHECK(all && all->count == 25);
	int order_ok = 1;
	for (size_t i = 0; all && i < all->count; i++) {
		snprintf(id, sizeof(id), "k%02d", (int)((i * 7) % 25));
		order_ok &= !strcmp(all->items[i]->id, id);
	}
	CHECK(order_ok);
	/* Pages of 4 put together give the same order. */
	size_t pos = 0;
	int pages_ok = 1;
	for (size_t off = 0; off < 30; off += 4) {
		kg_entity_list *page = NULL;
		if (kg_list_entities(s, NULL, 4, off, &page) != 0) {
			pages_ok = 0;
			break;
		}
		pages_ok &= page->count == (off + 4 <= 25 ? 4 : off < 25 ? 25 - off : 0);
		for (size_t i = 0; i < page->count && all; i++, pos++)
			pages_ok &= !strcmp(page->items[i]->id, all->items[pos]->id);
		kg_entity_list_free(page);
	}
	CHECK(pages_ok && pos == 25);
	kg_entity_list *beta = NULL;
	CHECK_OK(s, kg_list_entities(s, "Beta", 0, 0, &beta));
	CHECK(beta && beta->count == 9);
	int types_ok = 1;
	for (size_t i = 0; beta && i < beta->count; i++)
		types_ok &= !strcmp(beta->items[i]->entity_type, "Beta");
	CHECK(types_ok);
	kg_entity_list_free(beta);
	CHECK_OK(s, kg_list_entities(s, "Beta", 2, 8, &beta));
	CHECK(beta && beta->count == 1);
	kg_entity_list_free(beta);
	CHECK_OK(s, kg_list_entities(s, "Gamma", 0, 0, &beta));
	CHECK(beta && beta->count == 0);
	kg_entity_list_free(beta);

	/* Deleting keeps the order of the rest; updating does not move. */
	if (all && all->count == 25) {
		CHECK_OK(s, kg_delete_entity(s, all->items[3]->id));
		kg_entity upd = ent(all->items[5]->id, "Alpha", "{\"u\":1}");
		CHECK_OK(s, kg_update_entity(s, &upd));
		kg_entity_list *after = NULL;
		CHECK_OK(s, kg_list_entities(s, NULL, 0, 0, &after));
		CHECK(after && after->count == 24);
		int ok = 1;
		for (size_t i = 0, j = 0; after && i < all->count; i++) {
			if (i == 3)
				continue;
			ok &= j < after->count && !strcmp(after->items[j]->id, all->items[i]->id);
			j++;
		}
		CHECK(ok);
		kg_entity_list_free(after);
	}
	kg_entity_list_free(all);

	/* Iterators: everything, in insertion order, then the end. */
	kg_entity_iter *it = NULL;
	CHECK_OK(s, kg_entity_iter_new(s, NULL, &it));
	size_t n = 0;
	const kg_entity *e;
	int rc;
	while ((rc = kg_entity_iter_next(it, &e)) == 1)
		n++;
	CHECK(rc == 0 && n == 24);
	kg_entity_iter_free(it);
	CHECK_OK(s, kg_entity_iter_new(s, "Beta", &it));
	n = 0;
	while ((rc = kg_entity_iter_next(it, &e)) == 1) {
		n++;
		CHECK_STR(e->entity_type, "Beta");
	}
	CHECK(rc == 0 && n == 8); /* 9 Beta, less the one deleted above */
	kg_entity_iter_free(it);

	add_e(s, "x", "T");
	add_e(s, "y", "T");
	add_r(s, "r1", "A", "x", "y");
	add_r(s, "r2", "B", "y", "x");
	add_r(s, "r3", "A", "x", "x");
	kg_relation_iter *ri = NULL;
	CHECK_OK(s, kg_relation_iter_new(s, NULL, &ri));
	const kg_relation *r;
	const char *expect[] = { "r1", "r2", "r3" };
	n = 0;
	while ((rc = kg_relation_iter_next(ri, &r)) == 1) {
		if (n < 3)
			CHECK_STR(r->id, expect[n]);
		n++;
	}
	CHECK(rc == 0 && n == 3);
	kg_relation_iter_free(ri);
	CHECK_OK(s, kg_relation_iter_new(s, "A", &ri));
	n = 0;
	while (kg_relation_iter_next(ri, &r) == 1)
		n++;
	CHECK(n == 2);
	kg_relation_iter_free(ri);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Search                                                               */
/* ------------------------------------------------------------------ */

static void test_vector_search(void)
{
	kg_store *s = open_fresh();
	float v[5][3] = { { 1, 0, 0 }, { 0.9f, 0.1f, 0 }, { 0, 1, 0 }, { -1, 0, 0 }, { 1, 0, 0 } };
	const char *ids[] = { "east", "east-ish", "north", "west", "east-too" };
	for (int i = 0; i < 5; i++) {
		kg_entity e = ent(ids[i], i == 4 ? "Other" : "Dir", "{}");
		e.embedding = v[i];
		e.embedding_dim = 3;
		CHECK_OK(s, kg_add_entity(s, &e));
	}
	add_e(s, "no-vector", "Dir");
	float q[3] = { 1, 0, 0 };
	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_vector_search(s, q, 3, NULL, 10, -1.0, &l));
	CHECK(l && l->count == 5 && l->scores);
	if (l && l->count == 5 && l->scores) {
		CHECK_STR(l->items[0]->id, "east"); /* tie with east-too: insertion order */
		CHECK_STR(l->items[1]->id, "east-too");
		CHECK_STR(l->items[2]->id, "east-ish");
		CHECK_STR(l->items[4]->id, "west");
		CHECK(fabs(l->scores[0] - 1.0) < 1e-6 && fabs(l->scores[4] + 1.0) < 1e-6);
		CHECK(fabs(l->scores[3]) < 1e-6);
	}
	kg_entity_list_free(l);
	CHECK_OK(s, kg_vector_search(s, q, 3, NULL, 2, -1.0, &l));
	CHECK(l && l->count == 2);
	kg_entity_list_free(l);
	CHECK_OK(s, kg_vector_search(s, q, 3, NULL, 10, 0.5, &l));
	CHECK(l && l->count == 3);
	kg_entity_list_free(l);
	CHECK_OK(s, kg_vector_search(s, q, 3, "Dir", 10, 0.5, &l));
	CHECK(l && l->count == 2 && !list_has_entity(l, "east-too"));
	kg_entity_list_free(l);
	float q4[4] = { 1, 0, 0, 0 };
	CHECK_RC(s, kg_vector_search(s, q4, 4, NULL, 10, 0.0, &l), KG_EINVAL);
	CHECK(strstr(kg_errmsg(s), "dimension") != NULL);
	CHECK_RC(s, kg_vector_search(s, q, 3, NULL, 0, 0.0, &l), KG_EINVAL);
	kg_close(s);

	s = open_fresh();
	CHECK_OK(s, kg_vector_search(s, q, 3, NULL, 5, 0.0, &l)); /* empty store */
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	kg_close(s);
}

static void test_text_search(void)
{
	kg_store *s = open_fresh();
	kg_entity docs[] = {
		ent("d1", "Doc", "{\"title\":\"The quick brown fox\"}"),
		ent("d2", "Doc", "{\"title\":\"quick quick fox jumps\",\"meta\":{\"tags\":[\"animal\"]}}"),
		ent("d3", "Doc", "{\"title\":\"lazy dog sleeps\",\"n\":5}"),
		ent("d4", "Note", "{\"body\":\"a fox note\"}"),
	};
	CHECK_OK(s, kg_add_entities(s, docs, 4, 0, NULL));
	kg_text_method methods[] = { KG_TEXT_BM25, KG_TEXT_JACCARD, KG_TEXT_COSINE, KG_TEXT_LEVENSHTEIN };
	for (int m = 0; m < 4; m++) {
		kg_entity_list *l = NULL;
		CHECK_OK(s, kg_text_search(s, "lazy dog", NULL, 10, 0.0, methods[m], &l));
		CHECK(l && l->count >= 1 && l->scores);
		if (l && l->count >= 1 && l->scores) {
			CHECK_STR(l->items[0]->id, "d3");
			int ok = 1;
			for (size_t i = 0; i < l->count; i++) {
				ok &= l->scores[i] > 0.0 && l->scores[i] <= 1.0;
				if (i)
					ok &= l->scores[i] <= l->scores[i - 1];
			}
			CHECK(ok);
		}
		kg_entity_list_free(l);
		CHECK_OK(s, kg_text_search(s, "fox", "Doc", 10, 0.0, methods[m], &l));
		if (l) {
			CHECK(!list_has_entity(l, "d4"));
			if (methods[m] != KG_TEXT_LEVENSHTEIN)
				CHECK(l->count == 2 && !list_has_entity(l, "d3"));
		}
		kg_entity_list_free(l);
		CHECK_OK(s, kg_text_search(s, "fox", NULL, 1, 0.0, methods[m], &l));
		CHECK(l && l->count == 1);
		kg_entity_list_free(l);
		CHECK_OK(s, kg_text_search(s, "lazy dog", NULL, 10, 0.999999, methods[m], &l));
		CHECK(l && l->count <= 1);
		kg_entity_list_free(l);
	}
	kg_entity_list *l = NULL;
	/* Term frequency counts for bm25 and cosine: d2 says "quick" twice. */
	CHECK_OK(s, kg_text_search(s, "quick", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	CHECK(l && l->count == 2 && !strcmp(l->items[0]->id, "d2"));
	kg_entity_list_free(l);
	CHECK_OK(s, kg_text_search(s, "animal", NULL, 10, 0.0, KG_TEXT_JACCARD, &l)); /* nested values count */
	CHECK(l && l->count == 1 && !strcmp(l->items[0]->id, "d2"));
	kg_entity_list_free(l);
	CHECK_OK(s, kg_text_search(s, "lazzy", NULL, 10, 0.0, KG_TEXT_LEVENSHTEIN, &l)); /* typo */
	CHECK(l && l->count >= 1 && !strcmp(l->items[0]->id, "d3"));
	kg_entity_list_free(l);
	CHECK_OK(s, kg_text_search(s, "zebra", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	CHECK_RC(s, kg_text_search(s, "  ,. ", NULL, 10, 0.0, KG_TEXT_BM25, &l), KG_EINVAL);
	CHECK_RC(s, kg_text_search(s, "fox", NULL, 10, 0.0, (kg_text_method)9, &l), KG_EINVAL);
	kg_close(s);
}

static void test_property_lookup(void)
{
	kg_store *s = open_fresh();
	kg_entity e[] = {
		ent("p1", "P", "{\"name\":\"Alice\",\"age\":30}"),
		ent("p2", "P", "{\"name\":\"Bob\",\"age\":30}"),
		ent("p3", "P", "{\"name\":\"Alice\",\"age\":41}"),
		ent("p4", "P", "{\"other\":true}"),
	};
	CHECK_OK(s, kg_add_entities(s, e, 4, 0, NULL));
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			CHECK_OK(s, kg_add_indexed_property(s, "name"));
		kg_entity_list *l = NULL;
		CHECK_OK(s, kg_lookup_by_property(s, "name", "\"Alice\"", &l));
		CHECK(l && l->count == 2 && list_has_entity(l, "p1") && list_has_entity(l, "p3"));
		kg_entity_list_free(l);
		CHECK_OK(s, kg_lookup_by_property(s, "age", "30", &l));
		CHECK(l && l->count == 2 && list_has_entity(l, "p2"));
		kg_entity_list_free(l);
		CHECK_OK(s, kg_lookup_by_property(s, "name", "\"Carol\"", &l));
		CHECK(l && l->count == 0);
		kg_entity_list_free(l);
		CHECK_RC(s, kg_lookup_by_property(s, "name", "{bad", &l), KG_EINVAL);
	}
	kg_entity upd = ent("p3", "P", "{\"name\":\"Carol\"}");
	CHECK_OK(s, kg_update_entity(s, &upd));
	CHECK_OK(s, kg_delete_entity(s, "p1"));
	kg_entity_list *l = NULL;
	CHECK_OK(s, kg_lookup_by_property(s, "name", "\"Alice\"", &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	CHECK_OK(s, kg_lookup_by_property(s, "name", "\"Carol\"", &l));
	CHECK(l && l->count == 1);
	kg_entity_list_free(l);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Stats, clear, transactions                                           */
/* ------------------------------------------------------------------ */

static void test_stats_and_clear(void)
{
	kg_store *s = open_fresh();
	kg_stats *st = NULL;
	CHECK_OK(s, kg_get_stats(s, &st));
	CHECK(st && st->entity_count == 0 && st->relation_count == 0 && st->n_entity_types == 0);
	/* The backend that holds the data (behind the degradation wrapper: its
	 * primary's, while the primary is up). */
	if (st)
		CHECK_STR(st->backend, kg_degrade_is(s) ? "memory" : kg_backend_name(s));
	kg_stats_free(st);
	add_e(s, "a", "Zeta");
	add_e(s, "b", "Alpha");
	add_e(s, "c", "Alpha");
	add_r(s, "r1", "KNOWS", "a", "b");
	add_r(s, "r2", "KNOWS", "b", "c");
	add_r(s, "r3", "HAS", "a", "c");
	CHECK_OK(s, kg_get_stats(s, &st));
	if (st) {
		CHECK(st->entity_count == 3 && st->relation_count == 3);
		CHECK(st->n_entity_types == 2 && st->n_relation_types == 2);
		if (st->n_entity_types == 2) {
			CHECK_STR(st->entity_types[0].type, "Alpha");
			CHECK(st->entity_types[0].count == 2);
			CHECK_STR(st->entity_types[1].type, "Zeta");
		}
		if (st->n_relation_types == 2) {
			CHECK_STR(st->relation_types[0].type, "HAS");
			CHECK(st->relation_types[1].count == 2);
		}
	}
	kg_stats_free(st);
	CHECK_OK(s, kg_clear(s));
	CHECK(entity_count(s) == 0 && relation_count(s) == 0);
	kg_entity *e = NULL;
	CHECK_RC(s, kg_get_entity(s, "a", &e), KG_ENOTFOUND);
	CHECK_OK(s, add_e(s, "a", "Zeta")); /* usable after clear */
	kg_close(s);
}

static void test_transactions(void)
{
	kg_store *s = open_fresh();
	add_e(s, "keep", "T");
	kg_store *t = NULL;
	int rc = kg_begin(s, &t);
	if (rc == KG_EUNSUPPORTED) { /* allowed, but then it must say so */
		CHECK(strlen(kg_errmsg(s)) > 0);
		kg_close(s);
		return;
	}
	CHECK(rc == 0 && t);
	if (!t) {
		kg_close(s);
		return;
	}
	CHECK_OK(t, add_e(t, "tmp1", "T"));
	CHECK_OK(t, add_e(t, "tmp2", "T"));
	CHECK_OK(t, add_r(t, "tr", "R", "tmp1", "keep"));
	CHECK_OK(t, kg_delete_entity(t, "keep"));
	kg_entity *e = NULL;
	CHECK_OK(t, kg_get_entity(t, "tmp1", &e)); /* own writes are visible */
	kg_entity_free(e);
	e = NULL;
	kg_store *nested = NULL;
	CHECK_RC(t, kg_begin(t, &nested), KG_EINVAL);
	CHECK_OK(s, kg_rollback(t));
	CHECK_RC(s, kg_get_entity(s, "tmp1", &e), KG_ENOTFOUND);
	CHECK_OK(s, kg_get_entity(s, "keep", &e)); /* the delete was undone */
	kg_entity_free(e);
	e = NULL;
	CHECK(entity_count(s) == 1 && relation_count(s) == 0);

	CHECK_OK(s, kg_begin(s, &t));
	CHECK_OK(t, add_e(t, "c1", "T"));
	CHECK_OK(t, add_r(t, "cr", "R", "c1", "keep"));
	kg_entity upd = ent("keep", "Changed", "{}");
	CHECK_OK(t, kg_update_entity(t, &upd));
	CHECK_OK(s, kg_commit(t));
	CHECK_OK(s, kg_get_entity(s, "c1", &e));
	kg_entity_free(e);
	e = NULL;
	CHECK_OK(s, kg_get_entity(s, "keep", &e));
	if (e)
		CHECK_STR(e->entity_type, "Changed");
	kg_entity_free(e);
	e = NULL;
	CHECK(relation_count(s) == 1);

	/* Closing an open transaction rolls it back. */
	CHECK_OK(s, kg_begin(s, &t));
	CHECK_OK(t, add_e(t, "gone", "T"));
	kg_close(t);
	CHECK_RC(s, kg_get_entity(s, "gone", &e), KG_ENOTFOUND);

	/* A failing call inside a transaction leaves the transaction usable. */
	CHECK_OK(s, kg_begin(s, &t));
	CHECK_RC(t, add_e(t, "keep", "T"), KG_EEXISTS);
	CHECK_OK(t, add_e(t, "after-error", "T"));
	CHECK_OK(s, kg_commit(t));
	CHECK_OK(s, kg_get_entity(s, "after-error", &e));
	kg_entity_free(e);

	/* Transactions on a tenant view stay in the tenant. */
	kg_store *v = NULL;
	CHECK_OK(s, kg_tenant(s, "txn-tenant", &v));
	CHECK_OK(v, kg_begin(v, &t));
	CHECK_OK(t, add_e(t, "tv", "T"));
	CHECK_STR(kg_tenant_id(t), "txn-tenant");
	CHECK_OK(v, kg_commit(t));
	e = NULL;
	CHECK_OK(v, kg_get_entity(v, "tv", &e));
	kg_entity_free(e);
	e = NULL;
	CHECK_RC(s, kg_get_entity(s, "tv", &e), KG_ENOTFOUND);
	kg_close(v);

	/* One transaction across tenants: views of the transaction handle. */
	kg_store *tv = NULL, *other = NULL;
	CHECK_OK(s, kg_begin(s, &t));
	CHECK_OK(t, kg_tenant(t, "txn-a", &tv));
	CHECK_OK(t, kg_tenant(t, "txn-b", &other));
	if (tv && other) {
		CHECK_OK(tv, add_e(tv, "xa", "T"));
		CHECK_OK(other, add_e(other, "xb", "T"));
		CHECK_OK(t, add_e(t, "xg", "T"));
		CHECK_RC(tv, kg_get_entity(tv, "xb", &e), KG_ENOTFOUND); /* still one tenant each */
		CHECK_OK(tv, kg_get_entity(tv, "xa", &e));
		if (e)
			CHECK_STR(e->tenant_id, "txn-a");
		kg_entity_free(e);
		e = NULL;
		kg_store *inner = NULL, *vv = NULL;
		CHECK_RC(tv, kg_begin(tv, &inner), KG_EINVAL);
		CHECK_RC(tv, kg_tenant(tv, "txn-c", &vv), KG_EINVAL);
	}
	kg_close(tv);
	kg_close(other);
	CHECK_OK(s, kg_rollback(t)); /* all three namespaces go back */
	CHECK_OK(s, kg_tenant(s, "txn-a", &v));
	CHECK_RC(v, kg_get_entity(v, "xa", &e), KG_ENOTFOUND);
	CHECK_RC(s, kg_get_entity(s, "xg", &e), KG_ENOTFOUND);

	CHECK_OK(s, kg_begin(s, &t));
	CHECK_OK(t, kg_tenant(t, "txn-a", &tv));
	if (tv)
		CHECK_OK(tv, add_e(tv, "xa", "T"));
	CHECK_OK(s, kg_commit(t)); /* with the view still open: it stops working */
	if (tv)
		CHECK_RC(tv, add_e(tv, "late", "T"), KG_EINVAL);
	kg_close(tv);
	CHECK_OK(v, kg_get_entity(v, "xa", &e));
	kg_entity_free(e);
	e = NULL;
	CHECK_RC(v, kg_get_entity(v, "late", &e), KG_ENOTFOUND);
	kg_close(v);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Tenants                                                              */
/* ------------------------------------------------------------------ */

static void test_tenants(void)
{
	kg_store *s = open_fresh();
	kg_store *v = NULL;
	char long_id[300];
	memset(long_id, 'x', 256);
	long_id[256] = '\0';
	const char *bad[] = { "", "a b", "x/y", "a;drop table", "ä", "t.1", "'", long_id };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_RC(s, kg_tenant(s, bad[i], &v), KG_EINVAL);
		CHECK(v == NULL);
	}
	CHECK_RC(s, kg_tenant(s, NULL, &v), KG_EINVAL);
	long_id[255] = '\0';
	CHECK_OK(s, kg_tenant(s, long_id, &v)); /* 255 is fine */
	kg_close(v);

	kg_store *t1 = NULL, *t2 = NULL, *t3 = NULL;
	CHECK_OK(s, kg_tenant(s, "a-b", &t1));
	CHECK_OK(s, kg_tenant(s, "a_b", &t2)); /* distinct from a-b */
	CHECK_OK(s, kg_tenant(s, "other", &t3));
	if (!t1 || !t2 || !t3) {
		kg_close(t1);
		kg_close(t2);
		kg_close(t3);
		kg_close(s);
		return;
	}
	float v1[2] = { 1, 0 };
	kg_entity e1 = ent("shared-id", "Person", "{\"name\":\"one fox\"}");
	e1.embedding = v1;
	e1.embedding_dim = 2;
	CHECK_OK(t1, kg_add_entity(t1, &e1));
	kg_entity e2 = ent("shared-id", "Robot", "{\"name\":\"two fox\"}");
	e2.embedding = v1;
	e2.embedding_dim = 2;
	CHECK_OK(t2, kg_add_entity(t2, &e2));
	CHECK_OK(s, add_e(s, "shared-id", "Global"));
	CHECK_OK(t1, add_e(t1, "only1", "Person"));
	CHECK_OK(t2, add_e(t2, "only2", "Robot"));
	CHECK_OK(t1, add_r(t1, "rel", "KNOWS", "shared-id", "only1"));
	/* No relation may cross tenants. */
	CHECK_RC(t1, add_r(t1, "cross", "KNOWS", "shared-id", "only2"), KG_ENOTFOUND);
	CHECK_RC(s, add_r(s, "cross", "KNOWS", "shared-id", "only1"), KG_ENOTFOUND);

	kg_entity *got = NULL;
	CHECK_OK(t2, kg_get_entity(t2, "shared-id", &got));
	if (got) {
		CHECK_STR(got->entity_type, "Robot");
		CHECK_STR(got->tenant_id, "a_b");
	}
	kg_entity_free(got);
	got = NULL;
	CHECK_OK(s, kg_get_entity(s, "shared-id", &got));
	if (got) {
		CHECK_STR(got->entity_type, "Global");
		CHECK(got->tenant_id == NULL);
	}
	kg_entity_free(got);
	got = NULL;
	CHECK_RC(t3, kg_get_entity(t3, "shared-id", &got), KG_ENOTFOUND);
	CHECK_RC(t1, kg_get_entity(t1, "only2", &got), KG_ENOTFOUND);
	kg_relation *r = NULL;
	CHECK_RC(t2, kg_get_relation(t2, "rel", &r), KG_ENOTFOUND);
	CHECK_RC(s, kg_get_relation(s, "rel", &r), KG_ENOTFOUND);
	CHECK_RC(t2, kg_delete_relation(t2, "rel"), KG_ENOTFOUND);
	CHECK_RC(t2, kg_delete_entity(t2, "only1"), KG_ENOTFOUND);

	kg_entity_list *l = NULL;
	CHECK_OK(t2, kg_neighbors(t2, "shared-id", NULL, KG_BOTH, &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	CHECK_OK(t1, kg_neighbors(t1, "shared-id", NULL, KG_BOTH, &l));
	CHECK(l && l->count == 1);
	kg_entity_list_free(l);
	kg_path_list *pl = NULL;
	CHECK_OK(t2, kg_traverse(t2, "shared-id", NULL, 3, 0, &pl));
	CHECK(pl && pl->count == 0);
	kg_path_list_free(pl);
	CHECK_RC(t2, kg_find_paths(t2, "shared-id", "only1", 3, 0, &pl), KG_ENOTFOUND);
	CHECK_OK(t2, kg_list_entities(t2, NULL, 0, 0, &l));
	CHECK(l && l->count == 2 && list_has_entity(l, "only2") && !list_has_entity(l, "only1"));
	kg_entity_list_free(l);
	CHECK_OK(t3, kg_list_entities(t3, NULL, 0, 0, &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	CHECK_OK(t2, kg_vector_search(t2, v1, 2, NULL, 10, -1.0, &l));
	CHECK(l && l->count == 1 && !strcmp(l->items[0]->entity_type, "Robot"));
	kg_entity_list_free(l);
	CHECK_OK(t2, kg_text_search(t2, "fox", NULL, 10, 0.0, KG_TEXT_JACCARD, &l));
	CHECK(l && l->count == 1);
	kg_entity_list_free(l);
	CHECK_OK(t3, kg_text_search(t3, "fox", NULL, 10, 0.0, KG_TEXT_BM25, &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	CHECK_OK(t2, kg_lookup_by_property(t2, "name", "\"one fox\"", &l));
	CHECK(l && l->count == 0);
	kg_entity_list_free(l);
	CHECK(entity_count(t1) == 2 && relation_count(t1) == 1);
	CHECK(entity_count(t2) == 2 && relation_count(t2) == 0);
	CHECK(entity_count(s) == 1);
	kg_entity_iter *it = NULL;
	CHECK_OK(t2, kg_entity_iter_new(t2, NULL, &it));
	const kg_entity *ie;
	size_t n = 0;
	while (kg_entity_iter_next(it, &ie) == 1) {
		n++;
		CHECK_STR(ie->tenant_id, "a_b");
	}
	CHECK(n == 2);
	kg_entity_iter_free(it);

	char **tenants = NULL;
	size_t nt = 0;
	CHECK_OK(s, kg_list_tenants(s, &tenants, &nt));
	CHECK(nt == 2);
	if (nt == 2) {
		CHECK_STR(tenants[0], "a-b");
		CHECK_STR(tenants[1], "a_b");
	}
	free(tenants);

	/* Clearing one tenant leaves the others. */
	CHECK_OK(t2, kg_clear(t2));
	CHECK(entity_count(t2) == 0);
	CHECK(entity_count(t1) == 2 && relation_count(t1) == 1);
	CHECK(entity_count(s) == 1);
	CHECK_OK(s, kg_clear(s));
	CHECK(entity_count(t1) == 2);

	/* Many tenants: none evicted (the original dropped data past 100). */
	char tid[32];
	for (int i = 0; i < 150; i++) {
		kg_store *tv = NULL;
		snprintf(tid, sizeof(tid), "many-%d", i);
		if (kg_tenant(s, tid, &tv) == 0)
			add_e(tv, "x", "T");
		kg_close(tv);
	}
	int all_there = 1;
	for (int i = 0; i < 150; i++) {
		kg_store *tv = NULL;
		snprintf(tid, sizeof(tid), "many-%d", i);
		all_there &= kg_tenant(s, tid, &tv) == 0 && entity_count(tv) == 1;
		kg_close(tv);
	}
	CHECK(all_there);
	kg_close(t1);
	kg_close(t2);
	kg_close(t3);
	kg_close(s);
}


/* ------------------------------------------------------------------ */
/* Tenants sharing ids: every operation stays in its namespace          */
/* ------------------------------------------------------------------ */

/*
 * The same ids in three namespaces (the global one and tenants iso-a and
 * iso-b), joined differently in each, so a query answered from the wrong
 * namespace gives a different answer:
 *   global  r1: x->y
 *   iso-a   r1: x->y, r2: y->z
 *   iso-b   r1: x->z, r2: z->w (type F), r3: x->y
 * Types: global x y z w all T; iso-a x T, the rest U; iso-b all U.
 */
enum { NS_G, NS_A, NS_B, NS_N };
static const char *const iso_names[NS_N] = { "global", "iso-a", "iso-b" };

static void iso_build(kg_store *ns[NS_N])
{
	static const char *const xprops[NS_N] = { "{\"k\":\"g\",\"t\":\"apple\"}", "{\"k\":\"a\",\"t\":\"apple banana\"}",
		                                      "{\"k\":\"b\",\"t\":\"cherry\"}" };
	static const float emb[NS_N][2] = { { 1, 0 }, { 0, 1 }, { 0, 0 } };
	static const char *const ids[4] = { "x", "y", "z", "w" };
	for (int n = 0; n < NS_N; n++) {
		for (int i = 0; i < 4; i++) {
			kg_entity e = ent(ids[i], (n == NS_G || (n == NS_A && i == 0)) ? "T" : "U", i ? "{}" : xprops[n]);
			if (i == 0 && n != NS_B) {
				e.embedding = emb[n];
				e.embedding_dim = 2;
			}
			CHECK_OK(ns[n], kg_add_entity(ns[n], &e));
		}
	}
	CHECK_OK(ns[NS_G], add_r(ns[NS_G], "r1", "E", "x", "y"));
	CHECK_OK(ns[NS_A], add_r(ns[NS_A], "r1", "E", "x", "y"));
	CHECK_OK(ns[NS_A], add_r(ns[NS_A], "r2", "E", "y", "z"));
	CHECK_OK(ns[NS_B], add_r(ns[NS_B], "r1", "E", "x", "z"));
	CHECK_OK(ns[NS_B], add_r(ns[NS_B], "r2", "F", "z", "w"));
	CHECK_OK(ns[NS_B], add_r(ns[NS_B], "r3", "E", "x", "y"));
}

/* The paths of a list as text: "x-r1-y x-r1-y-r2-z". */
static void paths_text(const kg_path_list *pl, char *buf, size_t cap)
{
	size_t at = 0;
	buf[0] = '\0';
	for (size_t i = 0; pl && i < pl->count && at < cap; i++) {
		const kg_path *p = &pl->items[i];
		at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? " " : "", p->nodes[0]->id);
		for (size_t k = 0; k < p->n_edges && at < cap; k++)
			at += (size_t)snprintf(buf + at, cap - at, "-%s-%s", p->edges[k]->id, p->nodes[k + 1]->id);
	}
}

/* The ids of an entity list as text, in its order: "x y". */
static void ids_text(const kg_entity_list *l, char *buf, size_t cap)
{
	size_t at = 0;
	buf[0] = '\0';
	for (size_t i = 0; l && i < l->count && at < cap; i++)
		at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? " " : "", l->items[i]->id);
}

/* The ids of an entity list, sorted, as text (for answers in no set order). */
static void sorted_ids_text(const kg_entity_list *l, char *buf, size_t cap)
{
	const char *ids[16];
	size_t n = 0;
	for (size_t i = 0; l && i < l->count && n < 16; i++)
		ids[n++] = l->items[i]->id;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
			const char *t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	size_t at = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && at < cap; i++)
		at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? " " : "", ids[i]);
}

static void rels_text(const kg_relation_list *l, char *buf, size_t cap)
{
	size_t at = 0;
	buf[0] = '\0';
	for (size_t i = 0; l && i < l->count && at < cap; i++)
		at += (size_t)snprintf(buf + at, cap - at, "%s%s:%s>%s", i ? " " : "", l->items[i]->id,
		                       l->items[i]->source_id, l->items[i]->target_id);
}

/* Every read, in every namespace, answers from that namespace only. */
static void iso_check_reads(kg_store *ns[NS_N])
{
	char got[512];
	static const char *const trav[NS_N] = { "x-r1-y", "x-r1-y x-r1-y-r2-z", "x-r1-z x-r3-y x-r1-z-r2-w" };
	static const char *const trav_e[NS_N] = { "x-r1-y", "x-r1-y x-r1-y-r2-z", "x-r1-z x-r3-y" };
	static const char *const paths_xz[NS_N] = { "", "x-r1-y-r2-z", "x-r1-z" };
	static const char *const paths_xw[NS_N] = { "", "", "x-r1-z-r2-w" };
	static const char *const nb_x_out[NS_N] = { "y", "y", "y z" };
	static const char *const nb_y_both[NS_N] = { "x", "x z", "x" };
	static const char *const nb_z_in[NS_N] = { "", "y", "x" };
	static const char *const rel_x[NS_N] = { "r1:x>y", "r1:x>y", "r1:x>z r3:x>y" };
	static const char *const rel_z[NS_N] = { "", "r2:y>z", "r1:x>z r2:z>w" };
	static const char *const sub_rels[NS_N] = { "r1:x>y", "r1:x>y r2:y>z", "r1:x>z r2:z>w r3:x>y" };
	static const char *const type_t[NS_N] = { "x y z w", "x", "" };
	static const size_t n_type_u[NS_N] = { 0, 3, 4 };
	static const size_t n_rel_f[NS_N] = { 0, 0, 1 };
	static const char *const vec_10[NS_N] = { "x", "", "" };
	static const char *const vec_01[NS_N] = { "", "x", "" };
	static const char *const apple[NS_N] = { "x", "x", "" };
	static const char *const cherry[NS_N] = { "", "", "x" };
	static const char *const k_a[NS_N] = { "", "x", "" };
	static const char *const xk[NS_N] = { "g", "a", "b" };
	static const size_t counts[NS_N][2] = { { 4, 1 }, { 4, 2 }, { 4, 3 } };
	const char *const all[] = { "w", "x", "y", "z" };
	for (int n = 0; n < NS_N; n++) {
		kg_store *s = ns[n];
		th_current = iso_names[n];
		kg_path_list *pl = NULL;
		CHECK_OK(s, kg_traverse(s, "x", NULL, 5, 0, &pl));
		paths_text(pl, got, sizeof got);
		CHECK_STR(got, trav[n]);
		kg_path_list_free(pl);
		pl = NULL;
		CHECK_OK(s, kg_traverse(s, "x", "E", 5, 0, &pl));
		paths_text(pl, got, sizeof got);
		CHECK_STR(got, trav_e[n]);
		kg_path_list_free(pl);
		pl = NULL;
		CHECK_OK(s, kg_find_paths(s, "x", "z", 5, 0, &pl));
		paths_text(pl, got, sizeof got);
		CHECK_STR(got, paths_xz[n]);
		kg_path_list_free(pl);
		pl = NULL;
		CHECK_OK(s, kg_find_paths(s, "x", "w", 5, 0, &pl));
		paths_text(pl, got, sizeof got);
		CHECK_STR(got, paths_xw[n]);
		kg_path_list_free(pl);

		kg_entity_list *l = NULL;
		CHECK_OK(s, kg_neighbors(s, "x", NULL, KG_OUT, &l));
		sorted_ids_text(l, got, sizeof got);
		CHECK_STR(got, nb_x_out[n]);
		kg_entity_list_free(l);
		l = NULL;
		CHECK_OK(s, kg_neighbors(s, "y", NULL, KG_BOTH, &l));
		sorted_ids_text(l, got, sizeof got);
		CHECK_STR(got, nb_y_both[n]);
		kg_entity_list_free(l);
		l = NULL;
		CHECK_OK(s, kg_neighbors(s, "z", NULL, KG_IN, &l));
		sorted_ids_text(l, got, sizeof got);
		CHECK_STR(got, nb_z_in[n]);
		kg_entity_list_free(l);
		l = NULL;

		kg_relation_list *rl = NULL;
		CHECK_OK(s, kg_relations_of(s, "x", NULL, KG_BOTH, &rl));
		rels_text(rl, got, sizeof got);
		CHECK_STR(got, rel_x[n]);
		kg_relation_list_free(rl);
		rl = NULL;
		CHECK_OK(s, kg_relations_of(s, "z", NULL, KG_BOTH, &rl));
		rels_text(rl, got, sizeof got);
		CHECK_STR(got, rel_z[n]);
		kg_relation_list_free(rl);

		kg_subgraph *g = NULL;
		CHECK_OK(s, kg_subgraph_get(s, all, 4, &g));
		if (g) {
			ids_text(g->entities, got, sizeof got);
			CHECK_STR(got, "w x y z");
			/* relations in no set order: sort by id through a copy */
			kg_relation_list *r = g->relations;
			for (size_t i = 1; i < r->count; i++)
				for (size_t j = i; j > 0 && strcmp(r->items[j - 1]->id, r->items[j]->id) > 0; j--) {
					kg_relation *t = r->items[j];
					r->items[j] = r->items[j - 1];
					r->items[j - 1] = t;
				}
			rels_text(r, got, sizeof got);
			CHECK_STR(got, sub_rels[n]);
			for (size_t i = 0; i < g->entities->count; i++)
				if (!strcmp(g->entities->items[i]->id, "x")) {
					json_t *p = json_loads(g->entities->items[i]->properties, 0, NULL);
					CHECK_STR(json_string_value(json_object_get(p, "k")), xk[n]);
					json_decref(p);
				}
		}
		kg_subgraph_free(g);
		CHECK_OK(s, kg_get_entities(s, all, 4, &l));
		CHECK(l && l->count == 4);
		for (size_t i = 0; l && i < l->count; i++) {
			if (strcmp(l->items[i]->id, "x") != 0)
				continue;
			json_t *p = json_loads(l->items[i]->properties, 0, NULL);
			CHECK_STR(json_string_value(json_object_get(p, "k")), xk[n]);
			json_decref(p);
			CHECK(n == NS_G ? l->items[i]->tenant_id == NULL
			                : l->items[i]->tenant_id && !strcmp(l->items[i]->tenant_id, iso_names[n]));
		}
		kg_entity_list_free(l);
		l = NULL;

		CHECK_OK(s, kg_list_entities(s, "T", 0, 0, &l));
		ids_text(l, got, sizeof got);
		CHECK_STR(got, type_t[n]);
		kg_entity_list_free(l);
		l = NULL;
		CHECK_OK(s, kg_list_entities(s, NULL, 2, 1, &l));
		ids_text(l, got, sizeof got);
		CHECK_STR(got, "y z");
		kg_entity_list_free(l);
		l = NULL;
		kg_entity_iter *ei = NULL;
		const kg_entity *e;
		size_t cnt = 0;
		CHECK_OK(s, kg_entity_iter_new(s, "U", &ei));
		while (ei && kg_entity_iter_next(ei, &e) == 1)
			cnt++;
		kg_entity_iter_free(ei);
		CHECK(cnt == n_type_u[n]);
		kg_relation_iter *ri = NULL;
		const kg_relation *r;
		cnt = 0;
		CHECK_OK(s, kg_relation_iter_new(s, "F", &ri));
		while (ri && kg_relation_iter_next(ri, &r) == 1)
			cnt++;
		kg_relation_iter_free(ri);
		CHECK(cnt == n_rel_f[n]);

		const float q10[2] = { 1, 0 }, q01[2] = { 0, 1 };
		CHECK_OK(s, kg_vector_search(s, q10, 2, NULL, 10, 0.5, &l));
		ids_text(l, got, sizeof got);
		CHECK_STR(got, vec_10[n]);
		kg_entity_list_free(l);
		l = NULL;
		CHECK_OK(s, kg_vector_search(s, q01, 2, NULL, 10, 0.5, &l));
		ids_text(l, got, sizeof got);
		CHECK_STR(got, vec_01[n]);
		kg_entity_list_free(l);
		l = NULL;
		for (int m = KG_TEXT_BM25; m <= KG_TEXT_LEVENSHTEIN; m++) {
			/* Levenshtein scores similar tokens too: only exact ones here. */
			double th = m == KG_TEXT_LEVENSHTEIN ? 0.999 : 0.0;
			CHECK_OK(s, kg_text_search(s, "apple", NULL, 10, th, (kg_text_method)m, &l));
			ids_text(l, got, sizeof got);
			CHECK_STR(got, apple[n]);
			kg_entity_list_free(l);
			l = NULL;
			CHECK_OK(s, kg_text_search(s, "cherry", NULL, 10, th, (kg_text_method)m, &l));
			ids_text(l, got, sizeof got);
			CHECK_STR(got, cherry[n]);
			kg_entity_list_free(l);
			l = NULL;
		}
		CHECK_OK(s, kg_lookup_by_property(s, "k", "\"a\"", &l));
		ids_text(l, got, sizeof got);
		CHECK_STR(got, k_a[n]);
		kg_entity_list_free(l);
		l = NULL;
		CHECK(entity_count(s) == counts[n][0] && relation_count(s) == counts[n][1]);
	}
	th_current = "test_tenant_isolation";
}

/* Runs `op` on namespace `which`, which must succeed; the other two must be
 * left exactly as they were. */
typedef int (*iso_op)(kg_store *s);

static void iso_only(kg_store *ns[NS_N], int which, iso_op op, const char *what)
{
	char *before[NS_N];
	for (int n = 0; n < NS_N; n++)
		before[n] = ns_state(ns[n]);
	int rc = op(ns[which]);
	CHECK_MSG(rc == 0, "%s in %s: %d %s", what, iso_names[which], rc, kg_errmsg(ns[which]));
	for (int n = 0; n < NS_N; n++) {
		char *after = ns_state(ns[n]);
		if (n != which)
			CHECK_MSG(state_same(after, before[n]), "%s in %s changed %s", what, iso_names[which], iso_names[n]);
		free(after);
		free(before[n]);
	}
}

static int op_delete_relation_r1(kg_store *s) { return kg_delete_relation(s, "r1"); }
static int op_delete_entity_z(kg_store *s) { return kg_delete_entity(s, "z"); }
static int op_delete_entity_y(kg_store *s) { return kg_delete_entity(s, "y"); }
static int op_update_entity_x(kg_store *s)
{
	kg_entity e = ent("x", "Changed", "{\"k\":\"changed\"}");
	return kg_update_entity(s, &e);
}
static int op_upsert_entity_w(kg_store *s)
{
	kg_entity e = ent("w", "Changed", "{\"u\":1}");
	return kg_upsert_entity(s, &e);
}
static int op_update_relation_r3(kg_store *s)
{
	kg_relation r = rel("r3", "CHANGED", "w", "x");
	r.weight = 0.25;
	return kg_update_relation(s, &r);
}
static int op_upsert_relation_r1(kg_store *s)
{
	kg_relation r = rel("r1", "UPSERTED", "x", "x");
	return kg_upsert_relation(s, &r);
}
static int op_add_same_ids(kg_store *s)
{
	kg_entity e[2] = { ent("new1", "N", "{}"), ent("new2", "N", "{}") };
	int rc = kg_add_entities(s, e, 2, 0, NULL);
	kg_relation r[1] = { rel("rn", "N", "new1", "new2") };
	return rc ? rc : kg_add_relations(s, r, 1, 0, NULL);
}
static int op_delete_relation_rn(kg_store *s) { return kg_delete_relation(s, "rn"); }
static int op_clear(kg_store *s) { return kg_clear(s); }

static void test_tenant_isolation(void)
{
	kg_store *s = open_fresh();
	kg_store *ns[NS_N] = { s, NULL, NULL };
	CHECK_OK(s, kg_tenant(s, iso_names[NS_A], &ns[NS_A]));
	CHECK_OK(s, kg_tenant(s, iso_names[NS_B], &ns[NS_B]));
	if (!ns[NS_A] || !ns[NS_B])
		goto out;
	iso_build(ns);
	/* An index in one namespace changes no answer in another. */
	CHECK_OK(s, kg_add_indexed_property(s, "k"));
	iso_check_reads(ns);

	/* Writes: every kind, in each namespace in turn, touches only it. */
	iso_only(ns, NS_A, op_delete_relation_r1, "deleting relation r1");
	CHECK(relation_count(ns[NS_A]) == 1);
	iso_only(ns, NS_B, op_delete_entity_z, "deleting entity z");
	{
		/* iso-b's r1 (x->z) and r2 (z->w) went with z; iso-a's r2 (y->z) stays. */
		kg_relation *r = NULL;
		CHECK_RC(ns[NS_B], kg_get_relation(ns[NS_B], "r2", &r), KG_ENOTFOUND);
		CHECK_OK(ns[NS_A], kg_get_relation(ns[NS_A], "r2", &r));
		kg_relation_free(r);
		CHECK(relation_count(ns[NS_B]) == 1 && entity_count(ns[NS_B]) == 3);
	}
	iso_only(ns, NS_G, op_delete_entity_y, "deleting entity y");
	CHECK(relation_count(s) == 0 && entity_count(s) == 3);
	iso_only(ns, NS_A, op_update_entity_x, "updating entity x");
	iso_only(ns, NS_B, op_upsert_entity_w, "upserting entity w");
	iso_only(ns, NS_G, op_upsert_entity_w, "upserting entity w");
	iso_only(ns, NS_B, op_update_relation_r3, "updating relation r3");
	iso_only(ns, NS_A, op_upsert_relation_r1, "upserting relation r1");
	iso_only(ns, NS_G, op_upsert_relation_r1, "upserting relation r1");
	iso_only(ns, NS_A, op_add_same_ids, "adding new1, new2, rn");
	iso_only(ns, NS_B, op_add_same_ids, "adding new1, new2, rn");
	iso_only(ns, NS_G, op_delete_entity_z, "deleting entity z");
	iso_only(ns, NS_B, op_delete_relation_rn, "deleting relation rn");
	/* Ids that exist only elsewhere are not found, and nothing changes. */
	kg_entity *e = NULL;
	CHECK_RC(ns[NS_B], kg_delete_entity(ns[NS_B], "z"), KG_ENOTFOUND);
	CHECK_OK(ns[NS_A], kg_get_entity(ns[NS_A], "z", &e));
	kg_entity_free(e);
	iso_only(ns, NS_A, op_clear, "clearing");
	CHECK(entity_count(ns[NS_A]) == 0);
	CHECK(entity_count(s) == 2 && entity_count(ns[NS_B]) == 5);
	iso_only(ns, NS_G, op_clear, "clearing");
	CHECK(entity_count(ns[NS_B]) == 5);

	/* The same from scratch, through a transaction's tenant views. */
	clear_all(s);
	kg_store *t = NULL;
	if (kg_begin(s, &t) == 0) {
		kg_store *tv[NS_N] = { t, NULL, NULL };
		CHECK_OK(t, kg_tenant(t, iso_names[NS_A], &tv[NS_A]));
		CHECK_OK(t, kg_tenant(t, iso_names[NS_B], &tv[NS_B]));
		if (tv[NS_A] && tv[NS_B]) {
			iso_build(tv);
			iso_check_reads(tv);
			iso_only(tv, NS_B, op_delete_entity_z, "deleting entity z in a transaction");
			iso_only(tv, NS_A, op_delete_relation_r1, "deleting relation r1 in a transaction");
		}
		kg_close(tv[NS_A]);
		kg_close(tv[NS_B]);
		CHECK_OK(s, kg_commit(t));
		kg_relation *r = NULL;
		CHECK_OK(ns[NS_A], kg_get_relation(ns[NS_A], "r2", &r)); /* y->z, kept */
		kg_relation_free(r);
		CHECK(relation_count(ns[NS_A]) == 1 && relation_count(ns[NS_B]) == 1 && relation_count(s) == 1);
	}
out:
	kg_close(ns[NS_A]);
	kg_close(ns[NS_B]);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Rollback: every kind of change undone, field by field                */
/* ------------------------------------------------------------------ */

/* A committed starting point: entities and relations with every field set. */
static void rb_build(kg_store *s)
{
	static const float emb[3] = { 0.25f, -1.5f, 3.0f };
	kg_entity e[4] = { ent("e1", "P", "{\"name\":\"one\",\"n\":1}"), ent("e2", "P", "{\"name\":\"two fox\"}"),
		               ent("e3", "Q", "{}"), ent("e4", "Q", "{\"tag\":\"x\",\"name\":\"one\"}") };
	e[0].embedding = emb;
	e[0].embedding_dim = 3;
	e[0].source = "s1";
	e[0].created_at = 1700000000000001;
	e[0].updated_at = 1700000000000002;
	e[3].embedding = emb + 1;
	e[3].embedding_dim = 2;
	CHECK_OK(s, kg_add_entities(s, e, 4, 0, NULL));
	kg_relation r[4] = { rel("r1", "KNOWS", "e1", "e2"), rel("r2", "KNOWS", "e2", "e3"), rel("r3", "SELF", "e3", "e3"),
		                 rel("r4", "LIKES", "e4", "e1") };
	r[0].weight = 0.5;
	r[0].properties = "{\"since\":1999}";
	r[0].source = "rs";
	r[0].created_at = 1600000000000001;
	r[0].updated_at = 1600000000000002;
	r[1].weight = 0.0;
	r[3].weight = 0.125;
	CHECK_OK(s, kg_add_relations(s, r, 4, 0, NULL));
}

/* What the searches answer, as text (ids and exact scores). */
static char *rb_answers(kg_store *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	kg_entity_list *l = NULL;
	for (int m = KG_TEXT_BM25; m <= KG_TEXT_LEVENSHTEIN; m++) {
		if (kg_text_search(s, "one fox", NULL, 10, 0.0, (kg_text_method)m, &l) == 0)
			for (size_t i = 0; i < l->count; i++)
				fprintf(f, "text %d %s %.17g\n", m, l->items[i]->id, l->scores[i]);
		else
			fprintf(f, "text %d failed\n", m);
		kg_entity_list_free(l);
		l = NULL;
	}
	const float q[3] = { 0.25f, -1.5f, 3.0f };
	if (kg_vector_search(s, q, 3, NULL, 10, -1.0, &l) == 0)
		for (size_t i = 0; i < l->count; i++)
			fprintf(f, "vector %s %.17g\n", l->items[i]->id, l->scores[i]);
	kg_entity_list_free(l);
	l = NULL;
	if (kg_lookup_by_property(s, "name", "\"one\"", &l) == 0)
		for (size_t i = 0; i < l->count; i++)
			fprintf(f, "lookup %s\n", l->items[i]->id);
	kg_entity_list_free(l);
	l = NULL;
	kg_path_list *pl = NULL;
	if (kg_traverse(s, "e4", NULL, 5, 0, &pl) == 0) {
		char text[512];
		paths_text(pl, text, sizeof text);
		fprintf(f, "traverse %s\n", text);
	}
	kg_path_list_free(pl);
	fclose(f);
	return buf;
}

static int rb_add(kg_store *s)
{
	kg_entity e = ent("n1", "New", "{\"name\":\"one\"}");
	kg_relation r = rel("rn", "NEW", "n1", "e1");
	int rc = kg_add_entity(s, &e);
	return rc ? rc : kg_add_relation(s, &r);
}

static int rb_update_entity(kg_store *s)
{
	static const float emb[4] = { 9, 8, 7, 6 };
	kg_entity e = ent("e1", "Changed", "{\"name\":\"fox\"}");
	e.embedding = emb;
	e.embedding_dim = 4;
	e.source = "changed";
	e.updated_at = 1800000000000000;
	int rc = kg_update_entity(s, &e);
	kg_entity e2 = ent("e2", "P", "{\"name\":\"two\"}");
	e2.embedding = emb;
	e2.embedding_dim = 3;
	return rc ? rc : kg_update_entity(s, &e2);
}

static int rb_update_relation(kg_store *s)
{
	kg_relation r = rel("r1", "CHANGED", "e3", "e4");
	r.weight = 0.75;
	r.properties = "{\"since\":2024}";
	r.source = "changed";
	r.updated_at = 1800000000000000;
	int rc = kg_update_relation(s, &r);
	kg_relation r2 = rel("r2", "KNOWS", "e2", "e3");
	r2.weight = 1.0; /* the weight alone */
	return rc ? rc : kg_update_relation(s, &r2);
}

static int rb_upsert(kg_store *s)
{
	kg_entity e = ent("e3", "Upserted", "{\"name\":\"one\"}");
	kg_entity n = ent("n2", "New", "{}");
	kg_relation r = rel("r2", "UPSERTED", "e3", "e1");
	r.weight = 0.3;
	kg_relation rn = rel("rn2", "NEW", "n2", "e3");
	int rc = kg_upsert_entity(s, &e);
	if (!rc)
		rc = kg_upsert_entity(s, &n);
	if (!rc)
		rc = kg_upsert_relation(s, &r);
	return rc ? rc : kg_upsert_relation(s, &rn);
}

static int rb_delete_relation(kg_store *s) { return kg_delete_relation(s, "r4"); }

static int rb_delete_entity(kg_store *s)
{
	int rc = kg_delete_entity(s, "e2"); /* and r1, r2 with it */
	return rc ? rc : kg_delete_entity(s, "e3"); /* and the self-loop r3 */
}

static int rb_bulk(kg_store *s)
{
	kg_entity e[4] = { ent("b1", "B", "{\"name\":\"one\"}"), ent("b2", "B", "{}"), ent("e1", "B", "{}"),
		               ent("b3", "B", "{}") };
	size_t added = 0;
	int rc = kg_add_entities(s, e, 2, 0, &added);
	if (!rc)
		rc = kg_add_entities(s, e + 2, 2, KG_BULK_SKIP_EXISTING, &added); /* e1 skipped */
	kg_relation r[3] = { rel("rb1", "B", "b1", "b2"), rel("rb2", "B", "b2", "e1"), rel("r1", "B", "b1", "b1") };
	if (!rc)
		rc = kg_add_relations(s, r, 2, 0, &added);
	return rc ? rc : kg_add_relations(s, r + 1, 2, KG_BULK_SKIP_EXISTING, &added);
}

static int rb_clear(kg_store *s) { return kg_clear(s); }

static int rb_everything(kg_store *s)
{
	int (*ops[])(kg_store *) = { rb_add, rb_update_entity, rb_update_relation, rb_upsert,
		                         rb_delete_relation, rb_bulk, rb_delete_entity };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		int rc = ops[i](s);
		if (rc)
			return rc;
	}
	return 0;
}

static void test_rollback_restores(void)
{
	kg_store *s = open_fresh();
	kg_store *v = NULL, *t = NULL;
	CHECK_OK(s, kg_tenant(s, "rb-t", &v));
	int rc = kg_begin(s, &t);
	if (rc == KG_EUNSUPPORTED || !v) {
		kg_close(v);
		kg_close(s);
		return;
	}
	kg_rollback(t);
	rb_build(s);
	rb_build(v);
	CHECK_OK(s, kg_add_indexed_property(s, "name"));
	kg_store *base[2] = { s, v };
	char *state[2], *answers[2];
	for (int n = 0; n < 2; n++) {
		state[n] = ns_state(base[n]);
		answers[n] = rb_answers(base[n]);
	}
	static const struct {
		const char *name;
		int (*op)(kg_store *);
	} changes[] = {
		{ "add", rb_add },
		{ "update entity", rb_update_entity },
		{ "update relation", rb_update_relation },
		{ "upsert", rb_upsert },
		{ "delete relation", rb_delete_relation },
		{ "delete entity", rb_delete_entity },
		{ "bulk add", rb_bulk },
		{ "clear", rb_clear },
		{ "everything", rb_everything },
	};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		/* In the global namespace, then in the tenant, then in both at once. */
		for (int where = 0; where < 3; where++) {
			kg_store *tv = NULL;
			CHECK_OK(s, kg_begin(s, &t));
			if (!t)
				continue;
			CHECK_OK(t, kg_tenant(t, "rb-t", &tv));
			kg_store *h[2] = { t, tv };
			for (int n = 0; n < 2; n++) {
				if (!h[n] || !(where == 2 || where == n))
					continue;
				rc = changes[i].op(h[n]);
				CHECK_MSG(rc == 0, "%s: %d %s", changes[i].name, rc, kg_errmsg(h[n]));
				/* The change is there inside the transaction... */
				char *inside = ns_state(h[n]);
				CHECK_MSG(inside && state[n] && strcmp(inside, state[n]) != 0, "%s changed nothing", changes[i].name);
				free(inside);
			}
			kg_close(tv);
			CHECK_OK(s, kg_rollback(t));
			/* ... and gone after the rollback, every field and every answer. */
			for (int n = 0; n < 2; n++) {
				char *after = ns_state(base[n]), *ans = rb_answers(base[n]);
				CHECK_MSG(state_same(after, state[n]), "rolling back '%s' (%s) left a change in %s", changes[i].name,
				          where == 2 ? "both" : n ? "tenant" : "global", n ? "the tenant" : "the global namespace");
				CHECK_MSG(state_same(ans, answers[n]), "rolling back '%s' left a change in what searches answer in %s",
				          changes[i].name, n ? "the tenant" : "the global namespace");
				free(after);
				free(ans);
			}
		}
	}
	/* The store goes on: what was rolled back can be done for real. */
	CHECK_OK(s, rb_everything(s));
	CHECK(entity_count(s) == 7 && relation_count(s) == 3);
	for (int n = 0; n < 2; n++) {
		free(state[n]);
		free(answers[n]);
	}
	kg_close(v);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Text scores against values worked out by hand                        */
/* ------------------------------------------------------------------ */

/*
 * A small corpus with each document's tokens written out by hand: its id,
 * its type, and the words of its string values (nested ones too; numbers
 * and keys are not text), lower case. The expected scores are computed
 * here from those lists with the formulas of kgstore.h, constants written
 * out (BM25: k1 = 1.2, b = 0.75, idf = ln(1 + (n - df + 0.5) / (df + 0.5)),
 * score s / (1 + s)), never by the library's scorer; a few are also given
 * as numbers worked out beforehand.
 */
typedef struct sc_doc {
	const char *id, *type, *props;
	const char *tok[8]; /* by hand */
} sc_doc;

static const sc_doc sc_docs[] = {
	{ "d1", "Doc", "{\"t\":\"Apple banana apple\"}", { "d1", "doc", "apple", "banana", "apple" } },
	{ "d2", "Doc", "{\"t\":\"banana, Cherry!\",\"n\":7}", { "d2", "doc", "banana", "cherry" } },
	{ "d3", "Doc", "{\"t\":\"cherry date\",\"u\":[\"elder\",{\"v\":\"fig\"}]}",
	  { "d3", "doc", "cherry", "date", "elder", "fig" } },
	{ "n1", "Noise", "{\"t\":\"APPLE apple apple apple\"}", { "n1", "noise", "apple", "apple", "apple", "apple" } },
};

static size_t sc_len(const sc_doc *d)
{
	size_t n = 0;
	while (n < 8 && d->tok[n])
		n++;
	return n;
}

static double sc_tf(const sc_doc *d, const char *term)
{
	double c = 0;
	for (size_t i = 0; i < sc_len(d); i++)
		c += strcmp(d->tok[i], term) == 0;
	return c;
}

/* Edit distance, the textbook full table. */
static double sc_lev(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[16][16];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + (a[i - 1] != b[j - 1]) < best)
				best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			d[i][j] = best;
		}
	return (double)d[la][lb];
}

/* The expected score of corpus[doc] for the query's distinct terms (with
 * their counts in the query), by the method's formula. */
static double sc_expect(kg_text_method m, const sc_doc *const *corpus, size_t n, size_t doc, const char *const *terms,
                        const double *qcount, size_t n_terms, double k1)
{
	const sc_doc *d = corpus[doc];
	double len = (double)sc_len(d);
	switch (m) {
	case KG_TEXT_BM25: {
		const double b = 0.75;
		double total = 0;
		for (size_t i = 0; i < n; i++)
			total += (double)sc_len(corpus[i]);
		double avgdl = total / (double)n, s = 0;
		for (size_t t = 0; t < n_terms; t++) {
			double tf = sc_tf(d, terms[t]), df = 0;
			if (tf == 0)
				continue;
			for (size_t i = 0; i < n; i++)
				df += sc_tf(corpus[i], terms[t]) > 0;
			double idf = log(1.0 + ((double)n - df + 0.5) / (df + 0.5));
			s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl));
		}
		return s / (1 + s);
	}
	case KG_TEXT_JACCARD: {
		double inter = 0, uniq = 0;
		for (size_t t = 0; t < n_terms; t++)
			inter += sc_tf(d, terms[t]) > 0;
		for (size_t i = 0; i < (size_t)len; i++) {
			int first = 1;
			for (size_t j = 0; j < i; j++)
				first &= strcmp(d->tok[i], d->tok[j]) != 0;
			uniq += first;
		}
		return inter / ((double)n_terms + uniq - inter);
	}
	case KG_TEXT_COSINE: {
		double dot = 0, qq = 0, dd = 0;
		for (size_t t = 0; t < n_terms; t++) {
			dot += qcount[t] * sc_tf(d, terms[t]);
			qq += qcount[t] * qcount[t];
		}
		for (size_t i = 0; i < (size_t)len; i++) {
			int first = 1;
			for (size_t j = 0; j < i; j++)
				first &= strcmp(d->tok[i], d->tok[j]) != 0;
			if (first)
				dd += sc_tf(d, d->tok[i]) * sc_tf(d, d->tok[i]);
		}
		return dot / (sqrt(qq) * sqrt(dd));
	}
	case KG_TEXT_LEVENSHTEIN: {
		double sum = 0;
		for (size_t t = 0; t < n_terms; t++) {
			double best = 0;
			for (size_t i = 0; i < (size_t)len; i++) {
				double lq = (double)strlen(terms[t]), ld = (double)strlen(d->tok[i]);
				double sim = 1.0 - sc_lev(terms[t], d->tok[i]) / (lq > ld ? lq : ld);
				if (sim > best)
					best = sim;
			}
			sum += best;
		}
		return sum / (double)n_terms;
	}
	}
	return -1;
}

/* Searches `s` and compares ids, order and scores with the expectation
 * over `corpus` (the documents the search sees, in insertion order). */
static void sc_check(kg_store *s, const char *where, const char *query, const char *type, kg_text_method m,
                     const sc_doc *const *corpus, size_t n, const char *const *terms, const double *qcount,
                     size_t n_terms)
{
	double want[8];
	size_t order[8], n_want = 0;
	for (size_t i = 0; i < n; i++) {
		want[i] = sc_expect(m, corpus, n, i, terms, qcount, n_terms, 1.2);
		if (want[i] <= 0)
			continue;
		size_t j = n_want++; /* best first; ties keep insertion order */
		while (j > 0 && want[order[j - 1]] < want[i]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	kg_entity_list *l = NULL;
	int rc = kg_text_search(s, query, type, 10, 0.0, m, &l);
	int ok = rc == 0 && l && l->scores && l->count == n_want;
	for (size_t i = 0; ok && i < n_want; i++) {
		double w = want[order[i]];
		ok = !strcmp(l->items[i]->id, corpus[order[i]]->id) && fabs(l->scores[i] - w) <= 1e-12 * (w > 1 ? w : 1);
	}
	CHECK_MSG(ok, "%s: text search '%s' (type %s, method %d) rc %d", where, query, type ? type : "any", (int)m, rc);
	if (!ok) {
		for (size_t i = 0; i < n_want; i++)
			fprintf(stderr, "    want %s %.17g\n", corpus[order[i]]->id, want[order[i]]);
		for (size_t i = 0; rc == 0 && l && i < l->count; i++)
			fprintf(stderr, "    got  %s %.17g\n", l->items[i]->id, l->scores ? l->scores[i] : -1.0);
	}
	kg_entity_list_free(l);
	/* The threshold keeps scores >= it, k the best k. */
	if (ok && n_want >= 2) {
		double last = want[order[n_want - 1]];
		CHECK_OK(s, kg_text_search(s, query, type, 10, last - 1e-9, m, &l));
		CHECK(l && l->count == n_want);
		kg_entity_list_free(l);
		CHECK_OK(s, kg_text_search(s, query, type, 10, last + 1e-9, m, &l));
		CHECK(l && l->count == n_want - 1);
		kg_entity_list_free(l);
		CHECK_OK(s, kg_text_search(s, query, type, 1, 0.0, m, &l));
		CHECK(l && l->count == 1 && !strcmp(l->items[0]->id, corpus[order[0]]->id));
		kg_entity_list_free(l);
	}
}

static void sc_add(kg_store *s, const sc_doc *d)
{
	kg_entity e = ent(d->id, d->type, d->props);
	CHECK_OK(s, kg_add_entity(s, &e));
}

static void test_text_scores(void)
{
	/* The formulas first: the numbers worked out beforehand for d1..d3. */
	const sc_doc *three[3] = { &sc_docs[0], &sc_docs[1], &sc_docs[2] };
	const sc_doc *four[4] = { &sc_docs[0], &sc_docs[1], &sc_docs[2], &sc_docs[3] };
	const char *ab[2] = { "apple", "banana" };
	const char *lv[2] = { "aple", "chery" };
	const double one[2] = { 1, 1 }, two_one[2] = { 2, 1 };
	/* d1: idf(apple) = ln(8/3), tf 2, norm 1 -> 2 * 2.2 / 3.2; idf(banana) = ln(1.6), tf 1 -> 1 */
	CHECK(fabs(sc_expect(KG_TEXT_BM25, three, 3, 0, ab, one, 2, 1.2) - 0.6452194557173713) < 1e-15);
	CHECK(fabs(sc_expect(KG_TEXT_BM25, three, 3, 1, ab, one, 2, 1.2) - 0.3385740933365202) < 1e-15);
	CHECK(fabs(sc_expect(KG_TEXT_BM25, three, 3, 0, ab, one, 2, 2.0) - 0.6600082118147006) < 1e-15);
	CHECK(fabs(sc_expect(KG_TEXT_BM25, four, 4, 3, ab, one, 2, 1.2) - 0.533737564329106) < 1e-15);
	CHECK(sc_expect(KG_TEXT_JACCARD, three, 3, 0, ab, one, 2, 0) == 0.5);
	CHECK(sc_expect(KG_TEXT_JACCARD, three, 3, 1, ab, one, 2, 0) == 0.2);
	CHECK(fabs(sc_expect(KG_TEXT_COSINE, three, 3, 0, ab, two_one, 2, 0) - sqrt(5.0 / 7.0)) < 1e-15);
	CHECK(fabs(sc_expect(KG_TEXT_LEVENSHTEIN, three, 3, 2, lv, one, 2, 0) - 13.0 / 24.0) < 1e-15);

	kg_store *s = open_fresh();
	kg_store *t = NULL, *noise = NULL;
	CHECK_OK(s, kg_tenant(s, "scores", &t));
	CHECK_OK(s, kg_tenant(s, "scores-noise", &noise));
	if (!t || !noise) {
		kg_close(t);
		kg_close(noise);
		kg_close(s);
		return;
	}
	/* The tenant holds d1..d3; the global namespace the same and n1 of
	 * another type; another tenant many more apples, which must not count. */
	for (int i = 0; i < 3; i++)
		sc_add(t, &sc_docs[i]);
	for (int i = 0; i < 4; i++)
		sc_add(s, &sc_docs[i]);
	char id[16];
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof id, "a%d", i);
		kg_entity e = ent(id, "Doc", "{\"t\":\"apple apple banana\"}");
		CHECK_OK(noise, kg_add_entity(noise, &e));
	}
	const char *one_term[1] = { "cherry" };
	for (int pass = 0; pass < 2; pass++) {
		/* Twice: the second time after an update and a delete that
		 * cancel out, so any index kept for search must follow. */
		if (pass == 1) {
			kg_entity tmp = ent("d2", "Doc", "{\"t\":\"zzz\"}");
			CHECK_OK(t, kg_update_entity(t, &tmp));
			kg_entity back = ent("d2", "Doc", sc_docs[1].props);
			CHECK_OK(t, kg_update_entity(t, &back));
			kg_entity gone = ent("gone", "Doc", "{\"t\":\"apple\"}");
			CHECK_OK(t, kg_add_entity(t, &gone));
			CHECK_OK(t, kg_delete_entity(t, "gone"));
		}
		sc_check(t, "tenant", "apple banana", NULL, KG_TEXT_BM25, three, 3, ab, one, 2);
		sc_check(t, "tenant", "Banana APPLE", "Doc", KG_TEXT_BM25, three, 3, ab, one, 2);
		sc_check(t, "tenant", "cherry", NULL, KG_TEXT_BM25, three, 3, one_term, one, 1);
		sc_check(t, "tenant", "apple banana", NULL, KG_TEXT_JACCARD, three, 3, ab, one, 2);
		sc_check(t, "tenant", "apple apple banana", NULL, KG_TEXT_COSINE, three, 3, ab, two_one, 2);
		sc_check(t, "tenant", "aple chery", NULL, KG_TEXT_LEVENSHTEIN, three, 3, lv, one, 2);
		/* Global: by type, the corpus is d1..d3; with no type, n1 too. */
		sc_check(s, "global", "apple banana", "Doc", KG_TEXT_BM25, three, 3, ab, one, 2);
		sc_check(s, "global", "apple banana", NULL, KG_TEXT_BM25, four, 4, ab, one, 2);
		sc_check(s, "global", "apple banana", NULL, KG_TEXT_JACCARD, four, 4, ab, one, 2);
		sc_check(s, "global", "apple, apple; banana", NULL, KG_TEXT_COSINE, four, 4, ab, two_one, 2);
		sc_check(s, "global", "aple chery", "Doc", KG_TEXT_LEVENSHTEIN, three, 3, lv, one, 2);
	}
	kg_close(t);
	kg_close(noise);
	kg_close(s);
}

/* ------------------------------------------------------------------ */
/* Threads: several readers while one writer writes                     */
/* ------------------------------------------------------------------ */

typedef struct reader_arg {
	kg_store *s;
	atomic_int *stop;
	atomic_size_t reads;
	size_t bad;
} reader_arg;

static void *reader_main(void *p)
{
	reader_arg *a = p;
	char id[32];
	unsigned x = (unsigned)(uintptr_t)a;
	while (!atomic_load(a->stop)) {
		x = x * 1103515245u + 12345u;
		snprintf(id, sizeof(id), "w%u", (x >> 8) % 400);
		kg_entity *e = NULL;
		int rc = kg_get_entity(a->s, id, &e);
		if (rc == 0) {
			if (strcmp(e->id, id) != 0 || strcmp(e->entity_type, "W") != 0 || !json_same(e->properties, "{\"k\":1}"))
				a->bad++;
		} else if (rc != KG_ENOTFOUND) {
			a->bad++;
		}
		kg_entity_free(e);
		kg_entity_list *l = NULL;
		rc = kg_neighbors(a->s, "hub", NULL, KG_OUT, &l);
		if (rc != 0)
			a->bad++;
		else
			for (size_t i = 0; i < l->count; i++)
				if (strncmp(l->items[i]->id, "w", 1) != 0)
					a->bad++;
		kg_entity_list_free(l);
		atomic_fetch_add(&a->reads, 1);
	}
	return NULL;
}

static void test_threads(void)
{
	kg_store *s = open_fresh();
	CHECK_OK(s, add_e(s, "hub", "Hub"));
	atomic_int stop;
	atomic_init(&stop, 0);
	enum { READERS = 3 };
	pthread_t th[READERS];
	reader_arg args[READERS];
	for (int i = 0; i < READERS; i++) {
		args[i].s = s;
		args[i].stop = &stop;
		atomic_init(&args[i].reads, 0);
		args[i].bad = 0;
		pthread_create(&th[i], NULL, reader_main, &args[i]);
	}
	/* Every reader is running before the writes start (a slow or
	 * serialising scheduler, as under valgrind, must not skip them). */
	for (int i = 0; i < READERS; i++)
		while (atomic_load(&args[i].reads) == 0)
			sched_yield();
	int write_errors = 0;
	char id[32], rid[32];
	for (int i = 0; i < 400; i++) {
		snprintf(id, sizeof(id), "w%d", i);
		kg_entity e = ent(id, "W", "{\"k\":1}");
		write_errors += kg_add_entity(s, &e) != 0;
		snprintf(rid, sizeof(rid), "hw%d", i);
		write_errors += add_r(s, rid, "HAS", "hub", id) != 0;
		if (i % 10 == 9) {
			snprintf(id, sizeof(id), "w%d", i - 5);
			write_errors += kg_delete_entity(s, id) != 0;
		}
	}
	atomic_store(&stop, 1);
	size_t reads = 0, bad = 0;
	for (int i = 0; i < READERS; i++) {
		pthread_join(th[i], NULL);
		reads += atomic_load(&args[i].reads);
		bad += args[i].bad;
	}
	CHECK(write_errors == 0);
	CHECK(bad == 0);
	CHECK(reads > 0);
	CHECK(entity_count(s) == 1 + 400 - 40);
	CHECK(relation_count(s) == 400 - 40);
	kg_close(s);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: conformance URI [case-substring]\n");
		return 2;
	}
	g_uri = argv[1];
	const char *only = argc > 2 ? argv[2] : NULL;
	struct {
		const char *name;
		void (*fn)(void);
	} cases[] = {
#define CASE(f) { #f, f }
		CASE(test_open_errors),     CASE(test_entity_crud),   CASE(test_invalid_input),
		CASE(test_unicode_and_large), CASE(test_relation_crud), CASE(test_delete_cascades),
		CASE(test_bulk),            CASE(test_neighbors),     CASE(test_traverse),
		CASE(test_find_paths),      CASE(test_subgraph),      CASE(test_listing),
		CASE(test_vector_search),   CASE(test_text_search),   CASE(test_property_lookup),
		CASE(test_stats_and_clear), CASE(test_transactions),  CASE(test_tenants),
		CASE(test_tenant_isolation), CASE(test_rollback_restores), CASE(test_text_scores),
		CASE(test_threads),
#undef CASE
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (only && !strstr(cases[i].name, only))
			continue;
		th_current = cases[i].name;
		int before = th_failed;
		cases[i].fn();
		fprintf(stderr, "%-24s %s\n", cases[i].name, th_failed == before ? "ok" : "FAILED");
	}
	/* Leave nothing behind in a shared server. */
	kg_store *s = NULL;
	if (open_uri(g_uri, &s) == 0)
		clear_all(s);
	kg_close(s);
	remove_sqlite_file(g_uri);
	char label[512];
	snprintf(label, sizeof(label), "conformance %s", g_uri);
	return th_summary(label);
}
