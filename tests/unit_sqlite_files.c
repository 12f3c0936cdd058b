/*
 * unit_sqlite_files.c - the SQLite backend and real files: the original's
 * schema written by plain SQL is read as it is, what kgstore writes is
 * readable by plain SQL, bad files are refused and left untouched, and a
 * second process writing the same file gets the busy error.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"

static char dir[256];

static void path_of(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", dir, name);
}

static int open_path(const char *path, kg_store **s)
{
	char uri[600];
	snprintf(uri, sizeof(uri), "sqlite:%s", path);
	return kg_open(uri, s);
}

/* The original's DDL, as its SQLiteGraphStore runs it. */
static const char ORIGINAL_DDL[] =
	"CREATE TABLE entities (id TEXT NOT NULL, tenant_id TEXT, entity_type TEXT NOT NULL, properties TEXT NOT NULL, "
	"embedding BLOB, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
	"PRIMARY KEY (id, tenant_id));"
	"CREATE TABLE relations (id TEXT NOT NULL, tenant_id TEXT, relation_type TEXT NOT NULL, source_id TEXT NOT NULL, "
	"target_id TEXT NOT NULL, properties TEXT NOT NULL, weight REAL DEFAULT 1.0, created_at TIMESTAMP DEFAULT "
	"CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (id, tenant_id));"
	"CREATE INDEX idx_entities_type ON entities(entity_type);"
	"INSERT INTO entities (id, tenant_id, entity_type, properties, embedding) VALUES "
	"('alice', NULL, 'Person', '{\"name\": \"Alice\"}', X'0000803F000000C0'),"
	"('bob', NULL, 'Person', '{}', NULL),"
	"('carol', 't1', 'Person', '{\"x\": 1}', NULL);"
	"INSERT INTO relations (id, tenant_id, relation_type, source_id, target_id, properties, weight) VALUES "
	"('r1', NULL, 'KNOWS', 'alice', 'bob', '{\"since\": 2001}', 0.0);";

static void test_reads_original_file(void)
{
	char path[512];
	path_of(path, sizeof(path), "original.db");
	th_remove_sqlite(path);
	sqlite3 *db = NULL;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, ORIGINAL_DDL, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);

	kg_store *s = NULL;
	CHECK_OK(s, open_path(path, &s));
	kg_entity *e = NULL;
	CHECK_OK(s, kg_get_entity(s, "alice", &e));
	if (e) {
		CHECK(e->embedding_dim == 2 && e->embedding[0] == 1.0f && e->embedding[1] == -2.0f);
		CHECK(e->created_at > 0); /* CURRENT_TIMESTAMP text, read as time */
	}
	kg_entity_free(e);
	kg_relation *r = NULL;
	CHECK_OK(s, kg_get_relation(s, "r1", &r));
	if (r)
		CHECK(r->weight == 0.0);
	kg_relation_free(r);
	/* The NULL tenant is the global namespace; duplicates are refused there. */
	kg_entity dup = { .id = "bob", .entity_type = "Robot", .properties = "{}" };
	CHECK_RC(s, kg_add_entity(s, &dup), KG_EEXISTS);
	kg_store *t1 = NULL;
	CHECK_OK(s, kg_tenant(s, "t1", &t1));
	CHECK_OK(t1, kg_get_entity(t1, "carol", &e));
	kg_entity_free(e);
	kg_close(t1);
	/* What kgstore writes, plain SQL reads in the same columns. */
	float v[2] = { 0.5f, 4.0f };
	kg_entity dan = { .id = "dan", .entity_type = "Person", .properties = "{\"k\":2}", .embedding = v,
		              .embedding_dim = 2 };
	CHECK_OK(s, kg_add_entity(s, &dan));
	kg_close(s);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK(sqlite3_prepare_v2(db, "SELECT entity_type, properties, hex(embedding), tenant_id IS NULL FROM entities "
	                             "WHERE id = 'dan'",
	                         -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(st, 0), "Person");
	CHECK_STR((const char *)sqlite3_column_text(st, 1), "{\"k\":2}");
	CHECK_STR((const char *)sqlite3_column_text(st, 2), "0000003F00008040");
	CHECK(sqlite3_column_int(st, 3) == 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	th_remove_sqlite(path);
}

static int file_equals(const char *path, const char *content, size_t len)
{
	FILE *f = fopen(path, "rb");
	char buf[4096];
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	return f && n == len && memcmp(buf, content, len) == 0;
}

static void test_bad_files(void)
{
	char path[512];
	kg_store *s = NULL;
	/* Not a database at all. */
	path_of(path, sizeof(path), "notes.txt");
	const char text[] = "these are my notes, not a database\n";
	FILE *f = fopen(path, "wb");
	fwrite(text, 1, sizeof(text) - 1, f);
	fclose(f);
	CHECK_RC(s, open_path(path, &s), KG_ECORRUPT);
	CHECK(strstr(kg_errmsg(s), "not modified") != NULL);
	kg_close(s);
	CHECK(file_equals(path, text, sizeof(text) - 1));
	unlink(path);

	/* Another program's database. */
	path_of(path, sizeof(path), "other.db");
	th_remove_sqlite(path);
	sqlite3 *db = NULL;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "CREATE TABLE entities (name TEXT); CREATE TABLE relations (a, b);", NULL, NULL, NULL);
	sqlite3_close(db);
	struct stat before, after;
	stat(path, &before);
	CHECK_RC(s, open_path(path, &s), KG_EINVAL);
	CHECK(strstr(kg_errmsg(s), "another schema") != NULL);
	kg_close(s);
	stat(path, &after);
	CHECK(before.st_size == after.st_size && before.st_mtime == after.st_mtime);
	th_remove_sqlite(path);

	/* A read-only file (as root, permissions do not stop writes: skip). */
	if (geteuid() != 0) {
		path_of(path, sizeof(path), "ro.db");
		th_remove_sqlite(path);
		CHECK_OK(s, open_path(path, &s));
		kg_close(s);
		chmod(path, 0444);
		CHECK_RC(s, open_path(path, &s), KG_EIO);
		kg_close(s);
		chmod(path, 0644);
		th_remove_sqlite(path);
	}
}

static void test_second_process_busy(void)
{
	char path[512], uri[600];
	path_of(path, sizeof(path), "busy.db");
	th_remove_sqlite(path);
	snprintf(uri, sizeof(uri), "sqlite:%s?timeout=0.3", path);
	kg_store *s = NULL, *t = NULL;
	CHECK_OK(s, kg_open(uri, &s));
	CHECK_OK(s, kg_begin(s, &t));
	kg_entity e = { .id = "mine", .entity_type = "T", .properties = "{}" };
	CHECK_OK(t, kg_add_entity(t, &e));
	/* Another process: waits the timeout, then gets KG_EBUSY naming the cause. */
	pid_t pid = fork();
	if (pid == 0) {
		kg_store *o = NULL;
		int code = 10;
		if (kg_open(uri, &o) == 0) {
			kg_entity x = { .id = "theirs", .entity_type = "T", .properties = "{}" };
			int rc = kg_add_entity(o, &x);
			code = rc == KG_EBUSY && strstr(kg_errmsg(o), "locked") ? 0 : 20 - rc;
		}
		kg_close(o);
		_exit(code);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_OK(s, kg_commit(t));
	/* Once the lock is gone the other process gets through. */
	pid = fork();
	if (pid == 0) {
		kg_store *o = NULL;
		kg_entity x = { .id = "theirs", .entity_type = "T", .properties = "{}" };
		int ok = kg_open(uri, &o) == 0 && kg_add_entity(o, &x) == 0;
		kg_close(o);
		_exit(ok ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	kg_entity *got = NULL;
	CHECK_OK(s, kg_get_entity(s, "theirs", &got)); /* another process's write is seen */
	kg_entity_free(got);
	kg_close(s);
	th_remove_sqlite(path);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "%s/kg-sqlite-files-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_reads_original_file);
	RUN(test_bad_files);
	RUN(test_second_process_busy);
	rmdir(dir);
	return th_summary("unit_sqlite_files");
}
