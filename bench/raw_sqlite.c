/*
 * raw_sqlite.c - the SQLite jobs done bare, the yardstick for the SQLite
 * backend: a temp file with the original's schema and kgstore's default
 * PRAGMAs (WAL, synchronous=NORMAL, 64 MB cache), one prepared statement
 * per job in a plain loop: the same inserts (one transaction for the bulk
 * loads, autocommit for the single adds), the same primary-key SELECT, a
 * depth-5 recursive CTE for paths. A reader is its own connection.
 */
#ifdef KG_HAVE_SQLITE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_internal.h"

static const char SCHEMA[] =
	"CREATE TABLE entities (id TEXT NOT NULL, tenant_id TEXT, entity_type TEXT NOT NULL, "
	"properties TEXT NOT NULL, embedding BLOB, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
	"updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (id, tenant_id));"
	"CREATE TABLE relations (id TEXT NOT NULL, tenant_id TEXT, relation_type TEXT NOT NULL, "
	"source_id TEXT NOT NULL, target_id TEXT NOT NULL, properties TEXT NOT NULL, weight REAL DEFAULT 1.0, "
	"created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
	"PRIMARY KEY (id, tenant_id));"
	"CREATE INDEX idx_entities_type ON entities(entity_type);"
	"CREATE INDEX idx_entities_tenant ON entities(tenant_id);"
	"CREATE INDEX idx_entities_tenant_type ON entities(tenant_id, entity_type);"
	"CREATE INDEX idx_relations_type ON relations(relation_type);"
	"CREATE INDEX idx_relations_source ON relations(source_id);"
	"CREATE INDEX idx_relations_target ON relations(target_id);"
	"CREATE INDEX idx_relations_tenant_source ON relations(tenant_id, source_id);"
	"CREATE INDEX idx_relations_tenant_target ON relations(tenant_id, target_id);";

static const char PRAGMAS[] =
	"PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-64000;";

static const char SQL_INS_E[] = "INSERT INTO entities (id, tenant_id, entity_type, properties, embedding, "
                                "created_at, updated_at) VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?5)";
static const char SQL_INS_R[] = "INSERT INTO relations (id, tenant_id, relation_type, source_id, target_id, "
                                "properties, weight, created_at, updated_at) VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, "
                                "?7, ?7)";
static const char SQL_GET[] = "SELECT id, tenant_id, entity_type, properties, embedding, created_at, updated_at "
                              "FROM entities WHERE id = ?1 AND tenant_id IS NULL";
static const char SQL_NEIGHBORS[] =
	"SELECT e.id, e.entity_type, e.properties, e.embedding, e.created_at, e.updated_at FROM entities e "
	"WHERE e.tenant_id IS NULL AND e.id IN (SELECT target_id FROM relations WHERE tenant_id IS NULL AND "
	"source_id = ?1)";
/* Simple paths (no node twice) from ?1 to ?2, at most 5 edges, shortest
 * first, 10 of them; each row carries its node list and edge list. */
static const char SQL_PATHS[] =
	"WITH RECURSIVE p(node, nodes, edges, depth) AS ("
	" SELECT ?1, ',' || ?1 || ',', '', 0"
	" UNION ALL"
	" SELECT r.target_id, p.nodes || r.target_id || ',', p.edges || r.id || ',', p.depth + 1"
	" FROM p JOIN relations r ON r.tenant_id IS NULL AND r.source_id = p.node"
	" WHERE p.depth < 5 AND p.node <> ?2 AND instr(p.nodes, ',' || r.target_id || ',') = 0)"
	" SELECT nodes, edges FROM p WHERE node = ?2 ORDER BY depth LIMIT 10";
static const char SQL_VECTORS[] = "SELECT embedding FROM entities WHERE tenant_id IS NULL AND embedding IS NOT NULL";

typedef struct sdb {
	char path[4096];
	sqlite3 *db;
	sqlite3_stmt *ins_e, *ins_r;
	char now[32];
} sdb;

typedef struct sreader {
	sqlite3 *db;
	sqlite3_stmt *get, *nb, *paths, *vec;
	float *q;
} sreader;

static int fail(sqlite3 *db, const char *what)
{
	bench_raw_fail("raw sqlite: %s: %s", what, db ? sqlite3_errmsg(db) : "cannot open");
	return -1;
}

static void *sq_open(const bench_cfg *cfg)
{
	(void)cfg;
	sdb *s = calloc(1, sizeof(*s));
	if (!s) {
		bench_raw_fail("raw sqlite: out of memory");
		return NULL;
	}
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(s->path, sizeof(s->path), "%s/kgbench-raw-XXXXXX", dir);
	int fd = mkstemp(s->path);
	if (fd < 0) {
		bench_raw_fail("raw sqlite: cannot create a temp file in %s", dir);
		free(s);
		return NULL;
	}
	close(fd);
	unlink(s->path);
	kg_format_time(kg_now_us(), s->now);
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	        SQLITE_OK ||
	    sqlite3_exec(s->db, PRAGMAS, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, SQL_INS_E, -1, &s->ins_e, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, SQL_INS_R, -1, &s->ins_r, NULL) != SQLITE_OK) {
		fail(s->db, "setting up the file");
		sqlite3_finalize(s->ins_e);
		sqlite3_close(s->db);
		unlink(s->path);
		free(s);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, 5000);
	return s;
}

static void sq_close(void *p)
{
	sdb *s = p;
	if (!s)
		return;
	sqlite3_finalize(s->ins_e);
	sqlite3_finalize(s->ins_r);
	sqlite3_close(s->db);
	char f[4200];
	const char *sfx[] = { "", "-wal", "-shm", "-journal" };
	for (int i = 0; i < 4; i++) {
		snprintf(f, sizeof(f), "%s%s", s->path, sfx[i]);
		unlink(f);
	}
	free(s);
}

static int insert_entity(sdb *s, const kg_entity *e)
{
	sqlite3_stmt *st = s->ins_e;
	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->entity_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->properties ? e->properties : "{}", -1, SQLITE_STATIC);
	if (e->embedding)
		sqlite3_bind_blob(st, 4, e->embedding, (int)(e->embedding_dim * sizeof(float)), SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_text(st, 5, s->now, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fail(s->db, "insert entity");
}

static int sq_add_one(void *p, const kg_entity *e)
{
	return insert_entity(p, e);
}

static int in_txn(sdb *s, int begin)
{
	return sqlite3_exec(s->db, begin ? "BEGIN IMMEDIATE" : "COMMIT", NULL, NULL, NULL) == SQLITE_OK
	               ? 0
	               : fail(s->db, begin ? "begin" : "commit");
}

static int sq_load_entities(void *p, const kg_entity *e, size_t n)
{
	sdb *s = p;
	if (in_txn(s, 1) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (insert_entity(s, &e[i]) < 0) {
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	return in_txn(s, 0);
}

static int sq_load_relations(void *p, const kg_relation *r, size_t m)
{
	sdb *s = p;
	sqlite3_stmt *st = s->ins_r;
	if (in_txn(s, 1) < 0)
		return -1;
	for (size_t j = 0; j < m; j++) {
		sqlite3_bind_text(st, 1, r[j].id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r[j].relation_type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r[j].source_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r[j].target_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, r[j].properties ? r[j].properties : "{}", -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 6, r[j].weight);
		sqlite3_bind_text(st, 7, s->now, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			fail(s->db, "insert relation");
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return in_txn(s, 0);
}

static void sq_reader_close(void *p)
{
	sreader *r = p;
	if (!r)
		return;
	sqlite3_finalize(r->get);
	sqlite3_finalize(r->nb);
	sqlite3_finalize(r->paths);
	sqlite3_finalize(r->vec);
	sqlite3_close(r->db);
	free(r->q);
	free(r);
}

static void *sq_reader(void *p)
{
	sdb *s = p;
	sreader *r = calloc(1, sizeof(*r));
	if (!r) {
		bench_raw_fail("raw sqlite: out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(s->path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(r->db, "PRAGMA cache_size=-64000;", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, SQL_GET, -1, &r->get, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, SQL_NEIGHBORS, -1, &r->nb, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, SQL_PATHS, -1, &r->paths, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, SQL_VECTORS, -1, &r->vec, NULL) != SQLITE_OK) {
		fail(r->db, "opening a reader");
		sq_reader_close(r);
		return NULL;
	}
	sqlite3_busy_timeout(r->db, 5000);
	return r;
}

/* Steps a query to its end, reading every column as a caller would. */
static int drain(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	int rc, rows = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int nc = sqlite3_column_count(st);
		for (int c = 0; c < nc; c++)
			if (sqlite3_column_type(st, c) == SQLITE_BLOB)
				(void)sqlite3_column_blob(st, c);
			else
				(void)sqlite3_column_text(st, c);
		rows++;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? rows : fail(db, what);
}

static int sq_get(void *p, const char *id)
{
	sreader *r = p;
	sqlite3_bind_text(r->get, 1, id, -1, SQLITE_STATIC);
	return drain(r->db, r->get, "get");
}

static int sq_neighbors(void *p, const char *id)
{
	sreader *r = p;
	sqlite3_bind_text(r->nb, 1, id, -1, SQLITE_STATIC);
	return drain(r->db, r->nb, "neighbors");
}

static int sq_paths(void *p, const char *src, const char *dst)
{
	sreader *r = p;
	sqlite3_bind_text(r->paths, 1, src, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->paths, 2, dst, -1, SQLITE_STATIC);
	return drain(r->db, r->paths, "paths");
}

/* Brute force from the rows as SQLite hands them out: a scan of the blobs,
 * cosine on each, a top-k. */
static int sq_vector(void *p, const float *q, size_t dim, size_t k)
{
	sreader *r = p;
	uint32_t top[BENCH_VEC_K + 1];
	float score[BENCH_VEC_K + 1];
	float qn = bench_norm(q, dim);
	size_t have = 0, i = 0;
	int rc;
	if (k > BENCH_VEC_K)
		k = BENCH_VEC_K;
	free(r->q); /* blobs need not be aligned for float: copied here first */
	if (!(r->q = malloc(dim * sizeof(float)))) {
		bench_raw_fail("raw sqlite: out of memory");
		return -1;
	}
	while ((rc = sqlite3_step(r->vec)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(r->vec, 0);
		if ((size_t)sqlite3_column_bytes(r->vec, 0) != dim * sizeof(float) || !blob) {
			i++;
			continue;
		}
		const float *v = r->q;
		memcpy(r->q, blob, dim * sizeof(float));
		/* One row through the shared cosine routine (its norm computed here). */
		float s;
		uint32_t idx;
		if (qn > 0 && bench_cosine_topk(v, NULL, 1, dim, q, 1, &idx, &s) && !(have == k && s <= score[k - 1])) {
			size_t j = have < k ? have++ : k - 1;
			while (j > 0 && score[j - 1] < s) {
				score[j] = score[j - 1];
				top[j] = top[j - 1];
				j--;
			}
			score[j] = s;
			top[j] = (uint32_t)i;
		}
		i++;
	}
	sqlite3_reset(r->vec);
	return rc == SQLITE_DONE ? (int)have : fail(r->db, "vector scan");
}

const raw_engine bench_raw_sqlite = {
	.backend = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.add_one = sq_add_one,
	.load_entities = sq_load_entities,
	.load_relations = sq_load_relations,
	.reader = sq_reader,
	.reader_close = sq_reader_close,
	.get = sq_get,
	.neighbors = sq_neighbors,
	.paths = sq_paths,
	.vector = sq_vector,
};
#else
typedef int kg_bench_raw_sqlite_unused; /* ISO C wants a declaration */
#endif
