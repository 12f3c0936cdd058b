/*
 * unit_io_formats.c - export and import in every format: JSONL, JSONL.gz,
 * JSON, CSV pairs (our columns and neo4j-admin headers), relations before
 * their entities, tenants, filters, counts, deferred relations spilled to a
 * temporary file, and progress. Every round trip is checked with kg_verify.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/io.h"

#ifndef KG_IO_DATA
#define KG_IO_DATA "tests/data/io"
#endif

static char dir[256];

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

/* A graph with what tends to get lost: unicode and escapes, nested
 * properties, embeddings (extreme floats too), weight 0.0 and a weight with
 * no short decimal form, parallel edges, a self-loop, sources, exact
 * timestamps, and three namespaces sharing ids. */
static void build_sample(kg_store *s)
{
	static const float emb[] = { 0.1f, -0.5f, 3.4028235e38f, 1.4e-45f, -0.0f, 0.33333334f };
	kg_entity e[3] = { KG_ENTITY_INIT, KG_ENTITY_INIT, KG_ENTITY_INIT };
	e[0].id = "a";
	e[0].entity_type = "Person";
	e[0].properties = "{\"name\": \"Zo\xc3\xab \xe2\x98\x83\", \"q\": \"quote\\\" back\\\\ nl\\n\", "
	                  "\"n\": {\"x\": [1, 2.5, -3e-7, true, null]}, \"big\": 12345678901234}";
	e[0].embedding = emb;
	e[0].embedding_dim = 6;
	e[0].source = "src-1";
	e[0].created_at = 1700000000123456;
	e[0].updated_at = 1700000001654321;
	e[1].id = "b";
	e[1].entity_type = "Company";
	e[1].created_at = 1600000000000001;
	e[1].updated_at = 1600000000000002;
	e[2].id = "c d/\xe2\x82\xac";
	e[2].entity_type = "Person";
	e[2].properties = "{}";
	CHECK_OK(s, kg_add_entities(s, e, 3, 0, NULL));
	kg_relation r[3] = { KG_RELATION_INIT, KG_RELATION_INIT, KG_RELATION_INIT };
	r[0].id = "r1", r[0].relation_type = "WORKS_FOR", r[0].source_id = "a", r[0].target_id = "b";
	r[0].weight = 0.0;
	r[0].properties = "{\"since\": 2020, \"x\": [1, 2]}";
	r[0].source = "hr";
	r[1].id = "r2", r[1].relation_type = "WORKS_FOR", r[1].source_id = "a", r[1].target_id = "b";
	r[1].weight = 1.0 / 3.0;
	r[2].id = "r3", r[2].relation_type = "SELF", r[2].source_id = "c d/\xe2\x82\xac";
	r[2].target_id = "c d/\xe2\x82\xac";
	CHECK_OK(s, kg_add_relations(s, r, 3, 0, NULL));

	kg_store *t = NULL;
	CHECK_OK(s, kg_tenant(s, "t1", &t));
	kg_entity te[2] = { KG_ENTITY_INIT, KG_ENTITY_INIT };
	te[0].id = "a", te[0].entity_type = "Person", te[0].properties = "{\"tenant\": \"one\"}";
	te[1].id = "x", te[1].entity_type = "Place";
	CHECK_OK(t, kg_add_entities(t, te, 2, 0, NULL));
	kg_relation tr = KG_RELATION_INIT;
	tr.id = "r1", tr.relation_type = "LOCATED_IN", tr.source_id = "a", tr.target_id = "x", tr.weight = 0.75;
	CHECK_OK(t, kg_add_relation(t, &tr));
	kg_close(t);
	CHECK_OK(s, kg_tenant(s, "t-2", &t));
	kg_entity only = KG_ENTITY_INIT;
	only.id = "solo", only.entity_type = "Thing";
	CHECK_OK(t, kg_add_entity(t, &only));
	kg_close(t);
}

/* A store to test with; a store that does not open is a failed check (the
 * case then returns without asserting anything else). */
static kg_store *open_store(const char *uri)
{
	kg_store *s = NULL;
	if (kg_open(uri, &s) != KG_OK) {
		CHECK_FAIL("open %s: %s", uri, s ? kg_errmsg(s) : "?");
		kg_close(s);
		return NULL;
	}
	return s;
}

static int verify_equal(kg_store *a, kg_store *b)
{
	kg_verify_result v;
	int rc = kg_verify(a, b, NULL, &v);
	if (rc || !v.equal)
		fprintf(stderr, "  verify: rc %d: %s\n", rc, v.errmsg);
	return rc == KG_OK && v.equal;
}

static int file_starts_with_gzip_magic(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char m[2] = { 0, 0 };
	if (f) {
		if (fread(m, 1, 2, f) != 2)
			m[0] = 0;
		fclose(f);
	}
	return m[0] == 0x1f && m[1] == 0x8b;
}

static void roundtrip(const char *name, kg_io_format fmt, int gzip, const char *dst_uri)
{
	kg_store *src = open_store("memory:");
	kg_store *dst = open_store(dst_uri);
	CHECK(src && dst);
	if (!src || !dst)
		goto out;
	build_sample(src);
	char path[512];
	path_of(path, sizeof path, name);
	kg_export_options eo = KG_EXPORT_OPTIONS_INIT;
	eo.format = fmt;
	eo.gzip = gzip;
	eo.all_tenants = 1;
	kg_export_result er;
	CHECK_RC(NULL, kg_export(src, path, &eo, &er), KG_OK);
	CHECK(er.entity_count == 6);
	CHECK(er.relation_count == 4);
	CHECK(er.compressed == (gzip || strstr(name, ".gz") != NULL));
	if (er.compressed) {
		CHECK(strstr(er.filepath, ".gz") != NULL);
		CHECK(file_starts_with_gzip_magic(er.filepath));
	}
	kg_import_result ir;
	kg_import_options io = KG_IMPORT_OPTIONS_INIT;
	io.format = fmt;
	io.batch_size = 2; /* several batches even for a small graph */
	int rc = kg_import(dst, er.filepath, &io, &ir);
	if (rc)
		fprintf(stderr, "  import: %s\n", ir.errmsg);
	CHECK(rc == KG_OK);
	CHECK(ir.entity_count == 6);
	CHECK(ir.relation_count == 4);
	CHECK(verify_equal(src, dst));
	/* The tenants are where they were. */
	kg_store *t1 = NULL;
	kg_entity *e = NULL;
	CHECK_OK(dst, kg_tenant(dst, "t1", &t1));
	if (t1) {
		CHECK_OK(t1, kg_get_entity(t1, "a", &e));
		if (e)
			CHECK_STR(e->properties, "{\"tenant\": \"one\"}");
		kg_entity_free(e);
		kg_close(t1);
	}
out:
	kg_close(src);
	kg_close(dst);
}

static void test_jsonl(void) { roundtrip("g.jsonl", KG_FORMAT_AUTO, 0, "memory:"); }
static void test_jsonl_gz_suffix(void) { roundtrip("g.jsonl.gz", KG_FORMAT_AUTO, 0, "memory:"); }
static void test_jsonl_gz_option(void) { roundtrip("g2.jsonl", KG_FORMAT_JSONL, 1, "sqlite::memory:"); }
static void test_json(void) { roundtrip("g.json", KG_FORMAT_AUTO, 0, "sqlite::memory:"); }
static void test_json_gz(void) { roundtrip("g.json.gz", KG_FORMAT_JSON, 0, "memory:"); }

/* A gzip file whose name does not say so is found by its magic bytes. */
static void test_gzip_magic(void)
{
	kg_store *src = open_store("memory:"), *dst = open_store("memory:");
	if (!src || !dst)
		goto out;
	build_sample(src);
	char path[512], renamed[512];
	path_of(path, sizeof path, "magic.jsonl");
	kg_export_options eo = KG_EXPORT_OPTIONS_INIT;
	eo.gzip = 1;
	eo.all_tenants = 1;
	kg_export_result er;
	CHECK_RC(NULL, kg_export(src, path, &eo, &er), KG_OK);
	path_of(renamed, sizeof renamed, "magic-noext.jsonl");
	CHECK(rename(er.filepath, renamed) == 0);
	kg_import_result ir;
	CHECK_RC(NULL, kg_import(dst, renamed, NULL, &ir), KG_OK);
	CHECK(verify_equal(src, dst));
out:
	kg_close(src);
	kg_close(dst);
}

/* The entity type filter over more relations than one endpoint batch: 600
 * entities alternate P / Q (a few ids are never added), relation k goes
 * from k%600 to (k*7)%600; exactly those with two existing P endpoints are
 * written, in insertion order. */
static void test_type_filter_many(const char *uri)
{
	kg_store *s = open_store(uri);
	if (!s)
		return;
	enum { NE = 600, NR = 1500 };
	static char eid[NE][16], rid[NR][16];
	static kg_entity e[NE];
	static kg_relation r[NR];
	size_t ne = 0, np = 0;
	for (int i = 0; i < NE; i++) {
		snprintf(eid[i], sizeof eid[i], "e%d", i);
		if (i % 97 == 4) /* even: would be a P; its relations dangle */
			continue;
		e[ne] = (kg_entity)KG_ENTITY_INIT;
		e[ne].id = eid[i];
		e[ne].entity_type = i % 2 ? "Q" : "P";
		np += i % 2 == 0;
		ne++;
	}
	CHECK_OK(s, kg_add_entities(s, e, ne, 0, NULL));
	size_t nr = 0;
	uint64_t want = 0;
	for (int k = 0; k < NR; k++) {
		int a = k % NE, b = (k * 7) % NE;
		if (a % 97 == 4 || b % 97 == 4)
			continue;
		snprintf(rid[nr], sizeof rid[nr], "r%d", k);
		r[nr] = (kg_relation)KG_RELATION_INIT;
		r[nr].id = rid[nr];
		r[nr].relation_type = "L";
		r[nr].source_id = eid[a];
		r[nr].target_id = eid[b];
		want += a % 2 == 0 && b % 2 == 0;
		nr++;
	}
	CHECK_OK(s, kg_add_relations(s, r, nr, 0, NULL));
	char path[512];
	path_of(path, sizeof path, "many_p.jsonl");
	kg_export_options eo = KG_EXPORT_OPTIONS_INIT;
	eo.entity_type = "P";
	kg_export_result er;
	CHECK_RC(s, kg_export(s, path, &eo, &er), KG_OK);
	CHECK(er.entity_count == np);
	CHECK(er.relation_count == want && want > 256);
	/* The file: relations in insertion order, both endpoints of type P. */
	FILE *f = fopen(path, "r");
	char line[1024];
	int last = -1, ordered = 1, bad_end = 0;
	uint64_t rels = 0;
	while (f && fgets(line, sizeof line, f)) {
		const char *p = strstr(line, "\"id\": \"r");
		if (!p)
			continue;
		int k = atoi(p + 8);
		ordered &= k > last;
		last = k;
		int a = k % NE, b = (k * 7) % NE;
		bad_end += a % 2 || b % 2;
		rels++;
	}
	if (f)
		fclose(f);
	CHECK(rels == want && ordered && bad_end == 0);
	kg_close(s);
}

static void test_type_filter_many_memory(void) { test_type_filter_many("memory:"); }
static void test_type_filter_many_sqlite(void) { test_type_filter_many("sqlite::memory:"); }

/* Filters: entity type (relations between exported entities only), no
 * relations, one tenant (records carry its id and go back to it). */
static void test_filters(void)
{
	kg_store *src = open_store("memory:");
	if (!src)
		return;
	build_sample(src);
	char path[512];
	path_of(path, sizeof path, "persons.jsonl");
	kg_export_options eo = KG_EXPORT_OPTIONS_INIT;
	eo.entity_type = "Person";
	kg_export_result er;
	CHECK_RC(NULL, kg_export(src, path, &eo, &er), KG_OK);
	CHECK(er.entity_count == 2); /* a and "c d/€" in the global namespace */
	CHECK(er.relation_count == 1); /* r3, the self-loop on a Person */

	eo = (kg_export_options)KG_EXPORT_OPTIONS_INIT;
	eo.no_relations = 1;
	eo.all_tenants = 1;
	CHECK_RC(NULL, kg_export(src, path, &eo, &er), KG_OK);
	CHECK(er.entity_count == 6 && er.relation_count == 0);

	eo = (kg_export_options)KG_EXPORT_OPTIONS_INIT;
	eo.tenant_id = "t1";
	CHECK_RC(NULL, kg_export(src, path, &eo, &er), KG_OK);
	CHECK(er.entity_count == 2 && er.relation_count == 1);
	FILE *f = fopen(path, "r");
	char line[1024];
	int with_tenant = 0, lines = 0;
	while (f && fgets(line, sizeof line, f)) {
		lines++;
		with_tenant += strstr(line, "\"tenant_id\": \"t1\"") != NULL;
	}
	if (f)
		fclose(f);
	CHECK(lines == 3 && with_tenant == 3);
	kg_store *dst = open_store("memory:");
	kg_import_result ir;
	CHECK_RC(NULL, kg_import(dst, path, NULL, &ir), KG_OK);
	kg_stats *st = NULL;
	CHECK_OK(dst, kg_get_stats(dst, &st));
	if (st)
		CHECK(st->entity_count == 0); /* nothing in the global namespace */
	kg_stats_free(st);
	kg_store *t1 = NULL;
	CHECK_OK(dst, kg_tenant(dst, "t1", &t1));
	st = NULL;
	if (t1)
		CHECK_OK(t1, kg_get_stats(t1, &st));
	if (st)
		CHECK(st->entity_count == 2 && st->relation_count == 1);
	kg_stats_free(st);

	/* The same file into a tenant view with IGNORE_TENANT lands there. */
	kg_store *t9 = NULL;
	CHECK_OK(dst, kg_tenant(dst, "t9", &t9));
	kg_import_options io = KG_IMPORT_OPTIONS_INIT;
	io.flags = KG_IMPORT_IGNORE_TENANT;
	CHECK_RC(NULL, kg_import(t9, path, &io, &ir), KG_OK);
	CHECK(ir.entity_count == 2);
	/* Without the flag a view refuses another tenant's records. */
	kg_store *t8 = NULL;
	CHECK_OK(dst, kg_tenant(dst, "t8", &t8));
	CHECK_RC(NULL, kg_import(t8, path, NULL, &ir), KG_EINVAL);
	CHECK(strstr(ir.errmsg, "tenant 't1'") != NULL);
	CHECK(ir.errline == 1);
	kg_close(t8);
	kg_close(t9);
	kg_close(t1);
	kg_close(dst);
	kg_close(src);
}

/* Relations before their entities, bare entity lines, blank lines, keys in
 * any order, null properties. */
static void test_relations_first(void)
{
	kg_store *dst = open_store("sqlite::memory:");
	if (!dst)
		return;
	kg_import_result ir;
	int rc = kg_import(dst, KG_IO_DATA "/rel_first.jsonl", NULL, &ir);
	if (rc)
		fprintf(stderr, "  %s\n", ir.errmsg);
	CHECK(rc == KG_OK);
	CHECK(ir.entity_count == 3 && ir.relation_count == 2);
	kg_relation *r = NULL;
	CHECK_OK(dst, kg_get_relation(dst, "r1", &r));
	if (r) {
		CHECK(r->weight == 0.5);
		CHECK_STR(r->properties, "{\"since\": 2001}");
	}
	kg_relation_free(r);
	kg_entity *e = NULL;
	CHECK_OK(dst, kg_get_entity(dst, "bob", &e));
	if (e) {
		CHECK(e->embedding_dim == 3 && e->embedding[2] == 2e-3f);
		CHECK(strstr(e->properties, "Bob \\u00e9") != NULL); /* kept as written */
	}
	kg_entity_free(e);
	CHECK_OK(dst, kg_get_entity(dst, "acme", &e));
	if (e) {
		char t[32];
		kg_format_time(e->created_at, t);
		CHECK_STR(t, "2024-01-02T03:04:05.123456");
		CHECK_STR(e->source, "crm");
	}
	kg_entity_free(e);
	kg_close(dst);
}

/* Many relations before their entities, with a deferral budget so small
 * that they go through the temporary file. */
static void test_deferred_spill(void)
{
	char path[512];
	path_of(path, sizeof path, "spill.jsonl");
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	const int n = 3000;
	for (int j = 0; j < 3 * n; j++)
		fprintf(f, "{\"type\": \"relation\", \"data\": {\"id\": \"r%d\", \"relation_type\": \"T\", "
		           "\"source_id\": \"e%d\", \"target_id\": \"e%d\", \"properties\": {\"j\": %d}, \"weight\": 0.%d}}\n",
		        j, j % n, (j * 7) % n, j, j % 10);
	for (int i = 0; i < n; i++)
		fprintf(f, "{\"type\": \"entity\", \"data\": {\"id\": \"e%d\", \"entity_type\": \"N\", \"properties\": {\"i\": %d}}}\n", i, i);
	fclose(f);
	kg_store *dst = open_store("memory:");
	kg_import_options io = KG_IMPORT_OPTIONS_INIT;
	io.max_deferred_memory = 4096;
	io.batch_size = 500;
	kg_import_result ir;
	int rc = kg_import(dst, path, &io, &ir);
	if (rc)
		fprintf(stderr, "  %s\n", ir.errmsg);
	CHECK(rc == KG_OK);
	CHECK(ir.entity_count == (uint64_t)n && ir.relation_count == (uint64_t)(3 * n));
	kg_relation *r = NULL;
	CHECK_OK(dst, kg_get_relation(dst, "r8999", &r));
	if (r)
		CHECK(r->weight == 0.9 && !strcmp(r->target_id, "e2993"));
	kg_relation_free(r);
	kg_close(dst);
}

static void test_csv(void)
{
	kg_store *dst = open_store("memory:");
	if (!dst)
		return;
	kg_import_options io = KG_IMPORT_OPTIONS_INIT;
	io.format = KG_FORMAT_CSV;
	io.edges_path = KG_IO_DATA "/edges.csv";
	kg_import_result ir;
	int rc = kg_import(dst, KG_IO_DATA "/nodes.csv", &io, &ir);
	if (rc)
		fprintf(stderr, "  %s\n", ir.errmsg);
	CHECK(rc == KG_OK);
	CHECK(ir.entity_count == 4 && ir.relation_count == 3);
	kg_entity *e = NULL;
	CHECK_OK(dst, kg_get_entity(dst, "alice", &e));
	if (e) {
		CHECK_STR(e->properties,
		          "{\"city\": \"Paris\",\"name\":\"Alice\",\"age\":30,\"score\":1.5,\"active\":true,\"tags\":[\"a\",\"b\"]}");
		CHECK(e->embedding_dim == 2 && e->embedding[1] == 0.5f);
	}
	kg_entity_free(e);
	CHECK_OK(dst, kg_get_entity(dst, "bob", &e));
	if (e) {
		CHECK_STR(e->properties, "{\"name\":\"Bob, \\\"the builder\\\"\",\"age\":41,\"active\":false}");
		CHECK(e->embedding_dim == 2 && e->embedding[0] == 0.1f);
	}
	kg_entity_free(e);
	kg_relation *r = NULL;
	CHECK_OK(dst, kg_get_relation(dst, "e1", &r));
	if (r) {
		CHECK(r->weight == 0.25);
		CHECK_STR(r->properties, "{\"since\":2010}");
	}
	kg_relation_free(r);
	kg_store *t1 = NULL;
	CHECK_OK(dst, kg_tenant(dst, "t1", &t1));
	if (t1) {
		CHECK_OK(t1, kg_get_entity(t1, "t1x", &e));
		if (e)
			CHECK_STR(e->properties, "{\"name\":\"multi\\nline\"}");
		kg_entity_free(e);
		CHECK_OK(t1, kg_get_relation(t1, "e3", &r));
		kg_relation_free(r);
		kg_close(t1);
	}
	kg_close(dst);

	/* neo4j-admin headers: :ID, :LABEL (first label), :START_ID, :END_ID,
	 * :TYPE, typed and array columns; relation ids are generated. */
	dst = open_store("sqlite::memory:");
	io.edges_path = KG_IO_DATA "/edges_neo4j.csv";
	rc = kg_import(dst, KG_IO_DATA "/nodes_neo4j.csv", &io, &ir);
	if (rc)
		fprintf(stderr, "  %s\n", ir.errmsg);
	CHECK(rc == KG_OK);
	CHECK(ir.entity_count == 3 && ir.relation_count == 3);
	CHECK_OK(dst, kg_get_entity(dst, "p1", &e));
	if (e) {
		CHECK_STR(e->entity_type, "Person");
		CHECK_STR(e->properties, "{\"personId\":\"p1\",\"name\":\"Keanu\",\"born\":1964}");
	}
	kg_entity_free(e);
	CHECK_OK(dst, kg_get_relation(dst, "edges_neo4j-2", &r));
	if (r) {
		CHECK_STR(r->source_id, "p2");
		CHECK_STR(r->properties, "{\"roles\":[\"Trinity\",\"Other\"]}");
	}
	kg_relation_free(r);
	kg_close(dst);
}

static int calls;
static int count_progress(uint64_t done, uint64_t total, const char *phase, void *user)
{
	(void)total;
	(void)phase;
	(void)done;
	calls++;
	return user && calls >= *(int *)user;
}

/* Progress is reported; an interrupted import leaves the store as it was. */
static void test_progress(void)
{
	kg_store *src = open_store("memory:"), *dst = open_store("memory:");
	if (!src || !dst)
		goto out;
	kg_entity e = KG_ENTITY_INIT;
	char id[32];
	e.entity_type = "N";
	e.id = id;
	for (int i = 0; i < 20000; i++) {
		snprintf(id, sizeof id, "n%d", i);
		kg_add_entity(src, &e);
	}
	char path[512];
	path_of(path, sizeof path, "prog.jsonl.gz");
	kg_export_options eo = KG_EXPORT_OPTIONS_INIT;
	eo.progress = count_progress;
	calls = 0;
	kg_export_result er;
	CHECK_RC(NULL, kg_export(src, path, &eo, &er), KG_OK);
	CHECK(calls >= 4);
	kg_import_options io = KG_IMPORT_OPTIONS_INIT;
	int stop_at = 5;
	io.progress = count_progress;
	io.progress_user = &stop_at;
	calls = 0;
	kg_import_result ir;
	CHECK_RC(NULL, kg_import(dst, path, &io, &ir), KG_EIO);
	CHECK(strstr(ir.errmsg, "interrupted") != NULL);
	kg_stats *st = NULL;
	CHECK_OK(dst, kg_get_stats(dst, &st));
	if (st)
		CHECK(st->entity_count == 0);
	kg_stats_free(st);
	/* A failed export leaves no file behind (not even the .tmp). */
	eo.progress_user = &stop_at;
	calls = 0;
	path_of(path, sizeof path, "interrupted.jsonl");
	CHECK_RC(NULL, kg_export(src, path, &eo, &er), KG_EIO);
	CHECK(access(path, F_OK) != 0);
out:
	kg_close(src);
	kg_close(dst);
}

static void test_stream_export(void)
{
	kg_store *src = open_store("memory:");
	if (!src)
		return;
	build_sample(src);
	char path[512];
	path_of(path, sizeof path, "stream.json");
	FILE *f = fopen(path, "w");
	kg_export_options eo = KG_EXPORT_OPTIONS_INIT;
	eo.format = KG_FORMAT_JSON;
	kg_export_result er;
	CHECK_RC(NULL, kg_export_stream(src, f, &eo, &er), KG_OK);
	fclose(f);
	CHECK(er.entity_count == 3 && er.relation_count == 3);
	CHECK_STR(er.filepath, "-");
	kg_store *dst = open_store("memory:");
	kg_import_result ir;
	CHECK_RC(NULL, kg_import(dst, path, NULL, &ir), KG_OK);
	kg_verify_options vo = KG_VERIFY_OPTIONS_INIT;
	vo.own_namespace_only = 1;
	kg_verify_result v;
	CHECK_RC(NULL, kg_verify(src, dst, &vo, &v), KG_OK);
	CHECK(v.equal);
	kg_close(dst);
	kg_close(src);
}

/* Strings that JSON must escape, in every field written as a JSON string:
 * ids, types, endpoints, sources and tenants (backslashes, quotes, control
 * characters, non-ASCII), and in property values. */
#define ESC_ID "a\\b\"c \xc3\xa9\xf0\x9f\x98\x80 \\u0041"
#define ESC_ID2 "\\\\server\\share\\"
#define ESC_TYPE "T\\\"y\\pe\""
#define ESC_SOURCE "line1\nline2\ttab\r\x01\x1f\x7f back\\slash \"q\" \xe2\x82\xac"
#define ESC_PROPS "{\"p\": \"back\\\\slash \\\"q\\\" \\u0001\\u001f\\n\\t \xc3\xa9\", \"k\\\\ey\": [\"\\\\\"]}"
#define ESC_REL "r\\1\" x"
#define ESC_TENANT "esc_t-1"

static void escapes_build(kg_store *s)
{
	kg_entity e[2] = { KG_ENTITY_INIT, KG_ENTITY_INIT };
	e[0].id = ESC_ID, e[0].entity_type = ESC_TYPE, e[0].properties = ESC_PROPS, e[0].source = ESC_SOURCE;
	e[1].id = ESC_ID2, e[1].entity_type = "Plain\\";
	CHECK_OK(s, kg_add_entities(s, e, 2, 0, NULL));
	kg_relation r = KG_RELATION_INIT;
	r.id = ESC_REL, r.relation_type = "R\\\"", r.source_id = ESC_ID, r.target_id = ESC_ID2;
	r.properties = ESC_PROPS, r.source = ESC_SOURCE;
	CHECK_OK(s, kg_add_relation(s, &r));
	kg_store *t = NULL;
	CHECK_OK(s, kg_tenant(s, ESC_TENANT, &t));
	if (t) {
		CHECK_OK(t, kg_add_entities(t, e, 2, 0, NULL));
		CHECK_OK(t, kg_add_relation(t, &r));
	}
	kg_close(t);
}

/* Every string value anywhere in a JSON document, for looking up. */
static void collect_strings(json_t *v, const char **out, size_t *n, size_t cap)
{
	if (json_is_string(v) && *n < cap) {
		out[(*n)++] = json_string_value(v);
	} else if (json_is_object(v)) {
		const char *key;
		json_t *x;
		json_object_foreach(v, key, x)
		{
			if (*n < cap)
				out[(*n)++] = key;
			collect_strings(x, out, n, cap);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		collect_strings(x, out, n, cap);
	}
}

static int has_string(const char *const *strs, size_t n, const char *want)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(strs[i], want))
			return 1;
	return 0;
}

static void test_escapes(void)
{
	static const char *const fields[] = { ESC_ID, ESC_ID2, ESC_TYPE, ESC_SOURCE, ESC_REL, ESC_TENANT, "R\\\"", "Plain\\",
		                                  "back\\slash \"q\" \x01\x1f\n\t \xc3\xa9", "k\\ey", "\\" };
	const char *names[] = { "esc.jsonl", "esc.json", "esc.jsonl.gz" };
	for (int f = 0; f < 3; f++) {
		kg_store *src = open_store("memory:");
		kg_store *dst = open_store(f == 1 ? "sqlite::memory:" : "memory:");
		if (!src || !dst) {
			kg_close(src);
			kg_close(dst);
			continue;
		}
		escapes_build(src);
		char path[512];
		path_of(path, sizeof path, names[f]);
		kg_export_options eo = KG_EXPORT_OPTIONS_INIT;
		eo.all_tenants = 1;
		kg_export_result er;
		CHECK_RC(NULL, kg_export(src, path, &eo, &er), KG_OK);
		CHECK(er.entity_count == 4 && er.relation_count == 2);
		/* The file is JSON (each line, for JSONL) holding the very strings. */
		if (f != 2) {
			const char *strs[512];
			size_t n = 0;
			json_t *docs[16];
			size_t nd = 0;
			json_error_t jerr;
			if (f == 1) {
				docs[nd] = json_load_file(path, 0, &jerr);
				CHECK_MSG(docs[nd] != NULL, "%s is not JSON: line %d: %s", path, jerr.line, jerr.text);
				if (docs[nd])
					nd++;
			} else {
				FILE *in = fopen(path, "r");
				char line[8192];
				CHECK(in != NULL);
				while (in && fgets(line, sizeof line, in) && nd < 16) {
					docs[nd] = json_loads(line, 0, &jerr);
					CHECK_MSG(docs[nd] != NULL, "%s: a line is not JSON (%s): %s", path, jerr.text, line);
					if (docs[nd])
						nd++;
				}
				if (in)
					fclose(in);
				CHECK(nd == 6);
			}
			for (size_t i = 0; i < nd; i++)
				collect_strings(docs[i], strs, &n, 512);
			for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
				CHECK_MSG(has_string(strs, n, fields[i]), "%s: the string #%zu is not in the file as it was", path, i);
			for (size_t i = 0; i < nd; i++)
				json_decref(docs[i]);
		}
		/* And it reads back: the same store, field by field. */
		kg_import_result ir;
		int rc = kg_import(dst, er.filepath, NULL, &ir);
		CHECK_MSG(rc == KG_OK, "import %s: %s", er.filepath, ir.errmsg);
		CHECK(verify_equal(src, dst));
		kg_store *t = NULL;
		CHECK_OK(dst, kg_tenant(dst, ESC_TENANT, &t));
		kg_entity *e = NULL;
		kg_relation *r = NULL;
		if (t) {
			CHECK_OK(t, kg_get_entity(t, ESC_ID, &e));
			if (e) {
				CHECK_STR(e->entity_type, ESC_TYPE);
				CHECK_STR(e->source, ESC_SOURCE);
				json_t *a = json_loads(e->properties, 0, NULL), *b = json_loads(ESC_PROPS, 0, NULL);
				CHECK(a && b && json_equal(a, b));
				json_decref(a);
				json_decref(b);
			}
			kg_entity_free(e);
			CHECK_OK(t, kg_get_relation(t, ESC_REL, &r));
			if (r) {
				CHECK_STR(r->source_id, ESC_ID);
				CHECK_STR(r->target_id, ESC_ID2);
				CHECK_STR(r->source, ESC_SOURCE);
			}
			kg_relation_free(r);
		}
		kg_close(t);
		kg_close(src);
		kg_close(dst);
	}
}

/* kg_verify tells two stores apart by any one field of one record: each
 * change below, made to a copy, must make the stores differ. */
static void test_verify_sees_every_field(void)
{
	static const float emb2[] = { 0.1f, -0.5f, 3.4028235e38f, 1.4e-45f, -0.0f, 0.3333334f };
	for (int change = 0; change < 11; change++) {
		kg_store *a = open_store("memory:"), *b = open_store("memory:");
		if (!a || !b) {
			kg_close(a);
			kg_close(b);
			return;
		}
		build_sample(a);
		kg_migrate_result mr; /* an exact copy: timestamps and all */
		CHECK_RC(NULL, kg_migrate(a, b, NULL, &mr), KG_OK);
		CHECK_MSG(verify_equal(a, b), "change %d: two copies differ before the change", change);
		kg_entity *e = NULL;
		kg_relation *r = NULL;
		CHECK_OK(b, kg_get_entity(b, "a", &e));
		CHECK_OK(b, kg_get_relation(b, "r1", &r));
		if (!e || !r) {
			kg_entity_free(e);
			kg_relation_free(r);
			kg_close(a);
			kg_close(b);
			return;
		}
		kg_entity ce = *e;
		kg_relation cr = *r;
		ce.tenant_id = cr.tenant_id = NULL;
		switch (change) {
		case 0: cr.weight = 0.5; break;
		case 1: cr.relation_type = "OTHER"; break;
		case 2: cr.target_id = "a"; break;
		case 3: cr.properties = "{\"since\": 2021, \"x\": [1, 2]}"; break;
		case 4: cr.source = "other"; break;
		case 5: cr.updated_at += 1; break;
		case 6: ce.entity_type = "Robot"; break;
		case 7: ce.embedding = emb2; break; /* the last float differs a little */
		case 8: ce.properties = "{\"name\": \"other\"}"; break;
		case 9: ce.source = "src-2"; break;
		case 10: ce.created_at += 1; break;
		}
		if (change <= 5)
			CHECK_OK(b, kg_update_relation(b, &cr));
		else if (change == 10) { /* created_at is kept by updates: write the entity anew */
			CHECK_OK(b, kg_delete_entity(b, "a"));
			CHECK_OK(b, kg_add_entity(b, &ce));
		} else
			CHECK_OK(b, kg_update_entity(b, &ce));
		kg_verify_result v;
		CHECK_RC(NULL, kg_verify(a, b, NULL, &v), KG_OK);
		CHECK_MSG(!v.equal, "change %d made no difference to kg_verify", change);
		kg_entity_free(e);
		kg_relation_free(r);
		kg_close(a);
		kg_close(b);
	}
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/kg_io_formats_XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_jsonl);
	RUN(test_jsonl_gz_suffix);
	RUN(test_jsonl_gz_option);
	RUN(test_json);
	RUN(test_json_gz);
	RUN(test_gzip_magic);
	RUN(test_filters);
	RUN(test_type_filter_many_memory);
	RUN(test_type_filter_many_sqlite);
	RUN(test_relations_first);
	RUN(test_deferred_spill);
	RUN(test_csv);
	RUN(test_progress);
	RUN(test_stream_export);
	RUN(test_escapes);
	RUN(test_verify_sees_every_field);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return th_summary("unit_io_formats");
}
