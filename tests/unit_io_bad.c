/*
 * unit_io_bad.c - bad input stops the import with file, line and reason,
 * and leaves the target exactly as it was (content checksum before ==
 * after), on memory and SQLite, in one transaction and in the batch-by-batch
 * mode with its undo log; the reject file collects bad records when asked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/io.h"

static char dir[256];
static char cur_target[128];

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Existing data in the global namespace and a tenant. */
static void populate(kg_store *s)
{
	kg_entity e[2] = { KG_ENTITY_INIT, KG_ENTITY_INIT };
	e[0].id = "a", e[0].entity_type = "Person", e[0].properties = "{\"k\": 1}";
	e[1].id = "b", e[1].entity_type = "Person";
	kg_add_entities(s, e, 2, 0, NULL);
	kg_relation r = KG_RELATION_INIT;
	r.id = "ab", r.relation_type = "KNOWS", r.source_id = "a", r.target_id = "b", r.weight = 0.5;
	kg_add_relation(s, &r);
	kg_store *t = NULL;
	if (kg_tenant(s, "t1", &t) == KG_OK) {
		kg_add_entities(t, e, 2, 0, NULL);
		kg_close(t);
	}
}

typedef struct target {
	const char *name;
	const char *uri; /* "sqlite:" gets a file path appended */
	unsigned flags;
} target;

static kg_store *open_target(const target *t, int fresh)
{
	char uri[600];
	if (!strcmp(t->uri, "sqlite:")) {
		char p[512];
		path_of(p, sizeof p, "target.db");
		if (fresh) {
			const char *sfx[] = { "", "-wal", "-shm" };
			for (int i = 0; i < 3; i++) {
				char f[600];
				snprintf(f, sizeof f, "%s%s", p, sfx[i]);
				unlink(f);
			}
		}
		snprintf(uri, sizeof uri, "sqlite:%s", p);
	} else {
		snprintf(uri, sizeof uri, "%s", t->uri);
	}
	kg_store *s = NULL;
	if (kg_open(uri, &s)) {
		CHECK_FAIL("open %s: %s", uri, s ? kg_errmsg(s) : "");
		kg_close(s);
		return NULL;
	}
	return s;
}

static int same_sum(const kg_store_checksum *a, const kg_store_checksum *b)
{
	return a->entities.count == b->entities.count && a->entities.sum_lo == b->entities.sum_lo &&
	       a->entities.sum_hi == b->entities.sum_hi && a->relations.count == b->relations.count &&
	       a->relations.sum_lo == b->relations.sum_lo && a->relations.sum_hi == b->relations.sum_hi &&
	       a->namespaces == b->namespaces;
}

/* Imports `file` into a populated target; expects `code`, the line and a
 * piece of the reason, and an unchanged store. */
static void expect_failure(const target *t, const char *file, const kg_import_options *base_opts, int code,
                           uint64_t line, const char *reason_part)
{
	kg_store *s = open_target(t, 1);
	CHECK(s != NULL);
	if (!s)
		return;
	populate(s);
	kg_store_checksum before, after;
	char msg[KG_IO_ERRMSG_SIZE];
	CHECK_OK(s, kg_store_checksum_compute(s, NULL, &before, msg));
	kg_import_options o = base_opts ? *base_opts : (kg_import_options)KG_IMPORT_OPTIONS_INIT;
	o.flags |= t->flags;
	kg_import_result r;
	int rc = kg_import(s, file, &o, &r);
	if ((code == 1 ? rc >= 0 : rc != code) || (line && r.errline != line) || !strstr(r.errmsg, reason_part))
		fprintf(stderr, "  [%s] %s: rc %d (want %d), line %llu (want %llu): %s\n", t->name, file, rc, code,
		        (unsigned long long)r.errline, (unsigned long long)line, r.errmsg);
	CHECK(code == 1 ? rc < 0 : rc == code); /* 1: any error */
	if (line)
		CHECK(r.errline == line);
	CHECK(strstr(r.errmsg, reason_part) != NULL);
	/* The message starts with the file at fault (the edges file of a CSV pair). */
	const char *want_file = base_opts && base_opts->edges_path && strstr(r.errmsg, base_opts->edges_path)
	                            ? base_opts->edges_path : file;
	CHECK(strcmp(r.errfile, want_file) == 0);
	CHECK(strstr(r.errmsg, want_file) == r.errmsg);
	CHECK(r.entity_count == 0 && r.relation_count == 0);
	CHECK_OK(s, kg_store_checksum_compute(s, NULL, &after, msg));
	CHECK(same_sum(&before, &after));
	/* Also as a new handle sees it (SQLite: what is on disk). */
	kg_close(s);
	s = open_target(t, 0);
	if (s && strcmp(t->uri, "memory:")) {
		CHECK_OK(s, kg_store_checksum_compute(s, NULL, &after, msg));
		CHECK(same_sum(&before, &after));
	}
	kg_close(s);
}

static const char *GOOD2 =
	"{\"type\": \"entity\", \"data\": {\"id\": \"n1\", \"entity_type\": \"N\", \"properties\": {}}}\n"
	"{\"type\": \"entity\", \"data\": {\"id\": \"n2\", \"entity_type\": \"N\", \"properties\": {}}}\n";

static void run_cases(const target *t)
{
	char p[512], text[4096];
	snprintf(cur_target, sizeof cur_target, "%s", t->name);

	path_of(p, sizeof p, "badjson.jsonl");
	snprintf(text, sizeof text, "%s{\"type\": \"entity\", \"data\": {\"id\": \"zz\", \n", GOOD2);
	write_file(p, text);
	expect_failure(t, p, NULL, KG_ECORRUPT, 3, "invalid JSON");

	path_of(p, sizeof p, "weight.jsonl");
	snprintf(text, sizeof text,
	         "%s{\"type\": \"relation\", \"data\": {\"id\": \"x\", \"relation_type\": \"T\", \"source_id\": "
	         "\"n1\", \"target_id\": \"n2\", \"weight\": \"heavy\"}}\n", GOOD2);
	write_file(p, text);
	expect_failure(t, p, NULL, KG_EINVAL, 3, "\"weight\" must be a number, not a string");

	path_of(p, sizeof p, "idtype.jsonl");
	snprintf(text, sizeof text, "%s{\"id\": 5, \"entity_type\": \"N\"}\n", GOOD2);
	write_file(p, text);
	expect_failure(t, p, NULL, KG_EINVAL, 3, "\"id\" must be a string");

	path_of(p, sizeof p, "range.jsonl");
	snprintf(text, sizeof text,
	         "%s{\"type\": \"relation\", \"data\": {\"id\": \"x\", \"relation_type\": \"T\", \"source_id\": "
	         "\"n1\", \"target_id\": \"n2\", \"weight\": 1.5}}\n", GOOD2);
	write_file(p, text);
	expect_failure(t, p, NULL, KG_EINVAL, 3, "weight");

	path_of(p, sizeof p, "dup.jsonl");
	snprintf(text, sizeof text, "%s{\"id\": \"n1\", \"entity_type\": \"N\"}\n", GOOD2);
	write_file(p, text);
	expect_failure(t, p, NULL, KG_EEXISTS, 3, "duplicate id");

	path_of(p, sizeof p, "dup_existing.jsonl");
	write_file(p, "{\"id\": \"new\", \"entity_type\": \"N\"}\n{\"id\": \"a\", \"entity_type\": \"N\"}\n");
	expect_failure(t, p, NULL, KG_EEXISTS, 2, "duplicate id");

	path_of(p, sizeof p, "dangling.jsonl");
	write_file(p, "{\"id\": \"n1\", \"entity_type\": \"N\"}\n"
	              "{\"type\": \"relation\", \"data\": {\"id\": \"x\", \"relation_type\": \"T\", \"source_id\": "
	              "\"n1\", \"target_id\": \"ghost\"}}\n"
	              "{\"id\": \"n2\", \"entity_type\": \"N\"}\n");
	expect_failure(t, p, NULL, KG_ENOTFOUND, 2, "dangling relation");

	path_of(p, sizeof p, "badtype.jsonl");
	write_file(p, "{\"type\": \"node\", \"data\": {}}\n");
	expect_failure(t, p, NULL, KG_EINVAL, 1, "unknown record type");

	/* Several tenants, many batches, then a duplicate at the very end: the
	 * batches already written (other tenants included) are all undone. */
	path_of(p, sizeof p, "tenants.jsonl");
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 1200 && f; i++)
		fprintf(f, "{\"type\": \"entity\", \"data\": {\"id\": \"m%d\", \"entity_type\": \"N\", \"tenant_id\": \"%s\"}}\n",
		        i, i % 3 == 0 ? "tA" : i % 3 == 1 ? "tB" : "t1");
	for (int i = 0; i < 300 && f; i++)
		fprintf(f, "{\"type\": \"relation\", \"data\": {\"id\": \"q%d\", \"relation_type\": \"T\", \"source_id\": \"m%d\", "
		           "\"target_id\": \"m%d\", \"tenant_id\": \"tA\"}}\n", i, 3 * i, 3 * ((i + 1) % 400));
	if (f) {
		fprintf(f, "{\"id\": \"a\", \"entity_type\": \"N\", \"tenant_id\": \"t1\"}\n");
		fclose(f);
	}
	kg_import_options o = KG_IMPORT_OPTIONS_INIT;
	o.batch_size = 100;
	expect_failure(t, p, &o, KG_EEXISTS, 1501, "duplicate id");

	/* The same for a single namespace: one transaction (or undo log). */
	path_of(p, sizeof p, "late.jsonl");
	f = fopen(p, "w");
	for (int i = 0; i < 1000 && f; i++)
		fprintf(f, "{\"id\": \"m%d\", \"entity_type\": \"N\"}\n", i);
	if (f) {
		fprintf(f, "{\"id\": \"m1\", \"entity_type\": \"N\"}\n");
		fclose(f);
	}
	expect_failure(t, p, &o, KG_EEXISTS, 1001, "duplicate id");

	/* JSON format, cut short. */
	path_of(p, sizeof p, "cut.json");
	write_file(p, "{\"entities\": [\n{\"id\": \"n1\", \"entity_type\": \"N\"},\n{\"id\": \"n2\", \"entity_type\"");
	expect_failure(t, p, NULL, KG_ECORRUPT, 3, "the file ended");

	/* JSON format, a wrong type in the second element. */
	path_of(p, sizeof p, "wrong.json");
	write_file(p, "{\"entities\": [\n{\"id\": \"n1\", \"entity_type\": \"N\"},\n{\"id\": \"n2\", \"entity_type\": \"N\", "
	              "\"properties\": [1]}\n], \"relations\": []}\n");
	expect_failure(t, p, NULL, KG_EINVAL, 3, "\"properties\" must be an object");

	/* CSV: a row with a missing field, and an unknown column type. */
	char edges[512];
	path_of(p, sizeof p, "nodes.csv");
	write_file(p, "id,entity_type,age:int\nn1,N,1\nn2,N\n");
	kg_import_options co = KG_IMPORT_OPTIONS_INIT;
	co.format = KG_FORMAT_CSV;
	expect_failure(t, p, &co, KG_EINVAL, 3, "the row has 2 fields");
	write_file(p, "id,entity_type,age:int\nn1,N,1\nn2,N,old\n");
	expect_failure(t, p, &co, KG_EINVAL, 3, "not an integer");
	path_of(edges, sizeof edges, "edges.csv");
	write_file(p, "id,entity_type\nn1,N\n");
	write_file(edges, "source_id,target_id,relation_type\nn1,nope,T\n");
	co.edges_path = edges;
	expect_failure(t, p, &co, KG_ENOTFOUND, 2, "dangling relation");
}

/* A truncated gzip stream (of a valid export) is refused. */
static void test_truncated_gzip(const target *t)
{
	kg_store *src = NULL;
	if (kg_open("memory:", &src))
		return;
	kg_entity e = KG_ENTITY_INIT;
	char id[32];
	e.id = id;
	e.entity_type = "N";
	e.properties = "{\"pad\": \"some text so the file has some size to cut in half\"}";
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof id, "g%d", i);
		kg_add_entity(src, &e);
	}
	char p[512];
	path_of(p, sizeof p, "trunc.jsonl.gz");
	kg_export_result er;
	CHECK_RC(NULL, kg_export(src, p, NULL, &er), KG_OK);
	kg_close(src);
	FILE *f = fopen(p, "rb");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fclose(f);
	CHECK(truncate(p, size / 2) == 0);
	expect_failure(t, p, NULL, KG_ECORRUPT, 0, "truncated");
	/* Damaged (not truncated): flip bytes in the middle. */
	CHECK_RC(NULL, kg_open("memory:", &src), KG_OK);
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof id, "g%d", i);
		kg_add_entity(src, &e);
	}
	CHECK_RC(NULL, kg_export(src, p, NULL, &er), KG_OK);
	kg_close(src);
	f = fopen(p, "r+b");
	if (f) {
		fseek(f, size / 3, SEEK_SET);
		fwrite("\xff\xff\xff\xff\xff\xff\xff\xff", 1, 8, f);
		fclose(f);
	}
	/* Garbage may decode before zlib notices (its CRC comes last): any
	 * error will do, as long as nothing is imported. */
	expect_failure(t, p, NULL, 1, 0, "");
}

/* SKIP_BAD: good records go in, bad ones go to the reject file with file,
 * line and reason. */
static void test_rejects(void)
{
	char p[512], rej[512];
	path_of(p, sizeof p, "mixed.jsonl");
	path_of(rej, sizeof rej, "mixed.rejects");
	write_file(p, "{\"id\": \"n1\", \"entity_type\": \"N\"}\n"
	              "{\"id\": \"n2\", \"entity_type\": \n"
	              "{\"id\": \"n3\", \"entity_type\": \"N\"}\n"
	              "{\"type\": \"relation\", \"data\": {\"id\": \"x\", \"relation_type\": \"T\", \"source_id\": "
	              "\"n1\", \"target_id\": \"ghost\"}}\n"
	              "{\"id\": \"n1\", \"entity_type\": \"N\"}\n"
	              "{\"type\": \"relation\", \"data\": {\"id\": \"y\", \"relation_type\": \"T\", \"source_id\": "
	              "\"n1\", \"target_id\": \"n3\", \"weight\": 0.25}}\n");
	const char *uris[] = { "memory:", "sqlite::memory:" };
	for (int k = 0; k < 2; k++) {
		for (int mode = 0; mode < 2; mode++) {
			kg_store *s = NULL;
			CHECK_RC(NULL, kg_open(uris[k], &s), KG_OK);
			kg_import_options o = KG_IMPORT_OPTIONS_INIT;
			o.flags = KG_IMPORT_SKIP_BAD | (mode ? KG_IMPORT_NO_TRANSACTION : 0);
			o.reject_path = rej;
			kg_import_result r;
			int rc = kg_import(s, p, &o, &r);
			if (rc)
				fprintf(stderr, "  %s\n", r.errmsg);
			CHECK(rc == KG_OK);
			CHECK(r.entity_count == 2 && r.relation_count == 1 && r.rejected == 3);
			FILE *f = fopen(rej, "r");
			char line[2048];
			int n = 0, l2 = 0, l4 = 0, l5 = 0;
			while (f && fgets(line, sizeof line, f)) {
				n++;
				l2 += strstr(line, "\"line\": 2,") && strstr(line, "invalid JSON");
				l4 += strstr(line, "\"line\": 4,") && strstr(line, "dangling relation") &&
				      strstr(line, "ghost");
				l5 += strstr(line, "\"line\": 5,") && strstr(line, "duplicate id");
				CHECK(strstr(line, "\"file\": \"") != NULL);
			}
			if (f)
				fclose(f);
			CHECK(n == 3 && l2 == 1 && l4 == 1 && l5 == 1);
			kg_close(s);
		}
	}
	/* Without SKIP_BAD no reject file is written. */
	unlink(rej);
	kg_store *s = NULL;
	CHECK_RC(NULL, kg_open("memory:", &s), KG_OK);
	kg_import_options o = KG_IMPORT_OPTIONS_INIT;
	o.reject_path = rej;
	kg_import_result r;
	CHECK_RC(NULL, kg_import(s, p, &o, &r), KG_ECORRUPT);
	CHECK(access(rej, F_OK) != 0);
	kg_close(s);
}

static void test_missing_file(void)
{
	kg_store *s = NULL;
	CHECK_RC(NULL, kg_open("memory:", &s), KG_OK);
	kg_import_result r;
	CHECK_RC(NULL, kg_import(s, "/nonexistent/file.jsonl", NULL, &r), KG_EIO);
	CHECK(strstr(r.errmsg, "/nonexistent/file.jsonl") && strstr(r.errmsg, "cannot open"));
	kg_close(s);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/kg_io_bad_XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	const target targets[] = {
		{ "memory", "memory:", 0 },
		{ "memory, batch by batch", "memory:", KG_IMPORT_NO_TRANSACTION },
		{ "sqlite file", "sqlite:", 0 },
		{ "sqlite file, batch by batch", "sqlite:", KG_IMPORT_NO_TRANSACTION },
	};
	for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
		th_current = targets[i].name;
		run_cases(&targets[i]);
		test_truncated_gzip(&targets[i]);
	}
	RUN(test_rejects);
	RUN(test_missing_file);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return th_summary("unit_io_bad");
}
