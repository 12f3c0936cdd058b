/*
 * unit_io_migrate.c - kg_migrate between memory and SQLite both ways (all
 * tenants, relations, embeddings, weights, timestamps), the verify step and
 * what it catches, resume after an interruption (in-process and after the
 * process died), restart with skip-existing, and refused set-ups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/io.h"

static char dir[256];

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static kg_store *open_uri(const char *uri)
{
	kg_store *s = NULL;
	if (kg_open(uri, &s)) {
		CHECK_FAIL("open %s: %s", uri, s ? kg_errmsg(s) : "");
		kg_close(s);
		return NULL;
	}
	return s;
}

static kg_store *open_file(const char *name, int fresh)
{
	char p[512], uri[600];
	path_of(p, sizeof p, name);
	if (fresh) {
		const char *sfx[] = { "", "-wal", "-shm" };
		for (int i = 0; i < 3; i++) {
			char f[600];
			snprintf(f, sizeof f, "%s%s", p, sfx[i]);
			unlink(f);
		}
	}
	snprintf(uri, sizeof uri, "sqlite:%s", p);
	return open_uri(uri);
}

/* n entities (with embeddings every third), 3n relations (parallel edges and
 * self-loops included) in the global namespace and two tenants. */
static void build(kg_store *s, int n)
{
	const char *tenants[] = { NULL, "acme", "beta-2" };
	for (int t = 0; t < 3; t++) {
		kg_store *h = s, *v = NULL;
		if (tenants[t]) {
			if (kg_tenant(s, tenants[t], &v))
				return;
			h = v;
		}
		int cnt = t == 0 ? n : n / 10 + 1;
		kg_entity *es = calloc((size_t)cnt, sizeof *es);
		char (*ids)[24] = calloc((size_t)cnt, 24);
		char (*props)[64] = calloc((size_t)cnt, 64);
		float emb[8];
		for (int k = 0; k < 8; k++)
			emb[k] = (float)k / 7.0f - 0.5f;
		for (int i = 0; i < cnt; i++) {
			snprintf(ids[i], 24, "e%d", i);
			snprintf(props[i], 64, "{\"name\": \"entity %d\", \"rank\": %d, \"t\": [%d]}", i, i, t);
			es[i].id = ids[i];
			es[i].entity_type = i % 2 ? "Person" : "Place";
			es[i].properties = props[i];
			if (i % 3 == 0) {
				es[i].embedding = emb;
				es[i].embedding_dim = 8;
			}
			es[i].source = i % 5 == 0 ? "seed" : NULL;
			es[i].created_at = 1600000000000000 + i;
			es[i].updated_at = 1600000000000000 + 2 * i;
		}
		CHECK_OK(h, kg_add_entities(h, es, (size_t)cnt, 0, NULL));
		kg_relation *rs = calloc((size_t)cnt * 3, sizeof *rs);
		char (*rids)[24] = calloc((size_t)cnt * 3, 24);
		for (int j = 0; j < 3 * cnt; j++) {
			snprintf(rids[j], 24, "r%d", j);
			rs[j] = (kg_relation)KG_RELATION_INIT;
			rs[j].id = rids[j];
			rs[j].relation_type = j % 2 ? "KNOWS" : "PART_OF";
			rs[j].source_id = ids[j % cnt];
			rs[j].target_id = ids[(j * 7 + 1) % cnt];
			rs[j].weight = (double)(j % 1001) / 1000.0;
			rs[j].properties = j % 4 ? "{\"since\": 2001}" : "{}";
		}
		CHECK_OK(h, kg_add_relations(h, rs, (size_t)cnt * 3, 0, NULL));
		free(es);
		free(ids);
		free(props);
		free(rs);
		free(rids);
		kg_close(v);
	}
}

static void both_ways(void)
{
	kg_store *mem = open_uri("memory:");
	kg_store *file = open_file("mig.db", 1);
	kg_store *back = open_uri("memory:");
	if (!mem || !file || !back)
		goto out;
	build(mem, 300);
	kg_migrate_result r;
	int rc = kg_migrate(mem, file, NULL, &r);
	if (rc)
		fprintf(stderr, "  %s\n", r.errmsg);
	CHECK(rc == KG_OK);
	CHECK(r.verified == 1 && r.verify.equal == 1);
	CHECK(r.namespaces == 3);
	CHECK(r.entity_count == 300 + 2 * 31 && r.relation_count == 3 * (300 + 2 * 31));
	/* out of memory's relations too (the original lost them) */
	kg_stats *st = NULL;
	CHECK_OK(file, kg_get_stats(file, &st));
	if (st)
		CHECK(st->relation_count == 900);
	kg_stats_free(st);
	rc = kg_migrate(file, back, NULL, &r);
	if (rc)
		fprintf(stderr, "  %s\n", r.errmsg);
	CHECK(rc == KG_OK && r.verified);
	kg_verify_result v;
	CHECK_RC(NULL, kg_verify(mem, back, NULL, &v), KG_OK);
	CHECK(v.equal);
	CHECK(v.a.entities.count == 362 && v.a.relations.count == 1086 && v.a.namespaces == 3);

	/* The verify step sees one changed property, one weight, one tenant. */
	kg_entity *e = NULL;
	CHECK_OK(back, kg_get_entity(back, "e7", &e));
	if (e) {
		kg_entity u = *e;
		u.properties = "{\"name\": \"entity 7\", \"rank\": 8, \"t\": [0]}";
		CHECK_OK(back, kg_update_entity(back, &u));
		/* keep updated_at as it was: only the property differs */
		u.updated_at = e->updated_at;
		CHECK_OK(back, kg_update_entity(back, &u));
	}
	kg_entity_free(e);
	CHECK_RC(NULL, kg_verify(mem, back, NULL, &v), KG_OK);
	CHECK(!v.equal);
	CHECK(strstr(v.errmsg, "global namespace: entities: same count") != NULL);
	kg_store *t = NULL;
	CHECK_OK(back, kg_tenant(back, "beta-2", &t));
	kg_relation *rel = NULL;
	if (t && kg_get_relation(t, "r5", &rel) == KG_OK) {
		kg_relation u = *rel;
		u.weight = rel->weight == 0.5 ? 0.25 : 0.5;
		u.updated_at = rel->updated_at;
		CHECK_OK(t, kg_update_relation(t, &u));
	}
	kg_relation_free(rel);
	kg_close(t);
	kg_verify_options vo = KG_VERIFY_OPTIONS_INIT;
	CHECK_RC(NULL, kg_verify(file, back, &vo, &v), KG_OK);
	CHECK(!v.equal);
	/* Migrating into a store that already holds the ids is refused, and the
	 * message says what to do. */
	rc = kg_migrate(mem, file, NULL, &r);
	CHECK(rc == KG_EEXISTS);
	CHECK(strstr(r.errmsg, "SKIP_EXISTING") != NULL);
	/* ... and with skip-existing it completes and verifies. */
	kg_migrate_options mo = KG_MIGRATE_OPTIONS_INIT;
	mo.flags = KG_MIGRATE_SKIP_EXISTING;
	rc = kg_migrate(mem, file, &mo, &r);
	CHECK(rc == KG_OK && r.verified && r.skipped == 362 + 1086 && r.entity_count == 0);
out:
	kg_close(mem);
	kg_close(file);
	kg_close(back);
}

static int calls, stop_after;
static int stopper(uint64_t done, uint64_t total, const char *phase, void *user)
{
	(void)done;
	(void)total;
	(void)phase;
	(void)user;
	return ++calls == stop_after;
}

/* A crash: the process ends right there, no clean-up. */
static int crasher(uint64_t done, uint64_t total, const char *phase, void *user)
{
	(void)done;
	(void)total;
	(void)phase;
	(void)user;
	if (++calls == stop_after)
		_exit(3);
	return 0;
}

/* Interrupted after a few batches, then resumed from the resume file. */
static void resume_in_process(void)
{
	kg_store *src = open_file("src.db", 1), *dst = open_file("dst.db", 1);
	if (!src || !dst)
		goto out;
	build(src, 2000);
	char rp[512];
	path_of(rp, sizeof rp, "mig.resume");
	unlink(rp);
	kg_migrate_options mo = KG_MIGRATE_OPTIONS_INIT;
	mo.batch_size = 250;
	mo.resume_path = rp;
	mo.progress = stopper;
	calls = 0;
	stop_after = 13; /* entities done (8 batches), in the middle of the relations */
	kg_migrate_result r;
	CHECK_RC(NULL, kg_migrate(src, dst, &mo, &r), KG_EIO);
	CHECK(strstr(r.errmsg, "interrupted") != NULL);
	CHECK(access(rp, F_OK) == 0);
	kg_stats *st = NULL;
	CHECK_OK(dst, kg_get_stats(dst, &st));
	if (st)
		CHECK(st->entity_count == 2000 && st->relation_count == 5 * 250);
	kg_stats_free(st);
	mo.progress = NULL;
	int rc = kg_migrate(src, dst, &mo, &r);
	if (rc)
		fprintf(stderr, "  %s\n", r.errmsg);
	CHECK(rc == KG_OK);
	CHECK(r.resumed == 1 && r.verified == 1);
	CHECK(r.relation_count == 6000 - 1250 + 3 * 402);
	CHECK(access(rp, F_OK) != 0); /* removed on success */
out:
	kg_close(src);
	kg_close(dst);
}

/* The process dies after a batch is committed, before or after the resume
 * file records it: the next run completes and verifies. */
static void resume_after_crash(void)
{
	for (int stale = 0; stale < 2; stale++) {
		kg_store *src = open_file("csrc.db", 1);
		if (!src)
			return;
		build(src, 1500);
		kg_store *dst = open_file("cdst.db", 1);
		kg_close(dst);
		char rp[512];
		path_of(rp, sizeof rp, "crash.resume");
		unlink(rp);
		kg_close(src); /* no SQLite handle crosses the fork */
		pid_t pid = fork();
		if (pid == 0) {
			kg_store *cs = open_file("csrc.db", 0), *d = open_file("cdst.db", 0);
			kg_migrate_options mo = KG_MIGRATE_OPTIONS_INIT;
			mo.batch_size = 200;
			mo.resume_path = rp;
			mo.progress = crasher; /* dies inside the 11th batch report */
			calls = 0;
			stop_after = 11;
			kg_migrate_result r;
			(void)kg_migrate(cs, d, &mo, &r);
			_exit(0); /* not reached */
		}
		int status = 0;
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
		CHECK(access(rp, F_OK) == 0);
		if (stale) {
			/* Pretend the last update of the resume file was lost: it
			 * says one batch less than what was committed. */
			FILE *f = fopen(rp, "r");
			char text[8192] = "";
			size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
			text[n] = 0;
			if (f)
				fclose(f);
			char *d = strstr(text, "done ");
			unsigned long long done = d ? strtoull(d + 5, NULL, 10) : 0;
			CHECK(done >= 200);
			char *last = strstr(text, "\nlast ");
			char out[sizeof text + 128]; /* text, then at most ~100 bytes more */
			if (d && last) {
				*d = 0;
				/* last id unknown for the older batch: keep the file
				 * consistent by recording the id at done-200 */
				snprintf(out, sizeof out, "%sdone %llu\nlast ", text, done - 200);
				int phase_rel = strstr(text, "phase relations") != NULL;
				char id[32];
				snprintf(id, sizeof id, "%c%llu", phase_rel ? 'r' : 'e', done - 201);
				for (char *p = id; *p; p++)
					snprintf(out + strlen(out), sizeof out - strlen(out), "%02x", (unsigned char)*p);
				strcat(out, "\n");
				f = fopen(rp, "w");
				if (f) {
					fputs(out, f);
					fclose(f);
				}
			}
		}
		src = open_file("csrc.db", 0);
		kg_store *d = open_file("cdst.db", 0);
		kg_migrate_options mo = KG_MIGRATE_OPTIONS_INIT;
		mo.batch_size = 200;
		mo.resume_path = rp;
		kg_migrate_result r;
		int rc = kg_migrate(src, d, &mo, &r);
		if (rc)
			fprintf(stderr, "  stale=%d: %s\n", stale, r.errmsg);
		CHECK(rc == KG_OK && r.resumed && r.verified);
		kg_close(d);
		kg_close(src);
	}
}

static void refused(void)
{
	kg_store *a = open_uri("memory:"), *b = open_uri("memory:"), *v = NULL;
	if (!a || !b)
		goto out;
	build(a, 10);
	CHECK_OK(b, kg_tenant(b, "x", &v));
	kg_migrate_result r;
	CHECK_RC(NULL, kg_migrate(a, v, NULL, &r), KG_EINVAL);
	CHECK(strstr(r.errmsg, "base store") != NULL);
	CHECK_RC(NULL, kg_migrate(a, a, NULL, &r), KG_EINVAL);
	/* A tenant view into another store's view: one namespace to another. */
	kg_store *av = NULL;
	CHECK_OK(a, kg_tenant(a, "acme", &av));
	int rc = kg_migrate(av, v, NULL, &r);
	if (rc)
		fprintf(stderr, "  %s\n", r.errmsg);
	CHECK(rc == KG_OK && r.verified && r.entity_count == 2);
	kg_close(av);
	/* A damaged resume file is refused with advice. */
	char rp[512];
	path_of(rp, sizeof rp, "bad.resume");
	FILE *f = fopen(rp, "w");
	if (f) {
		fputs("something else\n", f);
		fclose(f);
	}
	kg_store *c = open_uri("memory:");
	kg_migrate_options mo = KG_MIGRATE_OPTIONS_INIT;
	mo.resume_path = rp;
	CHECK_RC(NULL, kg_migrate(a, c, &mo, &r), KG_ECORRUPT);
	CHECK(strstr(r.errmsg, "damaged") != NULL);
	kg_close(c);
out:
	kg_close(v);
	kg_close(a);
	kg_close(b);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/kg_io_migrate_XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(both_ways);
	RUN(resume_in_process);
	RUN(resume_after_crash);
	RUN(refused);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return th_summary("unit_io_migrate");
}
