/*
 * sqlite.c - the SQLite backend, on the original system's schema.
 *
 * Files: the tables `entities` and `relations` exactly as the original
 * creates them (see docs/ARCHITECTURE.md, "SQLite files"), so one file goes
 * back and forth. Two tables are kgstore's own: `kgstore_sources` (the
 * original had no column for an entity's or relation's `source`) and
 * `kgstore_meta` (schema version). Insertion order is rowid order.
 *
 * Connections: one writer connection, used under `wlock` by one call or one
 * transaction at a time, and a small pool of read connections (WAL lets them
 * read while the writer writes). `:memory:` is one database, so it has the
 * writer connection only, and reads take turns on it.
 */
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kgstore/backend.h"
#include "sq_fts.h"

/* ------------------------------------------------------------------ */
/* SQL                                                                  */
/* ------------------------------------------------------------------ */

static const char SCHEMA_TABLES[] =
	"CREATE TABLE IF NOT EXISTS entities (id TEXT NOT NULL, tenant_id TEXT, entity_type TEXT NOT NULL, "
	"properties TEXT NOT NULL, embedding BLOB, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
	"updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (id, tenant_id));"
	"CREATE TABLE IF NOT EXISTS relations (id TEXT NOT NULL, tenant_id TEXT, relation_type TEXT NOT NULL, "
	"source_id TEXT NOT NULL, target_id TEXT NOT NULL, properties TEXT NOT NULL, weight REAL DEFAULT 1.0, "
	"created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
	"PRIMARY KEY (id, tenant_id));"
	"CREATE INDEX IF NOT EXISTS idx_entities_type ON entities(entity_type);"
	"CREATE INDEX IF NOT EXISTS idx_entities_tenant ON entities(tenant_id);"
	"CREATE INDEX IF NOT EXISTS idx_entities_tenant_type ON entities(tenant_id, entity_type);"
	"CREATE INDEX IF NOT EXISTS idx_relations_type ON relations(relation_type);"
	"CREATE INDEX IF NOT EXISTS idx_relations_source ON relations(source_id);"
	"CREATE INDEX IF NOT EXISTS idx_relations_target ON relations(target_id);"
	"CREATE INDEX IF NOT EXISTS idx_relations_tenant_source ON relations(tenant_id, source_id);"
	"CREATE INDEX IF NOT EXISTS idx_relations_tenant_target ON relations(tenant_id, target_id);";

/* kgstore's own tables, added to original files too (the original ignores them). */
static const char SCHEMA_OWN[] =
	"CREATE TABLE IF NOT EXISTS kgstore_meta (key TEXT PRIMARY KEY, value TEXT);"
	"INSERT OR IGNORE INTO kgstore_meta VALUES ('schema_version', '1');"
	"CREATE TABLE IF NOT EXISTS kgstore_sources (kind INTEGER NOT NULL, id TEXT NOT NULL, tenant_id TEXT, "
	"source TEXT NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS kgstore_sources_key ON kgstore_sources(kind, id, ifnull(tenant_id, ''));";

enum stmt_id {
	ST_GET_ENTITY,
	ST_HAS_ENTITY,
	ST_TENANT_HAS_ENTITIES,
	ST_TENANT_HAS_RELATIONS,
	ST_INSERT_ENTITY,
	ST_UPDATE_ENTITY,
	ST_DELETE_ENTITY,
	ST_DELETE_ENTITY_RELATIONS,
	ST_GET_RELATION,
	ST_HAS_RELATION,
	ST_INSERT_RELATION,
	ST_UPDATE_RELATION,
	ST_DELETE_RELATION,
	ST_RELATIONS_OUT,
	ST_RELATIONS_IN,
	ST_RELATIONS_BOTH,
	ST_SET_SOURCE,
	ST_DELETE_SOURCE,
	ST_ITER_ENTITIES,
	ST_ITER_ENTITIES_TYPE,
	ST_ITER_RELATIONS,
	ST_ITER_RELATIONS_TYPE,
	ST_LIST_ENTITIES,
	ST_LIST_ENTITIES_TYPE,
	ST_STATS_ENTITIES,
	ST_STATS_RELATIONS,
	ST_CLEAR_ENTITIES,
	ST_CLEAR_RELATIONS,
	ST_CLEAR_SOURCES,
	ST_TENANTS,
	ST_BEGIN,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_IN_SOURCES,
	ST_OUT_TARGETS,
	ST_RELATION_BY_ROWID,
	ST_DATA_VERSION,
	ST_MAX_ROWID,
	ST_ENTITY_BY_ROWID,
	ST_FTS_EXISTS,
	ST_FTS_STATE,
	ST_FTS_SET_STATE,
	ST_FTS_INSERT,
	ST_FTS_DELETE,
	ST_FTS_TOTALS_ADD,
	ST_FTS_TOTALS_PRUNE,
	ST_FTS_TOTALS,
	ST_FTS_ROWS_AFTER,
	ST_FTS_ROWS_UPTO,
	ST_FTS_ROWS_BY_ID,
	ST_FTS_ROWS_TENANT,
	ST_FTS_CANDIDATES,
	ST_TENANT_TABLES,
	ST_COUNT
};

/*
 * Every statement is written once for both tenant layouts (see "Tenant
 * tables"): E and R name the entities and relations tables, TIS(col, p) is
 * the test "row is in the call's tenant", TCOL(col) the tenant column as
 * read, TC / TV the tenant column and value of an INSERT. In the shared
 * layout they are the original's tables and tenant_id column; in the
 * per-tenant layout the tables are placeholders filled in per tenant and
 * the tenant tests are true ("?2 IS ?2" keeps the parameter numbers, so
 * one binding code serves both).
 */
#define ENTITY_COLS(TCOL)                                                                              \
	"e.rowid, e.id, " TCOL("e.tenant_id") ", e.entity_type, e.properties, e.embedding, e.created_at, "  \
	"e.updated_at, (SELECT source FROM kgstore_sources s WHERE s.kind = 0 AND s.id = e.id AND "        \
	"ifnull(s.tenant_id, '') = ifnull(" TCOL("e.tenant_id") ", '')) "
#define RELATION_COLS(TCOL)                                                                              \
	"r.rowid, r.id, " TCOL("r.tenant_id") ", r.relation_type, r.source_id, r.target_id, r.properties, "   \
	"r.weight, r.created_at, r.updated_at, (SELECT source FROM kgstore_sources s WHERE s.kind = 1 AND "  \
	"s.id = r.id AND ifnull(s.tenant_id, '') = ifnull(" TCOL("r.tenant_id") ", '')) "

#define TIS_SHARED(col, p) col " IS " p
#define TCOL_SHARED(col) col
#define TIS_TABLES(col, p) p " IS " p
#define TCOL_TABLES(col) "\001T"

#define SQL_STATEMENTS(E, R, TIS, TCOL, TC, TV)                                                                        \
	{                                                                                                                  \
		[ST_GET_ENTITY] = "SELECT " ENTITY_COLS(TCOL) "FROM " E " e WHERE e.id = ?1 AND " TIS("e.tenant_id", "?2"),   \
		[ST_HAS_ENTITY] = "SELECT 1 FROM " E " WHERE id = ?1 AND " TIS("tenant_id", "?2"),                          \
		[ST_TENANT_HAS_ENTITIES] = "SELECT 1 FROM " E " WHERE " TIS("tenant_id", "?1") " LIMIT 1",                   \
		[ST_TENANT_HAS_RELATIONS] = "SELECT 1 FROM " R " WHERE " TIS("tenant_id", "?1") " LIMIT 1",                  \
		[ST_INSERT_ENTITY] = "INSERT INTO " E " (id" TC ", entity_type, properties, embedding, created_at, "          \
		                     "updated_at) VALUES (?1" TV ", ?3, ?4, ?5, ?6, ?7)",                                     \
		[ST_UPDATE_ENTITY] = "UPDATE " E " SET entity_type = ?3, properties = ?4, embedding = ?5, updated_at = ?6 "   \
		                     "WHERE id = ?1 AND " TIS("tenant_id", "?2"),                                             \
		[ST_DELETE_ENTITY] = "DELETE FROM " E " WHERE id = ?1 AND " TIS("tenant_id", "?2"),                           \
		[ST_DELETE_ENTITY_RELATIONS] = "DELETE FROM " R " WHERE " TIS("tenant_id", "?2") " AND (source_id = ?1 OR "   \
		                               "target_id = ?1) RETURNING id",                                                \
		[ST_GET_RELATION] = "SELECT " RELATION_COLS(TCOL) "FROM " R " r WHERE r.id = ?1 AND "                          \
		                    TIS("r.tenant_id", "?2"),                                                                 \
		[ST_HAS_RELATION] = "SELECT 1 FROM " R " WHERE id = ?1 AND " TIS("tenant_id", "?2"),                        \
		[ST_INSERT_RELATION] = "INSERT INTO " R " (id" TC ", relation_type, source_id, target_id, properties, "       \
		                       "weight, created_at, updated_at) VALUES (?1" TV ", ?3, ?4, ?5, ?6, ?7, ?8, ?9)",       \
		[ST_UPDATE_RELATION] = "UPDATE " R " SET relation_type = ?3, source_id = ?4, target_id = ?5, "               \
		                       "properties = ?6, weight = ?7, updated_at = ?8 WHERE id = ?1 AND "                     \
		                       TIS("tenant_id", "?2"),                                                                \
		[ST_DELETE_RELATION] = "DELETE FROM " R " WHERE id = ?1 AND " TIS("tenant_id", "?2"),                         \
		[ST_RELATIONS_OUT] = "SELECT " RELATION_COLS(TCOL) "FROM " R " r WHERE " TIS("r.tenant_id", "?2")             \
		                     " AND r.source_id = ?1 AND (?3 IS NULL OR r.relation_type = ?3) ORDER BY r.rowid",       \
		[ST_RELATIONS_IN] = "SELECT " RELATION_COLS(TCOL) "FROM " R " r WHERE " TIS("r.tenant_id", "?2")              \
		                    " AND r.target_id = ?1 AND (?3 IS NULL OR r.relation_type = ?3) ORDER BY r.rowid",        \
		[ST_RELATIONS_BOTH] = "SELECT " RELATION_COLS(TCOL) "FROM " R " r WHERE " TIS("r.tenant_id", "?2")            \
		                      " AND (r.source_id = ?1 OR r.target_id = ?1) AND (?3 IS NULL OR r.relation_type = ?3) " \
		                      "ORDER BY r.rowid",                                                                     \
		[ST_SET_SOURCE] = "INSERT OR REPLACE INTO kgstore_sources (kind, id, tenant_id, source) VALUES (?1, ?2, ?3, "  \
		                  "?4)",                                                                                      \
		[ST_DELETE_SOURCE] = "DELETE FROM kgstore_sources WHERE kind = ?1 AND id = ?2 AND ifnull(tenant_id, '') = "   \
		                     "ifnull(?3, '')",                                                                        \
		/* "+tenant_id": before ANALYZE statistics exist the planner would                                          \
		 * take a tenant index and sort every page; the rowid range is the                                          \
		 * plan wanted. */                                                                                           \
		[ST_ITER_ENTITIES] = "SELECT " ENTITY_COLS(TCOL) "FROM " E " e WHERE " TIS("+e.tenant_id", "?1")              \
		                     " AND e.rowid > ?2 ORDER BY e.rowid LIMIT ?3",                                           \
		[ST_ITER_ENTITIES_TYPE] = "SELECT " ENTITY_COLS(TCOL) "FROM " E " e WHERE " TIS("+e.tenant_id", "?1")         \
		                          " AND e.rowid > ?2 AND e.entity_type = ?4 ORDER BY e.rowid LIMIT ?3",               \
		[ST_ITER_RELATIONS] = "SELECT " RELATION_COLS(TCOL) "FROM " R " r WHERE " TIS("+r.tenant_id", "?1")           \
		                      " AND r.rowid > ?2 ORDER BY r.rowid LIMIT ?3",                                          \
		[ST_ITER_RELATIONS_TYPE] = "SELECT " RELATION_COLS(TCOL) "FROM " R " r WHERE " TIS("+r.tenant_id", "?1")      \
		                           " AND r.rowid > ?2 AND r.relation_type = ?4 ORDER BY r.rowid LIMIT ?3",            \
		[ST_LIST_ENTITIES] = "SELECT " ENTITY_COLS(TCOL) "FROM " E " e WHERE " TIS("e.tenant_id", "?1")               \
		                     " ORDER BY e.rowid LIMIT ?2 OFFSET ?3",                                                  \
		[ST_LIST_ENTITIES_TYPE] = "SELECT " ENTITY_COLS(TCOL) "FROM " E " e WHERE " TIS("e.tenant_id", "?1")          \
		                          " AND e.entity_type = ?4 ORDER BY e.rowid LIMIT ?2 OFFSET ?3",                      \
		[ST_STATS_ENTITIES] = "SELECT entity_type, count(*) FROM " E " WHERE " TIS("tenant_id", "?1")                 \
		                      " GROUP BY entity_type",                                                                \
		[ST_STATS_RELATIONS] = "SELECT relation_type, count(*) FROM " R " WHERE " TIS("tenant_id", "?1")              \
		                       " GROUP BY relation_type",                                                             \
		[ST_CLEAR_ENTITIES] = "DELETE FROM " E " WHERE " TIS("tenant_id", "?1"),                                      \
		[ST_CLEAR_RELATIONS] = "DELETE FROM " R " WHERE " TIS("tenant_id", "?1"),                                     \
		[ST_CLEAR_SOURCES] = "DELETE FROM kgstore_sources WHERE ifnull(tenant_id, '') = ifnull(?1, '')",               \
		[ST_TENANTS] = "SELECT tenant_id FROM entities WHERE tenant_id IS NOT NULL UNION "                             \
		               "SELECT tenant_id FROM relations WHERE tenant_id IS NOT NULL ORDER BY 1",                       \
		/* Transaction control as cached statements: sqlite3_exec would                                            \
		 * parse them on every call, a measurable part of a single add. */                                         \
		[ST_BEGIN] = "BEGIN IMMEDIATE",                                                                                \
		[ST_BEGIN_READ] = "BEGIN",                                                                                     \
		[ST_COMMIT] = "COMMIT",                                                                                        \
		[ST_ROLLBACK] = "ROLLBACK",                                                                                    \
		[ST_SAVEPOINT] = "SAVEPOINT kgcall",                                                                           \
		[ST_RELEASE] = "RELEASE kgcall",                                                                               \
		[ST_ROLLBACK_TO] = "ROLLBACK TO kgcall",                                                                       \
		/* Light rows for path search: ids only, in insertion order. */                                            \
		[ST_IN_SOURCES] = "SELECT source_id FROM " R " WHERE " TIS("tenant_id", "?2") " AND target_id = ?1 "          \
		                  "ORDER BY rowid",                                                                           \
		[ST_OUT_TARGETS] = "SELECT rowid, target_id FROM " R " WHERE " TIS("tenant_id", "?2") " AND source_id = ?1 "  \
		                   "ORDER BY rowid",                                                                          \
		[ST_RELATION_BY_ROWID] = "SELECT " RELATION_COLS(TCOL) "FROM " R " r WHERE r.rowid = ?1",                      \
		/* The text index (see "Text search"), on the shared tables only. */                                       \
		[ST_DATA_VERSION] = "PRAGMA data_version",                                                                     \
		/* Two subqueries: each keeps SQLite's one-step min/max plan. */                                             \
		[ST_MAX_ROWID] = "SELECT (SELECT max(rowid) FROM entities), (SELECT min(rowid) FROM entities)",                \
		[ST_ENTITY_BY_ROWID] = "SELECT " ENTITY_COLS(TCOL_SHARED) "FROM entities e WHERE e.rowid = ?1",                \
		[ST_FTS_EXISTS] = "SELECT count(*) FROM sqlite_master WHERE name IN ('kgstore_fts', 'kgstore_fts_state', "    \
		                  "'kgstore_fts_totals')",                                                                    \
		[ST_FTS_STATE] = "SELECT watermark, docs, hashsum FROM kgstore_fts_state WHERE k = 0",                         \
		[ST_FTS_SET_STATE] = "UPDATE kgstore_fts_state SET watermark = ?1, docs = ?2, hashsum = ?3 WHERE k = 0",       \
		[ST_FTS_INSERT] = "INSERT INTO kgstore_fts (rowid, body) VALUES (?1, ?2)",                                     \
		[ST_FTS_DELETE] = "INSERT INTO kgstore_fts (kgstore_fts, rowid, body) VALUES ('delete', ?1, ?2)",              \
		[ST_FTS_TOTALS_ADD] = "INSERT INTO kgstore_fts_totals (tenant, entity_type, docs, tokens) VALUES (?1, ?2, ?3, " \
		                      "?4) ON CONFLICT (tenant, entity_type) DO UPDATE SET docs = docs + excluded.docs, "    \
		                      "tokens = tokens + excluded.tokens",                                                    \
		[ST_FTS_TOTALS_PRUNE] = "DELETE FROM kgstore_fts_totals WHERE docs <= 0",                                     \
		[ST_FTS_TOTALS] = "SELECT sum(docs), sum(tokens) FROM kgstore_fts_totals WHERE tenant = ?1 "                   \
		                  "AND (?2 IS NULL OR entity_type = ?2)",                                                     \
		[ST_FTS_ROWS_AFTER] = "SELECT rowid, id, tenant_id, entity_type, properties FROM entities WHERE rowid > ?1 "   \
		                      "ORDER BY rowid",                                                                       \
		[ST_FTS_ROWS_UPTO] = "SELECT rowid, id, tenant_id, entity_type, properties FROM entities WHERE rowid <= ?1",   \
		[ST_FTS_ROWS_BY_ID] = "SELECT rowid, id, tenant_id, entity_type, properties FROM entities WHERE id = ?1 "      \
		                      "AND tenant_id IS ?2",                                                                  \
		[ST_FTS_ROWS_TENANT] = "SELECT rowid, id, tenant_id, entity_type, properties FROM entities WHERE "             \
		                       "tenant_id IS ?1 AND rowid <= ?2",                                                     \
		/* CROSS JOIN fixes the loop order: without statistics the planner                                         \
		 * would walk the tenant index and probe the index once per row. */                                        \
		[ST_FTS_CANDIDATES] = "SELECT e.rowid, e.id, e.entity_type, e.properties FROM kgstore_fts CROSS JOIN "        \
		                      "entities e ON e.rowid = kgstore_fts.rowid WHERE kgstore_fts MATCH ?1 AND "             \
		                      "e.tenant_id IS ?2 AND (?3 IS NULL OR e.entity_type = ?3) ORDER BY e.rowid",            \
		/* A tenant's tables (?1 entities, ?2 relations) and their CREATE                                          \
		 * text, which names the tenant that kgstore made them for. */                                             \
		[ST_TENANT_TABLES] = "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name COLLATE NOCASE "      \
		                     "IN (?1, ?2, ?3, ?4)",                                                                   \
	}

static const char *const SQL_SHARED[ST_COUNT] =
	SQL_STATEMENTS("entities", "relations", TIS_SHARED, TCOL_SHARED, ", tenant_id", ", ?2");
/* \001E, \001R: the tenant's tables; \001T: the tenant id as a literal. */
static const char *const SQL_TABLES[ST_COUNT] = SQL_STATEMENTS("\001E", "\001R", TIS_TABLES, TCOL_TABLES, "", "");

/* The text index, kgstore's own tables (the original ignores them):
 * kgstore_fts is a contentless FTS5 table keyed by the entities rowid,
 * holding each entity's tokens (sq_fts.h); kgstore_fts_state the highest
 * rowid indexed (the watermark; INT64_MIN when empty, as rowids may be
 * negative in files written by others), how many rows the index holds and the
 * wrapping sum of their fingerprints; kgstore_fts_totals documents and
 * tokens per tenant and type, for BM25's corpus statistics. */
static const char SCHEMA_FTS[] =
	"CREATE VIRTUAL TABLE IF NOT EXISTS kgstore_fts USING fts5(body, content='', tokenize='ascii', "
	"detail='none', columnsize=0);"
	"CREATE TABLE IF NOT EXISTS kgstore_fts_state (k INTEGER PRIMARY KEY CHECK (k = 0), watermark INTEGER NOT NULL, "
	"docs INTEGER NOT NULL, hashsum INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO kgstore_fts_state VALUES (0, -9223372036854775808, 0, 0);"
	"CREATE TABLE IF NOT EXISTS kgstore_fts_totals (tenant TEXT NOT NULL, entity_type TEXT NOT NULL, "
	"docs INTEGER NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (tenant, entity_type)) WITHOUT ROWID;";

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

typedef struct tenant_stmts tenant_stmts;

typedef struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	tenant_stmts **tn; /* per-tenant statements (tenant tables), most recent first */
	size_t n_tn;
} conn;

/* A transaction of kg_begin, or (pinned set) a read snapshot that one
 * multi-query operation runs in: its queries then share one connection and
 * one read transaction instead of taking the file locks once each. */
/* Indexes dropped for a bulk load, to build again before commit. */
typedef struct deferred_idx {
	char *create; /* their CREATE INDEX statements, one script; NULL: none dropped */
} deferred_idx;

/* A table bulk-loaded inside a transaction (see "Bulk loads"). */
typedef struct bulk_table {
	char *table;
	size_t rows;      /* rows bulk-added so far in this transaction */
	deferred_idx defer;
} bulk_table;

typedef struct sq_txn {
	struct conn *pinned;
	bulk_table *bulk;
	size_t n_bulk;
} sq_txn;

#define MAX_READERS 8
/* Bytes of the file each connection reads through mmap (PRAGMA mmap_size). */
#define KG_SQ_MMAP_SIZE "1073741824"
/* Path searches up to this depth run on fixed arrays (deeper ones: generic). */
#define KG_SQ_MAX_DEPTH 62

typedef struct sq_backend {
	kg_backend base;
	char *path;
	int in_memory;
	double timeout;
	int check_same_thread;
	int tenant_tables;     /* 1: tenants in tables of their own (see "Tenant tables") */
	unsigned char tabled[ST_COUNT]; /* statement names a tenant's tables */
	pthread_t owner;
	conn writer;
	pthread_mutex_t wlock; /* the writer connection: one call or one transaction */
	pthread_cond_t wcond;
	sq_txn *active_txn;    /* under wlock */
	int writer_busy;       /* a call is using the writer connection (under wlock) */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	conn *readers[MAX_READERS]; /* idle ones */
	size_t n_idle, n_open;
	char *journal_mode, *synchronous;
	long cache_size;
	/* Text index state, touched only by the holder of the writer
	 * connection (see "Text search"). */
	int fts_off;               /* FTS5 missing from this SQLite: always scan */
	int fts_fresh;             /* fts_dv read during this hold of the writer */
	int fts_known;             /* fields below loaded at writer data_version fts_dv */
	sqlite3_int64 fts_dv;
	int fts_exists;
	int fts_trusted;           /* index verified to match rows <= fts_w at fts_dv */
	sqlite3_int64 fts_w, fts_docs;
	uint64_t fts_hash;
	int fts_dirty;             /* changed by the current call: written at its end */
	int fts_txn_dirty;         /* changed inside the open kg_begin transaction */
	struct fts_acc *fts_acc;   /* per-call totals deltas */
	int64_t time_us;           /* bind_time's last instant and its text (writer) */
	char time_text[32];
	kg_fts_text fts_text;      /* scratch */
} sq_backend;

static sq_backend *sb_of(kg_backend *b) { return (sq_backend *)b; }

/* Turns an SQLite failure into a kgstore code and a message that says what
 * to do. */
static int sq_error(sq_backend *sb, kg_call *c, sqlite3 *db, int src, const char *what)
{
	const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(src);
	switch (src & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return kg_call_error(c, KG_EBUSY,
		                     "%s: the database %s is locked by another writer (waited %.1f s); another process or "
		                     "connection holds a write transaction. Retry later, raise the timeout "
		                     "(sqlite:%s?timeout=30), or make sure other writers commit promptly",
		                     what, sb->path, sb->timeout, sb->path);
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return kg_call_error(c, KG_ECORRUPT, "%s: %s is not a valid SQLite database or is damaged (%s); restore "
		                     "it from a backup or export what is readable",
		                     what, sb->path, msg);
	case SQLITE_READONLY:
		return kg_call_error(c, KG_EIO, "%s: %s is read-only (%s); check the file's permissions", what, sb->path, msg);
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
		return kg_call_error(c, KG_EIO, "%s: I/O error on %s (%s); check the disk and the file's permissions", what,
		                     sb->path, msg);
	case SQLITE_NOMEM:
		return kg_call_error(c, KG_ENOMEM, "%s: out of memory", what);
	default:
		return kg_call_error(c, KG_EINTERNAL, "%s: SQLite error %d (%s)", what, src, msg);
	}
}

/* Empty stand-ins of a tenant's missing tables (see "Tenant tables"). */
static const char TT_STANDINS[] =
	"CREATE TEMP TABLE IF NOT EXISTS kgstore_void_entities (id TEXT, entity_type TEXT, properties TEXT, "
	"embedding BLOB, created_at, updated_at);"
	"CREATE TEMP TABLE IF NOT EXISTS kgstore_void_relations (id TEXT, relation_type TEXT, source_id TEXT, "
	"target_id TEXT, properties TEXT, weight REAL, created_at, updated_at);";

/* The empty stand-ins of missing tenant tables (see "Tenant tables"). */
static int conn_standins(sq_backend *sb, conn *cn, char *err, size_t errcap)
{
	int src = sqlite3_exec(cn->db, TT_STANDINS, NULL, NULL, NULL);
	if (src == SQLITE_OK)
		return 0;
	snprintf(err, errcap, "cannot set up a connection to %s: %s", sb->path, sqlite3_errmsg(cn->db));
	return src == SQLITE_NOMEM ? KG_ENOMEM : KG_EIO;
}

static int conn_open(sq_backend *sb, conn *cn, int create, char *err, size_t errcap)
{
	memset(cn, 0, sizeof(*cn));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	int rc = sqlite3_open_v2(sb->in_memory ? ":memory:" : sb->path, &cn->db, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errcap, "cannot open SQLite database %s: %s; check the path and its permissions", sb->path,
		         cn->db ? sqlite3_errmsg(cn->db) : sqlite3_errstr(rc));
		sqlite3_close(cn->db);
		cn->db = NULL;
		return rc == SQLITE_NOMEM ? KG_ENOMEM : KG_EIO;
	}
	sqlite3_busy_timeout(cn->db, (int)(sb->timeout * 1000));
	/* Reads through a shared memory map of the file instead of each
	 * connection's own page cache filled by pread: a large file read by
	 * several pooled connections then costs no syscall per page. */
	if (!sb->in_memory)
		sqlite3_exec(cn->db, "PRAGMA mmap_size=" KG_SQ_MMAP_SIZE, NULL, NULL, NULL);
	sqlite3_extended_result_codes(cn->db, 0);
	/* Outside any transaction: a rollback would take them away. The
	 * writer's are made once the layout is known (prepare_database). */
	if (sb->tenant_tables == 1 && (rc = conn_standins(sb, cn, err, errcap)) < 0) {
		sqlite3_close(cn->db);
		cn->db = NULL;
		return rc;
	}
	return 0;
}

static void tt_free(tenant_stmts *ts);

static void conn_close(conn *cn)
{
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(cn->st[i]);
	for (size_t i = 0; i < cn->n_tn; i++)
		tt_free(cn->tn[i]);
	free(cn->tn);
	sqlite3_close(cn->db);
	memset(cn, 0, sizeof(*cn));
}

/* ------------------------------------------------------------------ */
/* Tenant tables                                                        */
/* ------------------------------------------------------------------ */

/*
 * The original's "separate schema" mode keeps tenant T's rows in tables of
 * its own, tenant_<T with '-' as '_'>_entities and _relations, the columns
 * of entities/relations without tenant_id; the global namespace stays in
 * entities/relations. kgstore reads and writes that layout with the same
 * statements (SQL_TABLES), prepared per tenant and connection.
 *
 * Two tenant ids can name the same tables ("a-b" and "a_b"; "Acme" and
 * "acme", as SQLite's names ignore case), yet they are two tenants. Tables
 * kgstore creates carry their tenant id in a comment of their CREATE text
 * (kept by SQLite in sqlite_master). A tenant whose original name is taken
 * by another tenant's tables gets tables under a name of kgstore's own,
 * kgstore_tenant_<id, escaped>_entities / _relations, where the escape
 * (see tt_names) keeps every id apart; the original does not see those.
 * Tables the original created have no comment: any id that names them
 * reads and writes them, as in the original.
 *
 * A tenant without tables reads as empty: its statements are prepared on
 * empty stand-in tables of the connection's temp schema, so reading never
 * creates anything; the first write creates the tables (CREATE TABLE in
 * the write's transaction, so a failed write leaves none). While a
 * tenant's tables are missing, each use looks again in sqlite_master, as
 * another connection may create them.
 */
#define TT_ENTITIES 1u
#define TT_RELATIONS 2u
#define TT_BOTH 3u
#define TT_MAX_CACHED 64 /* tenants with prepared statements per connection */
#define TT_OWNER_TAG "/* kgstore tenant: "
#define TT_NAME_MAX 560  /* a table name: "kgstore_tenant_" + 2 x 255 + "_relations" */

struct tenant_stmts {
	char *tenant;
	int own_name;  /* tables under kgstore's name (the original's is taken) */
	unsigned have; /* TT_*: real tables the statements use (else stand-ins) */
	int fresh;     /* own_name and have known to match the database */
	sqlite3_stmt *st[ST_COUNT];
};

static int tt_on(const sq_backend *sb, const kg_call *c) { return sb->tenant_tables && c->tenant; }

/* A tenant's table names (buffers of TT_NAME_MAX). The original's:
 * tenant_<id with '-' as '_'>_entities. kgstore's own: '_' as "_0", '-' as
 * "_1", an upper-case letter as '_' and the letter in lower case, so that
 * no two ids (nor two that differ in case) share a name. */
static void tt_names(const char *tenant, int own_name, char *ent, char *rel)
{
	char mid[2 * 256 + 1]; /* every character of a 255-character id escaped */
	size_t n = 0;
	for (const char *p = tenant; *p && n + 2 < sizeof(mid); p++) {
		if (!own_name)
			mid[n++] = *p == '-' ? '_' : *p;
		else if (*p == '_' || *p == '-')
			mid[n++] = '_', mid[n++] = *p == '_' ? '0' : '1';
		else if (*p >= 'A' && *p <= 'Z')
			mid[n++] = '_', mid[n++] = (char)(*p - 'A' + 'a');
		else
			mid[n++] = *p;
	}
	mid[n] = '\0';
	const char *prefix = own_name ? "kgstore_tenant_" : "tenant_";
	snprintf(ent, TT_NAME_MAX, "%s%s_entities", prefix, mid);
	snprintf(rel, TT_NAME_MAX, "%s%s_relations", prefix, mid);
}

static void tt_finalize(tenant_stmts *ts)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(ts->st[i]);
		ts->st[i] = NULL;
	}
}

static void tt_free(tenant_stmts *ts)
{
	if (!ts)
		return;
	tt_finalize(ts);
	free(ts->tenant);
	free(ts);
}

static int tt_busy(const tenant_stmts *ts)
{
	for (int i = 0; i < ST_COUNT; i++)
		if (ts->st[i] && sqlite3_stmt_busy(ts->st[i]))
			return 1;
	return 0;
}

/* After a rollback of the writer: tables it created may be gone. */
static void tt_stale(conn *cn)
{
	for (size_t i = 0; i < cn->n_tn; i++)
		cn->tn[i]->fresh = 0;
}

/* The tenant a table was made for, from its CREATE text: into buf, or ""
 * for a table without kgstore's tag (made by the original). */
static void tt_owner(const char *sql, char *buf, size_t cap)
{
	const char *tag = sql ? strstr(sql, TT_OWNER_TAG) : NULL;
	buf[0] = '\0';
	if (!tag)
		return;
	tag += strlen(TT_OWNER_TAG);
	size_t n = strcspn(tag, " *");
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, tag, n);
	buf[n] = '\0';
}

static int tt_has_columns(sq_backend *sb, kg_call *c, conn *cn, const char *table, int relations)
{
	static const char *const ecols[] = { "id", "entity_type", "properties", "embedding", "created_at", "updated_at",
		                                 NULL };
	static const char *const rcols[] = { "id", "relation_type", "source_id", "target_id", "properties", "weight",
		                                 "created_at", "updated_at", NULL };
	const char *const *cols = relations ? rcols : ecols;
	for (size_t i = 0; cols[i]; i++)
		if (sqlite3_table_column_metadata(cn->db, "main", table, cols[i], NULL, NULL, NULL, NULL, NULL) != SQLITE_OK)
			return kg_call_error(c, KG_EINVAL, "table %s of %s has no column %s: it is not a per-tenant table of "
			                                   "the original schema; rename it, or open with tenancy=shared",
			                     table, sb->path, cols[i]);
	return 0;
}

static sqlite3_stmt *stmt(sq_backend *sb, conn *cn, kg_call *c, enum stmt_id id, int *rc);
static int exec(sq_backend *sb, kg_call *c, sqlite3 *db, const char *sql, const char *what);

/* The statement in *slot, prepared from `sql` the first time; reset, its
 * bindings cleared. */
static sqlite3_stmt *cached(sq_backend *sb, conn *cn, kg_call *c, sqlite3_stmt **slot, const char *sql, int *rc)
{
	if (!*slot) {
		int src = sqlite3_prepare_v3(cn->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
		if (src != SQLITE_OK) {
			*rc = sq_error(sb, c, cn->db, src, "preparing a statement");
			return NULL;
		}
	}
	sqlite3_reset(*slot);
	sqlite3_clear_bindings(*slot);
	return *slot;
}

/* Looks the tenant's tables up and decides which it uses: kgstore's own
 * name if those exist, else the original's unless another tenant's tag is
 * on them. Statements prepared on other tables than that are dropped. */
static int tt_check(sq_backend *sb, kg_call *c, conn *cn, tenant_stmts *ts)
{
	char names[4][TT_NAME_MAX]; /* original's entities, relations; kgstore's */
	tt_names(ts->tenant, 0, names[0], names[1]);
	tt_names(ts->tenant, 1, names[2], names[3]);
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, cn, c, ST_TENANT_TABLES, &rc);
	if (!st)
		return rc;
	for (int i = 0; i < 4; i++)
		sqlite3_bind_text(st, i + 1, names[i], -1, SQLITE_STATIC);
	unsigned orig = 0, own = 0;
	int taken = 0, src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		int k = 0;
		while (k < 3 && sqlite3_stricmp(name, names[k]) != 0)
			k++;
		char owner[300];
		tt_owner((const char *)sqlite3_column_text(st, 1), owner, sizeof(owner));
		if (k >= 2)
			own |= k == 2 ? TT_ENTITIES : TT_RELATIONS;
		else if (owner[0] && strcmp(owner, ts->tenant) != 0)
			taken = 1;
		else
			orig |= k == 0 ? TT_ENTITIES : TT_RELATIONS;
	}
	sqlite3_reset(st);
	if (src != SQLITE_DONE)
		return sq_error(sb, c, cn->db, src, "looking up a tenant's tables");
	int own_name = own || taken;
	unsigned have = own_name ? own : orig;
	for (int k = 0; k < 2; k++) {
		unsigned bit = k ? TT_RELATIONS : TT_ENTITIES;
		if ((have & bit) && !(ts->have & bit) && (rc = tt_has_columns(sb, c, cn, names[2 * own_name + k], k)) < 0)
			return rc;
	}
	if (have != ts->have || own_name != ts->own_name) {
		tt_finalize(ts);
		ts->have = have;
		ts->own_name = own_name;
	}
	ts->fresh = 1;
	return 0;
}

/* The connection's statement set of the call's tenant, made on first use
 * (the least recently used one goes when TT_MAX_CACHED are held). */
static int tt_entry(sq_backend *sb, kg_call *c, conn *cn, tenant_stmts **out)
{
	size_t i = 0;
	while (i < cn->n_tn && strcmp(cn->tn[i]->tenant, c->tenant) != 0)
		i++;
	tenant_stmts *ts;
	if (i < cn->n_tn) {
		ts = cn->tn[i];
		memmove(cn->tn + 1, cn->tn, i * sizeof(*cn->tn));
	} else {
		if (!cn->tn && !(cn->tn = calloc(TT_MAX_CACHED, sizeof(*cn->tn))))
			return kg_call_error(c, KG_ENOMEM, "out of memory preparing statements for tenant '%s'", c->tenant);
		if (cn->n_tn == TT_MAX_CACHED) {
			size_t victim = cn->n_tn;
			while (victim > 0 && tt_busy(cn->tn[victim - 1]))
				victim--;
			if (victim == 0)
				return kg_call_error(c, KG_EBUSY, "%d tenants have queries running on one connection; finish "
				                                  "some iterations first", TT_MAX_CACHED);
			tt_free(cn->tn[victim - 1]);
			memmove(cn->tn + victim - 1, cn->tn + victim, (cn->n_tn - victim) * sizeof(*cn->tn));
			cn->n_tn--;
		}
		if (!(ts = calloc(1, sizeof(*ts))) || !(ts->tenant = strdup(c->tenant))) {
			free(ts);
			return kg_call_error(c, KG_ENOMEM, "out of memory preparing statements for tenant '%s'", c->tenant);
		}
		memmove(cn->tn + 1, cn->tn, cn->n_tn * sizeof(*cn->tn));
		cn->n_tn++;
	}
	cn->tn[0] = ts;
	int rc = 0;
	if ((!ts->fresh || ts->have != TT_BOTH) && !tt_busy(ts))
		rc = tt_check(sb, c, cn, ts);
	*out = ts;
	return rc;
}

/* SQL_TABLES[id] with the tenant's tables and id filled in. Caller frees. */
static char *tt_expand(const char *tmpl, const tenant_stmts *ts)
{
	char names[2][TT_NAME_MAX];
	tt_names(ts->tenant, ts->own_name, names[0], names[1]);
	size_t cap = strlen(tmpl) + 1;
	for (const char *p = tmpl; (p = strchr(p, '\001')); p++)
		cap += TT_NAME_MAX + 8;
	char *out = malloc(cap), *o = out;
	if (!out)
		return NULL;
	for (const char *p = tmpl; *p; p++) {
		if (*p != '\001') {
			*o++ = *p;
			continue;
		}
		size_t left = cap - (size_t)(o - out);
		int rel = *++p == 'R';
		if (*p == 'T')
			o += snprintf(o, left, "'%s'", ts->tenant);
		else if (ts->have & (rel ? TT_RELATIONS : TT_ENTITIES))
			o += snprintf(o, left, "main.\"%s\"", names[rel]);
		else
			o += snprintf(o, left, "temp.kgstore_void_%s", rel ? "relations" : "entities");
	}
	*o = '\0';
	return out;
}

/* stmt() for a statement on a tenant's own tables. */
static sqlite3_stmt *tt_stmt(sq_backend *sb, conn *cn, kg_call *c, enum stmt_id id, int *rc)
{
	tenant_stmts *ts;
	if ((*rc = tt_entry(sb, c, cn, &ts)) < 0)
		return NULL;
	if (ts->st[id])
		return cached(sb, cn, c, &ts->st[id], NULL, rc);
	char *sql = tt_expand(SQL_TABLES[id], ts);
	if (!sql) {
		*rc = kg_call_error(c, KG_ENOMEM, "out of memory preparing a statement");
		return NULL;
	}
	sqlite3_stmt *st = cached(sb, cn, c, &ts->st[id], sql, rc);
	free(sql);
	return st;
}

/* Before a write that may add rows: creates the tenant's tables (and
 * indexes) when missing, in the write's transaction. */
static int tt_ensure(sq_backend *sb, kg_call *c)
{
	if (!tt_on(sb, c))
		return 0;
	tenant_stmts *ts;
	int rc = tt_entry(sb, c, &sb->writer, &ts);
	if (rc < 0 || ts->have == TT_BOTH)
		return rc;
	char e[TT_NAME_MAX], r[TT_NAME_MAX];
	tt_names(c->tenant, ts->own_name, e, r);
	char *sql = sqlite3_mprintf(
		"CREATE TABLE IF NOT EXISTS main.\"%w\" " TT_OWNER_TAG "%s */ (id TEXT NOT NULL PRIMARY KEY, "
		"entity_type TEXT NOT NULL, properties TEXT NOT NULL, embedding BLOB, created_at TIMESTAMP DEFAULT "
		"CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);"
		"CREATE TABLE IF NOT EXISTS main.\"%w\" " TT_OWNER_TAG "%s */ (id TEXT NOT NULL PRIMARY KEY, "
		"relation_type TEXT NOT NULL, source_id TEXT NOT NULL, target_id TEXT NOT NULL, properties TEXT NOT NULL, "
		"weight REAL DEFAULT 1.0, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT "
		"CURRENT_TIMESTAMP);"
		"CREATE INDEX IF NOT EXISTS main.\"idx_%w_type\" ON \"%w\"(entity_type);"
		"CREATE INDEX IF NOT EXISTS main.\"idx_%w_type\" ON \"%w\"(relation_type);"
		"CREATE INDEX IF NOT EXISTS main.\"idx_%w_source\" ON \"%w\"(source_id);"
		"CREATE INDEX IF NOT EXISTS main.\"idx_%w_target\" ON \"%w\"(target_id);",
		e, c->tenant, r, c->tenant, e, e, r, r, r, r, r, r);
	if (!sql)
		return kg_call_error(c, KG_ENOMEM, "out of memory creating the tables of tenant '%s'", c->tenant);
	rc = exec(sb, c, sb->writer.db, sql, "creating the tenant's tables");
	sqlite3_free(sql);
	if (rc < 0)
		return rc;
	ts->fresh = 0;
	return tt_check(sb, c, &sb->writer, ts); /* the tables now there, checked as any */
}

/* The table of one kind a call's rows go to (into buf, TT_NAME_MAX). */
static void kind_table(const sq_backend *sb, const kg_call *c, int relations, char *buf)
{
	if (!tt_on(sb, c)) {
		snprintf(buf, TT_NAME_MAX, "%s", relations ? "relations" : "entities");
		return;
	}
	int own_name = 0; /* the writer's entry for the tenant, made by tt_ensure */
	for (size_t i = 0; i < sb->writer.n_tn; i++)
		if (strcmp(sb->writer.tn[i]->tenant, c->tenant) == 0)
			own_name = sb->writer.tn[i]->own_name;
	char other[TT_NAME_MAX];
	if (relations)
		tt_names(c->tenant, own_name, other, buf);
	else
		tt_names(c->tenant, own_name, buf, other);
}

/* A prepared statement of the connection, reset, bindings cleared. */
static sqlite3_stmt *stmt(sq_backend *sb, conn *cn, kg_call *c, enum stmt_id id, int *rc)
{
	if (sb->tabled[id] && tt_on(sb, c))
		return tt_stmt(sb, cn, c, id, rc);
	return cached(sb, cn, c, &cn->st[id], SQL_SHARED[id], rc);
}

static int check_thread(sq_backend *sb, kg_call *c)
{
	if (sb->check_same_thread && !pthread_equal(sb->owner, pthread_self()))
		return kg_call_error(c, KG_EINVAL, "this SQLite store was opened with check_same_thread=1 and is used from "
		                                   "another thread; open it with check_same_thread=0 to share it");
	return 0;
}

/* Takes the writer connection for one call (or confirms the transaction
 * holds it), waiting up to the timeout for another handle's transaction.
 * Another call holding the writer is waited for without a limit: it ends
 * on its own, and under load (several threads taking turns on one
 * connection, as `:memory:` does for reads too) a limit there failed
 * calls with KG_EBUSY though no transaction was in the way. */
static int writer_acquire(sq_backend *sb, kg_call *c)
{
	int rc = check_thread(sb, c);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&sb->wlock);
	if (c->txn && sb->active_txn != c->txn) {
		pthread_mutex_unlock(&sb->wlock);
		return kg_call_error(c, KG_EINVAL, "this transaction has already ended; start a new one with kg_begin");
	}
	struct timespec until;
	int deadline = 0, timed_out = 0;
	while (!timed_out && (sb->writer_busy || (sb->active_txn && sb->active_txn != c->txn))) {
		if (!(sb->active_txn && sb->active_txn != c->txn)) {
			pthread_cond_wait(&sb->wcond, &sb->wlock);
			continue;
		}
		if (!deadline) { /* the timeout runs from the first sight of the transaction */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += (time_t)sb->timeout;
			until.tv_nsec += (long)((sb->timeout - floor(sb->timeout)) * 1e9);
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			deadline = 1;
		}
		timed_out = pthread_cond_timedwait(&sb->wcond, &sb->wlock, &until) != 0;
	}
	if (sb->writer_busy || (sb->active_txn && sb->active_txn != c->txn)) {
		pthread_mutex_unlock(&sb->wlock);
		return kg_call_error(c, KG_EBUSY, "the SQLite store %s is busy with an open transaction of another handle "
		                                  "(waited %.1f s); commit or roll it back, or raise the timeout",
		                     sb->path, sb->timeout);
	}
	sb->writer_busy = 1;
	sb->fts_fresh = 0; /* another connection may have committed since the last hold */
	pthread_mutex_unlock(&sb->wlock);
	return 0;
}

/* writer_acquire for a search's short visits to the writer: instead of
 * waiting for another handle's open transaction (up to the timeout), says
 * KG_EBUSY at once, and the search scans instead. */
static int writer_acquire_nowait(sq_backend *sb, kg_call *c)
{
	pthread_mutex_lock(&sb->wlock);
	int blocked = sb->active_txn && sb->active_txn != c->txn;
	pthread_mutex_unlock(&sb->wlock);
	return blocked ? KG_EBUSY : writer_acquire(sb, c);
}

static void writer_release(sq_backend *sb)
{
	pthread_mutex_lock(&sb->wlock);
	sb->writer_busy = 0;
	pthread_cond_broadcast(&sb->wcond);
	pthread_mutex_unlock(&sb->wlock);
}

/* A connection to read with: inside a transaction its own (to see its
 * writes); in memory the only one; else an idle pooled reader. */
static int reader_acquire(sq_backend *sb, kg_call *c, conn **out)
{
	int rc = check_thread(sb, c);
	if (rc < 0)
		return rc;
	if (c->txn && ((sq_txn *)c->txn)->pinned) {
		*out = ((sq_txn *)c->txn)->pinned;
		return 0;
	}
	if (c->txn || sb->in_memory) {
		if ((rc = writer_acquire(sb, c)) < 0)
			return rc;
		*out = &sb->writer;
		return 0;
	}
	pthread_mutex_lock(&sb->pool_lock);
	for (;;) {
		if (sb->n_idle) {
			*out = sb->readers[--sb->n_idle];
			pthread_mutex_unlock(&sb->pool_lock);
			return 0;
		}
		if (sb->n_open < MAX_READERS)
			break;
		pthread_cond_wait(&sb->pool_cond, &sb->pool_lock);
	}
	sb->n_open++;
	pthread_mutex_unlock(&sb->pool_lock);
	conn *cn = malloc(sizeof(*cn));
	char err[512];
	if (!cn || conn_open(sb, cn, 0, err, sizeof(err)) < 0) {
		free(cn);
		pthread_mutex_lock(&sb->pool_lock);
		sb->n_open--;
		pthread_cond_signal(&sb->pool_cond);
		pthread_mutex_unlock(&sb->pool_lock);
		return kg_call_error(c, KG_EIO, "cannot open a read connection to %s", sb->path);
	}
	*out = cn;
	return 0;
}

static void reader_release(sq_backend *sb, kg_call *c, conn *cn)
{
	if (c->txn && ((sq_txn *)c->txn)->pinned == cn)
		return; /* the snapshot's owner releases it */
	if (cn == &sb->writer) {
		writer_release(sb);
		return;
	}
	pthread_mutex_lock(&sb->pool_lock);
	sb->readers[sb->n_idle++] = cn;
	pthread_cond_signal(&sb->pool_cond);
	pthread_mutex_unlock(&sb->pool_lock);
}

static int exec(sq_backend *sb, kg_call *c, sqlite3 *db, const char *sql, const char *what)
{
	int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return src == SQLITE_OK ? 0 : sq_error(sb, c, db, src, what);
}

static sqlite3_stmt *stmt(sq_backend *sb, conn *cn, kg_call *c, enum stmt_id id, int *rc);

/* Runs one cached transaction-control statement (ST_BEGIN...). */
static int control(sq_backend *sb, kg_call *c, conn *cn, enum stmt_id id, const char *what)
{
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, cn, c, id, &rc);
	if (!st)
		return rc;
	int src = sqlite3_step(st);
	sqlite3_reset(st);
	return src == SQLITE_DONE || src == SQLITE_ROW ? 0 : sq_error(sb, c, cn->db, src, what);
}

/* Undoes a failed write; its own failure is not the caller's news (the
 * first error is), but a scratch call keeps the caller's message. */
static void control_quiet(sq_backend *sb, conn *cn, enum stmt_id id)
{
	char buf[256];
	kg_call scratch = { .msg = buf, .msgcap = sizeof(buf) };
	if (control(sb, &scratch, cn, id, "rolling back") < 0 && (id == ST_ROLLBACK || id == ST_ROLLBACK_TO))
		sqlite3_exec(cn->db, id == ST_ROLLBACK ? "ROLLBACK" : "ROLLBACK TO kgcall", NULL, NULL, NULL);
}

/* A write call: its own transaction, or a savepoint inside the caller's, so
 * a failed call leaves nothing and an open transaction stays usable. */
static int write_begin(sq_backend *sb, kg_call *c)
{
	int rc = writer_acquire(sb, c);
	if (rc < 0)
		return rc;
	rc = control(sb, c, &sb->writer, c->txn ? ST_SAVEPOINT : ST_BEGIN, "starting a write");
	if (rc < 0)
		writer_release(sb);
	return rc;
}

static int fts_flush(sq_backend *sb, kg_call *c);
static void fts_call_done(sq_backend *sb, kg_call *c, int committed);
static int fts_after_insert(sq_backend *sb, kg_call *c, const kg_entity *e);
static int fts_before_change(sq_backend *sb, kg_call *c, enum stmt_id sel, const char *id, sqlite3_int64 **rows,
                             size_t *n);
static int fts_after_update(sq_backend *sb, kg_call *c, const sqlite3_int64 *rows, size_t n, const kg_entity *e);

static int write_end(sq_backend *sb, kg_call *c, int rc)
{
	if (rc >= 0 && sb->fts_dirty)
		rc = fts_flush(sb, c); /* the index's counters, in the same transaction */
	if (rc >= 0) {
		rc = control(sb, c, &sb->writer, c->txn ? ST_RELEASE : ST_COMMIT, "committing");
		if (rc < 0 && !c->txn)
			control_quiet(sb, &sb->writer, ST_ROLLBACK);
	} else if (c->txn) {
		control_quiet(sb, &sb->writer, ST_ROLLBACK_TO);
		control_quiet(sb, &sb->writer, ST_RELEASE);
	} else {
		control_quiet(sb, &sb->writer, ST_ROLLBACK);
	}
	if (rc < 0)
		tt_stale(&sb->writer); /* tables the call created went with it */
	fts_call_done(sb, c, rc >= 0);
	writer_release(sb);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Rows                                                                 */
/* ------------------------------------------------------------------ */

static void bind_tenant(sqlite3_stmt *st, int idx, const char *tenant)
{
	if (tenant)
		sqlite3_bind_text(st, idx, tenant, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, idx);
}

static int64_t column_time(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return 0;
	if (sqlite3_column_type(st, col) == SQLITE_INTEGER) /* unix seconds, as some tools write */
		return sqlite3_column_int64(st, col) * 1000000;
	int64_t us = 0;
	const char *t = (const char *)sqlite3_column_text(st, col);
	return t && kg_parse_time(t, &us) == 0 ? us : 0;
}

static const char *column_str(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

/* The current row (ENTITY_COLS) as a new one-block entity. */
static kg_entity *row_entity(sqlite3_stmt *st)
{
	float stack[256];
	float *emb = NULL;
	kg_entity e = KG_ENTITY_INIT;
	e.id = column_str(st, 1);
	e.tenant_id = column_str(st, 2);
	e.entity_type = column_str(st, 3);
	e.properties = column_str(st, 4);
	const void *blob = sqlite3_column_blob(st, 5);
	size_t bytes = (size_t)sqlite3_column_bytes(st, 5);
	if (blob && bytes >= sizeof(float)) {
		e.embedding_dim = bytes / sizeof(float);
		emb = e.embedding_dim <= 256 ? stack : malloc(e.embedding_dim * sizeof(float));
		if (!emb)
			return NULL;
		kg_embedding_from_le(blob, e.embedding_dim, emb);
		e.embedding = emb;
	}
	e.created_at = column_time(st, 6);
	e.updated_at = column_time(st, 7);
	e.source = column_str(st, 8);
	if (!e.id)
		e.id = "";
	if (!e.entity_type)
		e.entity_type = "";
	if (!e.properties)
		e.properties = "{}";
	kg_entity *out = kg_entity_dup(&e);
	if (emb != stack)
		free(emb);
	return out;
}

static kg_relation *row_relation(sqlite3_stmt *st)
{
	kg_relation r = KG_RELATION_INIT;
	r.id = column_str(st, 1);
	r.tenant_id = column_str(st, 2);
	r.relation_type = column_str(st, 3);
	r.source_id = column_str(st, 4);
	r.target_id = column_str(st, 5);
	r.properties = column_str(st, 6);
	r.weight = sqlite3_column_type(st, 7) == SQLITE_NULL ? 1.0 : sqlite3_column_double(st, 7);
	r.created_at = column_time(st, 8);
	r.updated_at = column_time(st, 9);
	r.source = column_str(st, 10);
	if (!r.properties)
		r.properties = "{}";
	return kg_relation_dup(&r);
}

/* Binds an entity's embedding as the original's little-endian blob. */
static int bind_embedding(sqlite3_stmt *st, int idx, const kg_entity *e)
{
	if (!e->embedding)
		return sqlite3_bind_null(st, idx);
	size_t bytes = e->embedding_dim * sizeof(float);
	unsigned char *le = malloc(bytes);
	if (!le)
		return SQLITE_NOMEM;
	kg_embedding_to_le(e->embedding, e->embedding_dim, le);
	return sqlite3_bind_blob64(st, idx, le, bytes, free);
}

/* Timestamps as the original's ISO text. The writer formats the same
 * instant over and over in a bulk add (the core stamps a batch once), so
 * the last one is kept. */
static void bind_time(sq_backend *sb, sqlite3_stmt *st, int idx, int64_t us)
{
	if (us != sb->time_us || !sb->time_text[0]) {
		kg_format_time(us, sb->time_text);
		sb->time_us = us;
	}
	sqlite3_bind_text(st, idx, sb->time_text, -1, SQLITE_TRANSIENT);
}

/* Runs a statement that returns 0 or 1 row; 1 if there was a row. */
static int step_exists(sq_backend *sb, kg_call *c, conn *cn, sqlite3_stmt *st, const char *what)
{
	int src = sqlite3_step(st);
	int found = src == SQLITE_ROW;
	if (src != SQLITE_ROW && src != SQLITE_DONE)
		return sq_error(sb, c, cn->db, src, what);
	sqlite3_reset(st);
	return found;
}

static int exists(sq_backend *sb, kg_call *c, conn *cn, enum stmt_id id, const char *key)
{
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, cn, c, id, &rc);
	if (!st)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	return step_exists(sb, c, cn, st, "looking up an id");
}

/* 1 if a bulk add of n rows may skip the per-row "is this id taken?"
 * lookups: the tenant holds no rows of the table yet, and the core has
 * already refused a batch that repeats an id (without SKIP_EXISTING, which
 * relies on the lookups to skip repeats). Not while a load has dropped the
 * indexes, where the probe itself could scan. */
static bulk_table *bulk_find(sq_txn *t, const char *table, int add);

static int bulk_into_empty(sq_backend *sb, kg_call *c, int relations, size_t n, unsigned flags)
{
	if (n < 64 || (flags & KG_BULK_SKIP_EXISTING))
		return 0;
	if (c->txn) {
		char table[TT_NAME_MAX];
		kind_table(sb, c, relations, table);
		bulk_table *bt = bulk_find(c->txn, table, 0);
		if (bt && bt->defer.create)
			return 0;
	}
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, relations ? ST_TENANT_HAS_RELATIONS : ST_TENANT_HAS_ENTITIES, &rc);
	if (!st)
		return rc;
	bind_tenant(st, 1, c->tenant);
	int have = step_exists(sb, c, &sb->writer, st, "looking at the tenant's rows");
	return have < 0 ? have : !have;
}

static int step_done(sq_backend *sb, kg_call *c, conn *cn, sqlite3_stmt *st, const char *what)
{
	int src = sqlite3_step(st);
	sqlite3_reset(st);
	return src == SQLITE_DONE || src == SQLITE_ROW ? 0 : sq_error(sb, c, cn->db, src, what);
}

static int set_source(sq_backend *sb, kg_call *c, int kind, const char *id, const char *source)
{
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, source ? ST_SET_SOURCE : ST_DELETE_SOURCE, &rc);
	if (!st)
		return rc;
	sqlite3_bind_int(st, 1, kind);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	bind_tenant(st, 3, c->tenant);
	if (source)
		sqlite3_bind_text(st, 4, source, -1, SQLITE_STATIC);
	return step_done(sb, c, &sb->writer, st, "writing a source");
}

/* ------------------------------------------------------------------ */
/* Entities                                                             */
/* ------------------------------------------------------------------ */

static int insert_entity(sq_backend *sb, kg_call *c, const kg_entity *e)
{
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_INSERT_ENTITY, &rc);
	if (!st)
		return rc;
	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	sqlite3_bind_text(st, 3, e->entity_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->properties, -1, SQLITE_STATIC);
	if (bind_embedding(st, 5, e) != SQLITE_OK)
		return kg_call_error(c, KG_ENOMEM, "out of memory writing entity '%s'", e->id);
	bind_time(sb, st, 6, e->created_at);
	bind_time(sb, st, 7, e->updated_at);
	if ((rc = step_done(sb, c, &sb->writer, st, "inserting an entity")) < 0 ||
	    (rc = fts_after_insert(sb, c, e)) < 0)
		return rc;
	return e->source ? set_source(sb, c, 0, e->id, e->source) : 0;
}

/* ------------------------------------------------------------------ */
/* Bulk loads: indexes built once, not row by row                       */
/* ------------------------------------------------------------------ */

/*
 * The original's schema puts four secondary indexes on entities and six on
 * relations; keeping them up to date row by row (random inserts into ten
 * b-trees) is most of the cost of a large load. When a batch at least as
 * large as its table arrives (by rowid span), the table's secondary indexes
 * are dropped inside the write transaction and built again once, by
 * sorting, before it commits: at the end of the call, or for a transaction
 * at its commit. Only for large loads (DEFER_MIN_ROWS, counted over the
 * transaction's bulk calls): while the indexes fit in the page cache,
 * keeping them up to date costs less than the drop, rebuild and
 * re-preparing every statement (measured: a 10K-row batch got 25% slower). It is all one transaction, so a crash or a rollback leaves
 * the indexes as they were, and other connections never see the table
 * without them. Inside such a transaction, queries through the transaction
 * handle that would use those indexes scan instead until the commit.
 */
#define DEFER_MIN_ROWS 50000

static void deferred_free(deferred_idx *d)
{
	free(d->create);
	d->create = NULL;
}

/* Drops the secondary indexes of `table` when the load (n rows, those of
 * this call and the transaction's earlier bulk calls) makes at least half
 * of it; *d says how to build them again. */
static int defer_indexes(sq_backend *sb, kg_call *c, const char *table, size_t n, deferred_idx *d)
{
	if (n < DEFER_MIN_ROWS || d->create)
		return 0;
	char sql[2 * TT_NAME_MAX + 128];
	snprintf(sql, sizeof sql, "SELECT (SELECT max(rowid) FROM main.\"%s\") - (SELECT min(rowid) FROM main.\"%s\") + 1",
	         table, table);
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(sb->writer.db, sql, -1, &st, NULL);
	if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 span = sqlite3_column_int64(st, 0); /* 0 when empty (NULL) */
		src = span > 0 && (size_t)span > 2 * n ? SQLITE_DONE : SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (src == SQLITE_DONE)
		return 0; /* the table is the larger part: keep its indexes up to date */
	/* Both scripts from the schema: the definitions to run again, and the
	 * drops. The original's autoindexes (primary keys) have no sql: kept. */
	char *drop = NULL;
	if (src == SQLITE_OK)
		src = sqlite3_prepare_v2(sb->writer.db,
		                         "SELECT group_concat(sql, ';'), group_concat('DROP INDEX \"' || replace(name, '\"', "
		                         "'\"\"') || '\"', ';') FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 COLLATE NOCASE "
		                         "AND sql IS NOT NULL", -1, &st, NULL);
	if (src == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		if ((src = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			d->create = strdup((const char *)sqlite3_column_text(st, 0));
			drop = strdup((const char *)sqlite3_column_text(st, 1));
			src = d->create && drop ? SQLITE_OK : SQLITE_NOMEM;
		} else if (src == SQLITE_ROW || src == SQLITE_DONE) {
			src = SQLITE_OK; /* a table without secondary indexes: nothing to defer */
		}
		sqlite3_finalize(st);
	}
	if (src == SQLITE_OK && drop)
		src = sqlite3_exec(sb->writer.db, drop, NULL, NULL, NULL);
	free(drop);
	if (src != SQLITE_OK) {
		deferred_free(d);
		return sq_error(sb, c, sb->writer.db, src, "setting up a bulk load");
	}
	return 0;
}

/* Builds the dropped indexes again (same names, same definitions). */
static int restore_indexes(sq_backend *sb, kg_call *c, deferred_idx *d)
{
	/* SQLite sorts an index's keys in runs as large as the page cache and
	 * merges them; runs of a few MB sort inside the CPU caches, and worker
	 * threads sort runs side by side. Measured on the 1M workload's 3M
	 * relations (5 indexes, sqlite3 shell): 12.6 s with the 64 MB cache,
	 * 5.9 s with 8 MB and 2 threads. The store's settings come back after. */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	char sql[160];
	snprintf(sql, sizeof(sql), "PRAGMA cache_size=%ld; PRAGMA threads=%ld",
	         sb->cache_size < 0 && sb->cache_size > -8000 ? sb->cache_size : -8000L, cpus > 4 ? 4L : cpus > 1 ? cpus : 0L);
	sqlite3_exec(sb->writer.db, sql, NULL, NULL, NULL); /* only speed depends on it */
	int rc = exec(sb, c, sb->writer.db, d->create, "building the indexes after a bulk load");
	snprintf(sql, sizeof(sql), "PRAGMA cache_size=%ld; PRAGMA threads=0", sb->cache_size);
	sqlite3_exec(sb->writer.db, sql, NULL, NULL, NULL);
	deferred_free(d);
	return rc;
}

/* Before the rows of a bulk add: drop the table's indexes if worth it.
 * In a transaction the list moves to the transaction once the call has
 * succeeded (see bulk_end), since a failed call's savepoint rollback
 * restores them. */
/* A transaction's record of a table it bulk-loads; made when `add`. NULL:
 * none (or out of memory). */
static bulk_table *bulk_find(sq_txn *t, const char *table, int add)
{
	for (size_t i = 0; i < t->n_bulk; i++)
		if (sqlite3_stricmp(t->bulk[i].table, table) == 0)
			return &t->bulk[i];
	if (!add)
		return NULL;
	bulk_table *b = realloc(t->bulk, (t->n_bulk + 1) * sizeof(*b));
	if (!b)
		return NULL;
	t->bulk = b;
	b += t->n_bulk;
	*b = (bulk_table){ strdup(table), 0, { NULL } };
	if (!b->table)
		return NULL;
	t->n_bulk++;
	return b;
}

static int bulk_begin(sq_backend *sb, kg_call *c, int relations, size_t n, deferred_idx *d)
{
	char table[TT_NAME_MAX];
	kind_table(sb, c, relations, table);
	if (c->txn) {
		bulk_table *bt = bulk_find(c->txn, table, 1);
		if (!bt)
			return kg_call_error(c, KG_ENOMEM, "out of memory starting a bulk load");
		if (bt->defer.create)
			return 0; /* already deferred by an earlier call of this transaction */
		n = bt->rows += n;
	}
	return defer_indexes(sb, c, table, n, d);
}

static int bulk_end(sq_backend *sb, kg_call *c, int relations, int rc, deferred_idx *d)
{
	if (rc < 0 || !d->create) {
		deferred_free(d);
		return rc;
	}
	if (c->txn) {
		char table[TT_NAME_MAX];
		kind_table(sb, c, relations, table);
		bulk_find(c->txn, table, 0)->defer = *d; /* made by bulk_begin */
		d->create = NULL;
		return rc;
	}
	return restore_indexes(sb, c, d);
}

static int sq_add_entities(kg_backend *b, kg_call *c, const kg_entity *ents, size_t n, unsigned flags,
                           size_t *added)
{
	sq_backend *sb = sb_of(b);
	*added = 0;
	deferred_idx d = { 0 };
	int rc = write_begin(sb, c);
	if (rc < 0)
		return rc;
	if ((rc = tt_ensure(sb, c)) < 0)
		return write_end(sb, c, rc);
	int empty = bulk_into_empty(sb, c, 0, n, flags);
	if (empty < 0)
		rc = empty;
	if (rc >= 0)
		rc = bulk_begin(sb, c, 0, n, &d);
	for (size_t i = 0; i < n && rc >= 0; i++) {
		int have = empty ? 0 : exists(sb, c, &sb->writer, ST_HAS_ENTITY, ents[i].id);
		if (have < 0) {
			rc = have;
		} else if (have) {
			if (!(flags & KG_BULK_SKIP_EXISTING))
				rc = kg_call_error(c, KG_EEXISTS,
				                   "entity '%s' already exists%s%s; nothing of the batch was added (use "
				                   "kg_update_entity / kg_upsert_entity to change it, or KG_BULK_SKIP_EXISTING)",
				                   ents[i].id, c->tenant ? " in tenant " : "", c->tenant ? c->tenant : "");
		} else if ((rc = insert_entity(sb, c, &ents[i])) >= 0) {
			(*added)++;
		}
	}
	rc = bulk_end(sb, c, 0, rc, &d);
	if (rc < 0)
		*added = 0;
	return write_end(sb, c, rc);
}

static int not_found(kg_call *c, const char *kind, const char *id)
{
	return kg_call_error(c, KG_ENOTFOUND, "%s '%s' not found%s%s", kind, id, c->tenant ? " in tenant " : "",
	                     c->tenant ? c->tenant : "");
}

static int sq_get_entity(kg_backend *b, kg_call *c, const char *id, kg_entity **out)
{
	sq_backend *sb = sb_of(b);
	conn *cn;
	int rc = reader_acquire(sb, c, &cn);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = stmt(sb, cn, c, ST_GET_ENTITY, &rc);
	if (st) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		bind_tenant(st, 2, c->tenant);
		int src = sqlite3_step(st);
		if (src == SQLITE_ROW)
			rc = (*out = row_entity(st)) ? 0 : kg_call_error(c, KG_ENOMEM, "out of memory reading entity '%s'", id);
		else if (src == SQLITE_DONE)
			rc = not_found(c, "entity", id);
		else
			rc = sq_error(sb, c, cn->db, src, "reading an entity");
		sqlite3_reset(st);
	}
	reader_release(sb, c, cn);
	return rc;
}

static int update_entity_row(sq_backend *sb, kg_call *c, const kg_entity *e, unsigned flags);

static int sq_update_entity(kg_backend *b, kg_call *c, const kg_entity *e, unsigned flags)
{
	sq_backend *sb = sb_of(b);
	int rc = write_begin(sb, c);
	if (rc < 0)
		return rc;
	sqlite3_int64 *indexed = NULL;
	size_t n_indexed = 0;
	if ((rc = tt_ensure(sb, c)) < 0 ||
	    (rc = fts_before_change(sb, c, ST_FTS_ROWS_BY_ID, e->id, &indexed, &n_indexed)) < 0) {
		free(indexed);
		return write_end(sb, c, rc);
	}
	rc = update_entity_row(sb, c, e, flags);
	if (rc >= 0)
		rc = fts_after_update(sb, c, indexed, n_indexed, e);
	free(indexed);
	return write_end(sb, c, rc);
}

/* The UPDATE (or, for an upsert, INSERT) of sq_update_entity. */
static int update_entity_row(sq_backend *sb, kg_call *c, const kg_entity *e, unsigned flags)
{
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_UPDATE_ENTITY, &rc);
	if (!st)
		return rc;
	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	sqlite3_bind_text(st, 3, e->entity_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->properties, -1, SQLITE_STATIC);
	if (bind_embedding(st, 5, e) != SQLITE_OK)
		return kg_call_error(c, KG_ENOMEM, "out of memory writing entity '%s'", e->id);
	bind_time(sb, st, 6, e->updated_at);
	if ((rc = step_done(sb, c, &sb->writer, st, "updating an entity")) < 0)
		return rc;
	if (sqlite3_changes(sb->writer.db) == 0) {
		if (flags & KG_UPSERT)
			rc = insert_entity(sb, c, e);
		else
			rc = kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s%s; add it first (or use kg_upsert_entity)",
			                   e->id, c->tenant ? " in tenant " : "", c->tenant ? c->tenant : "");
	} else {
		rc = set_source(sb, c, 0, e->id, e->source);
	}
	return rc;
}

static int sq_delete_entity(kg_backend *b, kg_call *c, const char *id)
{
	sq_backend *sb = sb_of(b);
	int rc = write_begin(sb, c);
	if (rc < 0)
		return rc;
	sqlite3_int64 *indexed = NULL;
	size_t n_indexed = 0;
	rc = fts_before_change(sb, c, ST_FTS_ROWS_BY_ID, id, &indexed, &n_indexed);
	free(indexed);
	if (rc < 0)
		return write_end(sb, c, rc);
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_DELETE_ENTITY, &rc);
	if (!st)
		return write_end(sb, c, rc);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	if ((rc = step_done(sb, c, &sb->writer, st, "deleting an entity")) < 0)
		return write_end(sb, c, rc);
	if (sqlite3_changes(sb->writer.db) == 0)
		return write_end(sb, c, kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s%s; nothing was deleted", id,
		                                      c->tenant ? " in tenant " : "", c->tenant ? c->tenant : ""));
	if ((rc = set_source(sb, c, 0, id, NULL)) < 0)
		return write_end(sb, c, rc);
	/* Its relations go too, with their sources. */
	st = stmt(sb, &sb->writer, c, ST_DELETE_ENTITY_RELATIONS, &rc);
	if (!st)
		return write_end(sb, c, rc);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	char **gone = NULL;
	size_t n = 0, cap = 0;
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **g = realloc(gone, cap * sizeof(*g));
			if (!g)
				break;
			gone = g;
		}
		if (!(gone[n] = strdup(column_str(st, 0))))
			break;
		n++;
	}
	sqlite3_reset(st);
	if (src != SQLITE_DONE)
		rc = src == SQLITE_ROW ? kg_call_error(c, KG_ENOMEM, "out of memory deleting entity '%s'", id)
		                       : sq_error(sb, c, sb->writer.db, src, "deleting relations");
	for (size_t i = 0; i < n; i++) {
		if (rc >= 0)
			rc = set_source(sb, c, 1, gone[i], NULL);
		free(gone[i]);
	}
	free(gone);
	return write_end(sb, c, rc);
}

/* ------------------------------------------------------------------ */
/* Relations                                                            */
/* ------------------------------------------------------------------ */

/* Entity ids a bulk relation add has already found, so each endpoint is
 * looked up once per call. Valid for one call only: the call holds the write
 * transaction, so no entity can go away meanwhile. Keys are borrowed from
 * the caller's batch. A full or unallocated set just means more lookups. */
typedef struct seen_set {
	const char **keys;
	size_t mask, n;
} seen_set;

static int seen_has(const seen_set *ss, const char *id)
{
	if (!ss || !ss->keys)
		return 0;
	for (size_t i = kg_hash_str(id) & ss->mask; ss->keys[i]; i = (i + 1) & ss->mask)
		if (strcmp(ss->keys[i], id) == 0)
			return 1;
	return 0;
}

static void seen_add(seen_set *ss, const char *id)
{
	if (!ss || !ss->keys || ss->n * 2 >= ss->mask)
		return;
	size_t i = kg_hash_str(id) & ss->mask;
	while (ss->keys[i])
		i = (i + 1) & ss->mask;
	ss->keys[i] = id;
	ss->n++;
}

static int check_endpoints_seen(sq_backend *sb, kg_call *c, const kg_relation *r, seen_set *ss)
{
	const char *ends[2] = { r->source_id, r->target_id };
	for (int k = 0; k < 2; k++) {
		if (seen_has(ss, ends[k]))
			continue;
		int have = exists(sb, c, &sb->writer, ST_HAS_ENTITY, ends[k]);
		if (have > 0)
			seen_add(ss, ends[k]);
		if (have < 0)
			return have;
		if (!have)
			return kg_call_error(c, KG_ENOTFOUND,
			                     "relation '%s': %s entity '%s' not found%s%s; add the entity first (both "
			                     "endpoints must exist in the same tenant)",
			                     r->id, k ? "target" : "source", ends[k], c->tenant ? " in tenant " : "",
			                     c->tenant ? c->tenant : "");
	}
	return 0;
}

static int check_endpoints(sq_backend *sb, kg_call *c, const kg_relation *r)
{
	return check_endpoints_seen(sb, c, r, NULL);
}

static int insert_relation(sq_backend *sb, kg_call *c, const kg_relation *r)
{
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_INSERT_RELATION, &rc);
	if (!st)
		return rc;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	sqlite3_bind_text(st, 3, r->relation_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->source_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->target_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->properties, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 7, r->weight);
	bind_time(sb, st, 8, r->created_at);
	bind_time(sb, st, 9, r->updated_at);
	if ((rc = step_done(sb, c, &sb->writer, st, "inserting a relation")) < 0)
		return rc;
	return r->source ? set_source(sb, c, 1, r->id, r->source) : 0;
}

static int sq_add_relations(kg_backend *b, kg_call *c, const kg_relation *rels, size_t n, unsigned flags,
                            size_t *added)
{
	sq_backend *sb = sb_of(b);
	*added = 0;
	seen_set ss = { 0 };
	if (n > 1) {
		size_t cap = 64;
		while (cap < 4 * n && cap < ((size_t)1 << 24))
			cap *= 2;
		ss.keys = calloc(cap, sizeof(*ss.keys)); /* NULL: plain lookups */
		ss.mask = cap - 1;
	}
	deferred_idx d = { 0 };
	int rc = write_begin(sb, c);
	if (rc < 0) {
		free(ss.keys);
		return rc;
	}
	rc = tt_ensure(sb, c);
	int empty = rc < 0 ? 0 : bulk_into_empty(sb, c, 1, n, flags);
	if (empty < 0)
		rc = empty;
	if (rc >= 0)
		rc = bulk_begin(sb, c, 1, n, &d);
	for (size_t i = 0; i < n && rc >= 0; i++) {
		if ((rc = check_endpoints_seen(sb, c, &rels[i], &ss)) < 0)
			break;
		int have = empty ? 0 : exists(sb, c, &sb->writer, ST_HAS_RELATION, rels[i].id);
		if (have < 0) {
			rc = have;
		} else if (have) {
			if (!(flags & KG_BULK_SKIP_EXISTING))
				rc = kg_call_error(c, KG_EEXISTS,
				                   "relation '%s' already exists; nothing of the batch was added (use "
				                   "kg_update_relation / kg_upsert_relation, or KG_BULK_SKIP_EXISTING)",
				                   rels[i].id);
		} else if ((rc = insert_relation(sb, c, &rels[i])) >= 0) {
			(*added)++;
		}
	}
	free(ss.keys);
	rc = bulk_end(sb, c, 1, rc, &d);
	if (rc < 0)
		*added = 0;
	return write_end(sb, c, rc);
}

static int sq_get_relation(kg_backend *b, kg_call *c, const char *id, kg_relation **out)
{
	sq_backend *sb = sb_of(b);
	conn *cn;
	int rc = reader_acquire(sb, c, &cn);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = stmt(sb, cn, c, ST_GET_RELATION, &rc);
	if (st) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		bind_tenant(st, 2, c->tenant);
		int src = sqlite3_step(st);
		if (src == SQLITE_ROW)
			rc = (*out = row_relation(st)) ? 0 : kg_call_error(c, KG_ENOMEM, "out of memory reading relation '%s'", id);
		else if (src == SQLITE_DONE)
			rc = not_found(c, "relation", id);
		else
			rc = sq_error(sb, c, cn->db, src, "reading a relation");
		sqlite3_reset(st);
	}
	reader_release(sb, c, cn);
	return rc;
}

static int sq_update_relation(kg_backend *b, kg_call *c, const kg_relation *r, unsigned flags)
{
	sq_backend *sb = sb_of(b);
	int rc = write_begin(sb, c);
	if (rc < 0)
		return rc;
	if ((rc = tt_ensure(sb, c)) < 0)
		return write_end(sb, c, rc);
	int have = exists(sb, c, &sb->writer, ST_HAS_RELATION, r->id);
	if (have < 0)
		return write_end(sb, c, have);
	if (!have && !(flags & KG_UPSERT))
		return write_end(sb, c, kg_call_error(c, KG_ENOTFOUND,
		                                      "relation '%s' not found; add it first (or use kg_upsert_relation)", r->id));
	if ((rc = check_endpoints(sb, c, r)) < 0)
		return write_end(sb, c, rc);
	if (!have)
		return write_end(sb, c, insert_relation(sb, c, r));
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_UPDATE_RELATION, &rc);
	if (!st)
		return write_end(sb, c, rc);
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	sqlite3_bind_text(st, 3, r->relation_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->source_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->target_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->properties, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 7, r->weight);
	bind_time(sb, st, 8, r->updated_at);
	if ((rc = step_done(sb, c, &sb->writer, st, "updating a relation")) >= 0)
		rc = set_source(sb, c, 1, r->id, r->source);
	return write_end(sb, c, rc);
}

static int sq_delete_relation(kg_backend *b, kg_call *c, const char *id)
{
	sq_backend *sb = sb_of(b);
	int rc = write_begin(sb, c);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_DELETE_RELATION, &rc);
	if (!st)
		return write_end(sb, c, rc);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	if ((rc = step_done(sb, c, &sb->writer, st, "deleting a relation")) < 0)
		return write_end(sb, c, rc);
	if (sqlite3_changes(sb->writer.db) == 0)
		return write_end(sb, c, kg_call_error(c, KG_ENOTFOUND, "relation '%s' not found%s%s; nothing was deleted", id,
		                                      c->tenant ? " in tenant " : "", c->tenant ? c->tenant : ""));
	return write_end(sb, c, set_source(sb, c, 1, id, NULL));
}

/* The entity's existence and its relations, read on one connection
 * (sq_relations_of runs it in one read transaction). */
static int relations_read(kg_backend *b, kg_call *c, const char *id, const char *relation_type, kg_direction dir,
                          kg_relation_list **out)
{
	sq_backend *sb = sb_of(b);
	conn *cn;
	kg_relation_list *l = NULL;
	int rc = reader_acquire(sb, c, &cn);
	if (rc < 0)
		return rc;
	int have = exists(sb, c, cn, ST_HAS_ENTITY, id);
	if (have <= 0) {
		rc = have < 0 ? have : not_found(c, "entity", id);
		goto cleanup;
	}
	sqlite3_stmt *st = stmt(sb, cn, c, dir == KG_OUT ? ST_RELATIONS_OUT : dir == KG_IN ? ST_RELATIONS_IN : ST_RELATIONS_BOTH,
	                        &rc);
	if (!st)
		goto cleanup;
	if (!(l = kg_relation_list_new())) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory listing relations");
		goto cleanup;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	if (relation_type)
		sqlite3_bind_text(st, 3, relation_type, -1, SQLITE_STATIC);
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		kg_relation *r = row_relation(st);
		if (!r || kg_relation_list_push(l, r) < 0) {
			rc = kg_call_error(c, KG_ENOMEM, "out of memory listing relations");
			break;
		}
	}
	if (rc == 0 && src != SQLITE_DONE)
		rc = sq_error(sb, c, cn->db, src, "listing relations");
	sqlite3_reset(st);
	if (rc == 0) {
		*out = l;
		l = NULL;
	}
cleanup:
	reader_release(sb, c, cn);
	kg_relation_list_free(l);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Iterators and listing: keyset pages by rowid                          */
/* ------------------------------------------------------------------ */

#define PAGE 256

typedef struct sq_iter {
	kg_iter base;
	sq_backend *sb;
	char *tenant, *type;
	int relations;
	sqlite3_int64 last_rowid;
	void *page[PAGE];
	size_t n, pos;
	int done;
} sq_iter;

static void iter_drop_page(sq_iter *it)
{
	for (size_t i = 0; i < it->n; i++)
		free(it->page[i]);
	it->n = it->pos = 0;
}

/* The next page, read on a pooled connection that is returned at once, so
 * an iterator holds no connection and no lock between calls. */
static int iter_fill(sq_iter *it, kg_call *c)
{
	sq_backend *sb = it->sb;
	kg_call ic = *c;
	ic.tenant = it->tenant;
	conn *cn;
	int rc = reader_acquire(sb, &ic, &cn);
	if (rc < 0)
		return rc;
	enum stmt_id id = it->relations ? (it->type ? ST_ITER_RELATIONS_TYPE : ST_ITER_RELATIONS)
	                                : (it->type ? ST_ITER_ENTITIES_TYPE : ST_ITER_ENTITIES);
	sqlite3_stmt *st = stmt(sb, cn, &ic, id, &rc);
	if (st) {
		bind_tenant(st, 1, it->tenant);
		sqlite3_bind_int64(st, 2, it->last_rowid);
		sqlite3_bind_int(st, 3, PAGE);
		if (it->type)
			sqlite3_bind_text(st, 4, it->type, -1, SQLITE_STATIC);
		int src;
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			void *item = it->relations ? (void *)row_relation(st) : (void *)row_entity(st);
			if (!item) {
				rc = kg_call_error(&ic, KG_ENOMEM, "out of memory while iterating");
				break;
			}
			it->page[it->n++] = item;
			it->last_rowid = sqlite3_column_int64(st, 0);
		}
		if (rc == 0 && src != SQLITE_DONE)
			rc = sq_error(sb, &ic, cn->db, src, "iterating");
		if (rc == 0 && it->n < PAGE)
			it->done = 1;
		sqlite3_reset(st);
	}
	reader_release(sb, &ic, cn);
	return rc;
}

static int sq_iter_next(kg_iter *base, kg_call *c, const void **item)
{
	sq_iter *it = (sq_iter *)base;
	if (it->pos == it->n) {
		iter_drop_page(it);
		if (it->done)
			return 0;
		int rc = iter_fill(it, c);
		if (rc < 0)
			return rc;
		if (it->n == 0)
			return 0;
	}
	*item = it->page[it->pos++];
	return 1;
}

static void sq_iter_free(kg_iter *base)
{
	sq_iter *it = (sq_iter *)base;
	iter_drop_page(it);
	free(it->tenant);
	free(it->type);
	free(it);
}

static int iter_new(kg_backend *b, kg_call *c, const char *type, int relations, kg_iter **out)
{
	sq_iter *it = calloc(1, sizeof(*it));
	if (!it || (c->tenant && !(it->tenant = strdup(c->tenant))) || (type && !(it->type = strdup(type)))) {
		if (it)
			sq_iter_free(&it->base);
		return kg_call_error(c, KG_ENOMEM, "out of memory creating an iterator");
	}
	it->base.next = sq_iter_next;
	it->base.free = sq_iter_free;
	it->sb = sb_of(b);
	it->relations = relations;
	it->last_rowid = INT64_MIN; /* other writers may use rowids <= 0 */
	*out = &it->base;
	return 0;
}

static int sq_iter_entities(kg_backend *b, kg_call *c, const char *type, kg_iter **out)
{
	return iter_new(b, c, type, 0, out);
}

static int sq_iter_relations(kg_backend *b, kg_call *c, const char *type, kg_iter **out)
{
	return iter_new(b, c, type, 1, out);
}

static int sq_list_entities(kg_backend *b, kg_call *c, const char *entity_type, size_t limit, size_t offset,
                            kg_entity_list **out)
{
	sq_backend *sb = sb_of(b);
	conn *cn;
	kg_entity_list *l = kg_entity_list_new();
	if (!l)
		return kg_call_error(c, KG_ENOMEM, "out of memory listing entities");
	int rc = reader_acquire(sb, c, &cn);
	if (rc < 0) {
		kg_entity_list_free(l);
		return rc;
	}
	sqlite3_stmt *st = stmt(sb, cn, c, entity_type ? ST_LIST_ENTITIES_TYPE : ST_LIST_ENTITIES, &rc);
	if (st) {
		bind_tenant(st, 1, c->tenant);
		sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)offset);
		if (entity_type)
			sqlite3_bind_text(st, 4, entity_type, -1, SQLITE_STATIC);
		int src;
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			kg_entity *e = row_entity(st);
			if (!e || kg_entity_list_push(l, e) < 0) {
				rc = kg_call_error(c, KG_ENOMEM, "out of memory listing entities");
				break;
			}
		}
		if (rc == 0 && src != SQLITE_DONE)
			rc = sq_error(sb, c, cn->db, src, "listing entities");
		sqlite3_reset(st);
	}
	reader_release(sb, c, cn);
	if (rc < 0) {
		kg_entity_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Whole store                                                          */
/* ------------------------------------------------------------------ */

/* The counts, read on one connection (sq_stats runs it in one read
 * transaction, so entities and relations are counted at the same moment). */
static int stats_read(kg_backend *b, kg_call *c, kg_stats **out)
{
	sq_backend *sb = sb_of(b);
	conn *cn = NULL;
	kg_stats_builder *bld = kg_stats_builder_new();
	if (!bld)
		return kg_call_error(c, KG_ENOMEM, "out of memory computing stats");
	int rc = reader_acquire(sb, c, &cn);
	for (int rel = 0; rel < 2 && rc == 0; rel++) {
		sqlite3_stmt *st = stmt(sb, cn, c, rel ? ST_STATS_RELATIONS : ST_STATS_ENTITIES, &rc);
		if (!st)
			break;
		bind_tenant(st, 1, c->tenant);
		int src;
		while ((src = sqlite3_step(st)) == SQLITE_ROW)
			if (kg_stats_builder_add(bld, rel, column_str(st, 0), (size_t)sqlite3_column_int64(st, 1)) < 0) {
				rc = kg_call_error(c, KG_ENOMEM, "out of memory computing stats");
				break;
			}
		if (rc == 0 && src != SQLITE_DONE)
			rc = sq_error(sb, c, cn->db, src, "computing stats");
		sqlite3_reset(st);
	}
	if (cn)
		reader_release(sb, c, cn);
	kg_stats *st = NULL;
	int frc = kg_stats_builder_finish(bld, b->name, &st);
	if (rc == 0 && frc < 0)
		rc = kg_call_error(c, KG_ENOMEM, "out of memory computing stats");
	if (rc < 0) {
		kg_stats_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

static int sq_clear(kg_backend *b, kg_call *c)
{
	sq_backend *sb = sb_of(b);
	int rc = write_begin(sb, c);
	if (rc < 0)
		return rc;
	sqlite3_int64 *indexed = NULL;
	size_t n_indexed = 0;
	rc = fts_before_change(sb, c, ST_FTS_ROWS_TENANT, NULL, &indexed, &n_indexed);
	free(indexed);
	enum stmt_id ids[3] = { ST_CLEAR_RELATIONS, ST_CLEAR_ENTITIES, ST_CLEAR_SOURCES };
	for (int i = 0; i < 3 && rc >= 0; i++) {
		sqlite3_stmt *st = stmt(sb, &sb->writer, c, ids[i], &rc);
		if (!st)
			break;
		bind_tenant(st, 1, c->tenant);
		rc = step_done(sb, c, &sb->writer, st, "clearing");
	}
	return write_end(sb, c, rc);
}

typedef struct name_list {
	char **v;
	size_t n, cap, bytes;
} name_list;

/* Adds a copy of `name` unless it is there. 0 or KG_ENOMEM. */
static int names_add(name_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return KG_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(name)))
		return KG_ENOMEM;
	l->bytes += strlen(name) + 1;
	l->n++;
	return 0;
}

static int names_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Tenants with rows in tables of their own: the id from kgstore's tag, or
 * for the original's tables the name's middle ('-' cannot be told from '_'
 * there). */
static int tenant_table_names(sq_backend *sb, kg_call *c, conn *cn, name_list *l)
{
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(cn->db, "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND "
	                                     "(name LIKE 'tenant\\_%\\_entities' ESCAPE '\\' OR "
	                                     "name LIKE 'tenant\\_%\\_relations' ESCAPE '\\' OR "
	                                     "name LIKE 'kgstore\\_tenant\\_%' ESCAPE '\\')",
	                             -1, &st, NULL);
	int rc = 0;
	while (rc == 0 && st && (src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		char id[300];
		tt_owner((const char *)sqlite3_column_text(st, 1), id, sizeof(id));
		if (!id[0] && sqlite3_strnicmp(name, "kgstore_", 8) == 0)
			continue; /* not made by kgstore after all */
		if (!id[0]) {
			size_t len = strlen(name), suffix = len > 9 && sqlite3_stricmp(name + len - 9, "_entities") == 0 ? 9 : 10;
			snprintf(id, sizeof(id), "%.*s", (int)(len - 7 - suffix), name + 7);
		}
		if (!kg_tenant_id_valid(id))
			continue;
		char *sql = sqlite3_mprintf("SELECT 1 FROM main.\"%w\" LIMIT 1", name);
		sqlite3_stmt *rows = NULL;
		int r2 = sql ? sqlite3_prepare_v2(cn->db, sql, -1, &rows, NULL) : SQLITE_NOMEM;
		sqlite3_free(sql);
		if (r2 == SQLITE_OK)
			r2 = sqlite3_step(rows);
		sqlite3_finalize(rows);
		if (r2 == SQLITE_ROW)
			rc = names_add(l, id) < 0 ? kg_call_error(c, KG_ENOMEM, "out of memory listing tenants") : 0;
		else if (r2 != SQLITE_DONE)
			rc = sq_error(sb, c, cn->db, r2, "listing tenants");
	}
	if (rc == 0 && src != SQLITE_DONE && src != SQLITE_ROW)
		rc = sq_error(sb, c, cn->db, src, "listing tenants");
	sqlite3_finalize(st);
	return rc;
}

/* Tenants of the shared tables and of their own tables, read on one
 * connection (sq_list_tenants runs it in one read transaction). */
static int tenants_read(kg_backend *b, kg_call *c, char ***out, size_t *n)
{
	sq_backend *sb = sb_of(b);
	conn *cn;
	name_list l = { 0 };
	int rc = reader_acquire(sb, c, &cn);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = stmt(sb, cn, c, ST_TENANTS, &rc);
	int src = SQLITE_DONE;
	while (st && rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
		if (names_add(&l, (const char *)sqlite3_column_text(st, 0)) < 0)
			rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
	if (st && rc == 0 && src != SQLITE_DONE)
		rc = sq_error(sb, c, cn->db, src, "listing tenants");
	if (st)
		sqlite3_reset(st);
	if (rc == 0 && sb->tenant_tables)
		rc = tenant_table_names(sb, c, cn, &l);
	reader_release(sb, c, cn);
	char **list = NULL;
	if (rc == 0 && !(list = malloc(l.n * sizeof(char *) + l.bytes + 1)))
		rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
	if (rc == 0 && l.n)
		qsort(l.v, l.n, sizeof(*l.v), names_cmp);
	char *cursor = list ? (char *)(list + l.n) : NULL;
	for (size_t i = 0; i < l.n; i++) {
		if (list) {
			size_t len = strlen(l.v[i]) + 1;
			memcpy(cursor, l.v[i], len);
			list[i] = cursor;
			cursor += len;
		}
		free(l.v[i]);
	}
	free(l.v);
	if (rc < 0)
		return rc;
	*out = list;
	*n = l.n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

static int sq_txn_begin(kg_backend *b, kg_call *c, void **txn)
{
	sq_backend *sb = sb_of(b);
	sq_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return kg_call_error(c, KG_ENOMEM, "out of memory starting a transaction");
	kg_call probe = *c;
	probe.txn = NULL;
	int rc = writer_acquire(sb, &probe);
	if (rc < 0) {
		free(t);
		return rc;
	}
	rc = exec(sb, c, sb->writer.db, "BEGIN IMMEDIATE", "starting a transaction");
	pthread_mutex_lock(&sb->wlock);
	sb->writer_busy = 0;
	if (rc == 0)
		sb->active_txn = t;
	pthread_cond_broadcast(&sb->wcond);
	pthread_mutex_unlock(&sb->wlock);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*txn = t;
	return 0;
}

static int txn_end(kg_backend *b, kg_call *c, void *txn, int commit)
{
	sq_backend *sb = sb_of(b);
	kg_call tc = *c;
	tc.txn = txn;
	int rc = writer_acquire(sb, &tc);
	if (rc < 0)
		return rc;
	sq_txn *t = txn;
	if (commit) {
		/* Indexes dropped for a bulk load are built before the commit. */
		for (size_t k = 0; k < t->n_bulk && rc >= 0; k++)
			if (t->bulk[k].defer.create)
				rc = restore_indexes(sb, c, &t->bulk[k].defer);
		if (rc >= 0)
			rc = exec(sb, c, sb->writer.db, "COMMIT", "committing the transaction");
		if (rc < 0)
			sqlite3_exec(sb->writer.db, "ROLLBACK", NULL, NULL, NULL);
	} else {
		rc = exec(sb, c, sb->writer.db, "ROLLBACK", "rolling back the transaction");
	}
	if (sb->fts_txn_dirty && (!commit || rc < 0)) {
		sb->fts_known = 0; /* the index changes went with the transaction */
		if (!sb->in_memory)
			sb->fts_trusted = 0;
	}
	sb->fts_txn_dirty = 0;
	if (!commit || rc < 0)
		tt_stale(&sb->writer);
	pthread_mutex_lock(&sb->wlock);
	sb->active_txn = NULL;
	sb->writer_busy = 0;
	pthread_cond_broadcast(&sb->wcond);
	pthread_mutex_unlock(&sb->wlock);
	for (size_t k = 0; k < t->n_bulk; k++) {
		deferred_free(&t->bulk[k].defer); /* a rollback restored them */
		free(t->bulk[k].table);
	}
	free(t->bulk);
	free(txn);
	return rc;
}

static int sq_txn_commit(kg_backend *b, kg_call *c, void *txn) { return txn_end(b, c, txn, 1); }
static int sq_txn_rollback(kg_backend *b, kg_call *c, void *txn) { return txn_end(b, c, txn, 0); }

/* ------------------------------------------------------------------ */
/* Multi-query operations: the core's algorithms inside one snapshot     */
/* ------------------------------------------------------------------ */

typedef struct snapshot {
	sq_txn pin;
	kg_call call;
	conn *cn;
} snapshot;

/* Opens a read transaction on one connection for the calls made with
 * snap->call. Inside a kg_begin transaction nothing is needed: its calls
 * already share the writer connection. */
static int snapshot_begin(sq_backend *sb, kg_call *c, snapshot *snap)
{
	snap->call = *c;
	snap->cn = NULL;
	if (c->txn)
		return 0;
	int rc = reader_acquire(sb, c, &snap->cn);
	if (rc < 0)
		return rc;
	if ((rc = control(sb, c, snap->cn, ST_BEGIN_READ, "starting a read")) < 0) {
		reader_release(sb, c, snap->cn);
		return rc;
	}
	snap->pin.pinned = snap->cn;
	snap->call.txn = &snap->pin;
	return 0;
}

static int snapshot_end(sq_backend *sb, kg_call *c, snapshot *snap, int rc)
{
	if (snap->cn) {
		char buf[256];
		kg_call scratch = { .msg = buf, .msgcap = sizeof(buf) };
		/* A read has nothing to keep; a connection must never go back to
		 * the pool inside a transaction (its reads would stay in the past). */
		if (control(sb, &scratch, snap->cn, ST_COMMIT, "ending a read") < 0)
			sqlite3_exec(snap->cn->db, "ROLLBACK", NULL, NULL, NULL);
		reader_release(sb, c, snap->cn);
	}
	c->result_flags |= snap->call.result_flags;
	return rc;
}

#define IN_SNAPSHOT(b, c, expr)                             \
	do {                                                    \
		sq_backend *sb_ = sb_of(b);                         \
		snapshot snap_;                                     \
		int rc_ = snapshot_begin(sb_, c, &snap_);           \
		if (rc_ < 0)                                        \
			return rc_;                                     \
		kg_call *sc = &snap_.call;                          \
		rc_ = (expr);                                       \
		return snapshot_end(sb_, c, &snap_, rc_);           \
	} while (0)

static int sq_stats(kg_backend *b, kg_call *c, kg_stats **out)
{
	IN_SNAPSHOT(b, c, stats_read(b, sc, out));
}

static int sq_relations_of(kg_backend *b, kg_call *c, const char *id, const char *relation_type, kg_direction dir,
                           kg_relation_list **out)
{
	IN_SNAPSHOT(b, c, relations_read(b, sc, id, relation_type, dir, out));
}

static int sq_list_tenants(kg_backend *b, kg_call *c, char ***out, size_t *n)
{
	IN_SNAPSHOT(b, c, tenants_read(b, sc, out, n));
}

/* Many gets in one read transaction: one snapshot, and the file locks
 * taken once instead of once per id. */
static int sq_get_entities(kg_backend *b, kg_call *c, const char *const *ids, size_t n, kg_entity_list **out)
{
	IN_SNAPSHOT(b, c, kg_generic_get_entities(b, sc, ids, n, out));
}

static int sq_neighbors(kg_backend *b, kg_call *c, const char *id, const char *relation_type, kg_direction dir,
                        kg_entity_list **out)
{
	IN_SNAPSHOT(b, c, kg_generic_neighbors(b, sc, id, relation_type, dir, out));
}

static int sq_traverse(kg_backend *b, kg_call *c, const char *start, const char *relation_type, int max_depth,
                       size_t max_results, kg_path_list **out)
{
	IN_SNAPSHOT(b, c, kg_generic_traverse(b, sc, start, relation_type, max_depth, max_results, out));
}

/*
 * find_paths: the core's algorithm (kg_generic_find_paths: a backward BFS
 * from the target gives distances, then depth-first walks from the source,
 * shortest length first, edges in insertion order), so the answer is the
 * same path for path; but the searches read only ids (source_id of incoming
 * relations, rowid and target_id of outgoing ones) instead of whole relation
 * records, and fetch full entities and relations only for the paths returned.
 */
typedef struct pnode {
	char *id;
	long dist;           /* hops to the target, -1 unknown */
	int loaded;          /* out edges read */
	size_t n_out;
	sqlite3_int64 *out_rowid;
	size_t *out_node;    /* node of each out edge's target, SIZE_MAX: none */
	size_t entity;       /* index in the path list, SIZE_MAX: not added */
} pnode;

typedef struct pgraph {
	sq_backend *sb;
	kg_call *c;
	conn *cn;
	pnode *nodes;
	size_t n, cap;
	size_t *slots; /* open addressing: node index + 1, 0 = empty */
	size_t mask;
	sqlite3_int64 *rel_rowid; /* relations in the path list, by rowid */
	size_t *rel_index;
	size_t n_rel, cap_rel;
	kg_path_list *pl;
} pgraph;

static size_t pg_find(const pgraph *g, const char *id)
{
	if (!g->slots)
		return SIZE_MAX;
	for (size_t i = kg_hash_str(id) & g->mask;; i = (i + 1) & g->mask) {
		size_t v = g->slots[i];
		if (!v)
			return SIZE_MAX;
		if (strcmp(g->nodes[v - 1].id, id) == 0)
			return v - 1;
	}
}

/* The node of an id, created on first sight (*node). */
static int pg_node(pgraph *g, const char *id, size_t *node)
{
	if ((*node = pg_find(g, id)) != SIZE_MAX)
		return 0;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		pnode *nodes = realloc(g->nodes, cap * sizeof(*nodes));
		size_t *slots = calloc(cap * 2, sizeof(*slots));
		if (!nodes || !slots) {
			if (nodes)
				g->nodes = nodes;
			free(slots);
			return kg_call_error(g->c, KG_ENOMEM, "out of memory finding paths");
		}
		g->nodes = nodes;
		g->cap = cap;
		free(g->slots);
		g->slots = slots;
		g->mask = cap * 2 - 1;
		for (size_t k = 0; k < g->n; k++) {
			size_t i = kg_hash_str(g->nodes[k].id) & g->mask;
			while (g->slots[i])
				i = (i + 1) & g->mask;
			g->slots[i] = k + 1;
		}
	}
	char *copy = strdup(id);
	if (!copy)
		return kg_call_error(g->c, KG_ENOMEM, "out of memory finding paths");
	g->nodes[g->n] = (pnode){ copy, -1, 0, 0, NULL, NULL, SIZE_MAX };
	size_t i = kg_hash_str(id) & g->mask;
	while (g->slots[i])
		i = (i + 1) & g->mask;
	g->slots[i] = g->n + 1;
	*node = g->n++;
	return 0;
}

static void pg_free(pgraph *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->nodes[i].id);
		free(g->nodes[i].out_rowid);
		free(g->nodes[i].out_node);
	}
	free(g->nodes);
	free(g->slots);
	free(g->rel_rowid);
	free(g->rel_index);
	kg_path_list_free(g->pl);
}

/* Outgoing edges of a node, read once: rowid and the target's node (only
 * nodes the backward search made can be on a path). */
static int pg_out(pgraph *g, size_t node)
{
	pnode *p = &g->nodes[node];
	if (p->loaded)
		return 0;
	int rc = 0;
	sqlite3_stmt *st = stmt(g->sb, g->cn, g->c, ST_OUT_TARGETS, &rc);
	if (!st)
		return rc;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	bind_tenant(st, 2, g->c->tenant);
	size_t cap = 0;
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		size_t to = pg_find(g, column_str(st, 1) ? column_str(st, 1) : "");
		if (to == SIZE_MAX)
			continue;
		if (p->n_out == cap) {
			cap = cap ? cap * 2 : 8;
			sqlite3_int64 *r = realloc(p->out_rowid, cap * sizeof(*r));
			if (r)
				p->out_rowid = r;
			size_t *t = realloc(p->out_node, cap * sizeof(*t));
			if (t)
				p->out_node = t;
			if (!r || !t) {
				sqlite3_reset(st);
				return kg_call_error(g->c, KG_ENOMEM, "out of memory finding paths");
			}
		}
		p->out_rowid[p->n_out] = sqlite3_column_int64(st, 0);
		p->out_node[p->n_out++] = to;
	}
	sqlite3_reset(st);
	if (src != SQLITE_DONE)
		return sq_error(g->sb, g->c, g->cn->db, src, "finding paths");
	p->loaded = 1;
	return 0;
}

static int pg_entity(pgraph *g, size_t node, size_t *idx)
{
	if (g->nodes[node].entity == SIZE_MAX) {
		int rc = 0;
		sqlite3_stmt *st = stmt(g->sb, g->cn, g->c, ST_GET_ENTITY, &rc);
		if (!st)
			return rc;
		sqlite3_bind_text(st, 1, g->nodes[node].id, -1, SQLITE_STATIC);
		bind_tenant(st, 2, g->c->tenant);
		int src = sqlite3_step(st);
		kg_entity *e = src == SQLITE_ROW ? row_entity(st) : NULL;
		sqlite3_reset(st);
		if (src == SQLITE_DONE)
			return not_found(g->c, "entity", g->nodes[node].id);
		if (src != SQLITE_ROW)
			return sq_error(g->sb, g->c, g->cn->db, src, "finding paths");
		if (!e || kg_path_list_add_entity(g->pl, e, &g->nodes[node].entity) < 0)
			return kg_call_error(g->c, KG_ENOMEM, "out of memory finding paths");
	}
	*idx = g->nodes[node].entity;
	return 0;
}

static int pg_relation(pgraph *g, sqlite3_int64 rowid, size_t *idx)
{
	for (size_t i = 0; i < g->n_rel; i++)
		if (g->rel_rowid[i] == rowid) {
			*idx = g->rel_index[i];
			return 0;
		}
	if (g->n_rel == g->cap_rel) {
		size_t cap = g->cap_rel ? g->cap_rel * 2 : 16;
		sqlite3_int64 *r = realloc(g->rel_rowid, cap * sizeof(*r));
		if (r)
			g->rel_rowid = r;
		size_t *x = realloc(g->rel_index, cap * sizeof(*x));
		if (x)
			g->rel_index = x;
		if (!r || !x)
			return kg_call_error(g->c, KG_ENOMEM, "out of memory finding paths");
		g->cap_rel = cap;
	}
	int rc = 0;
	sqlite3_stmt *st = stmt(g->sb, g->cn, g->c, ST_RELATION_BY_ROWID, &rc);
	if (!st)
		return rc;
	sqlite3_bind_int64(st, 1, rowid);
	int src = sqlite3_step(st);
	kg_relation *r = src == SQLITE_ROW ? row_relation(st) : NULL;
	sqlite3_reset(st);
	if (src != SQLITE_ROW)
		return src == SQLITE_DONE ? kg_call_error(g->c, KG_EINTERNAL, "finding paths: a relation vanished inside "
		                                                               "a read transaction")
		                          : sq_error(g->sb, g->c, g->cn->db, src, "finding paths");
	if (!r || kg_path_list_add_relation(g->pl, r, idx) < 0)
		return kg_call_error(g->c, KG_ENOMEM, "out of memory finding paths");
	g->rel_rowid[g->n_rel] = rowid;
	g->rel_index[g->n_rel++] = *idx;
	return 0;
}

static int pg_add_path(pgraph *g, const size_t *nodes, const sqlite3_int64 *edges, size_t n_edges)
{
	size_t nidx[KG_SQ_MAX_DEPTH + 2], eidx[KG_SQ_MAX_DEPTH + 1];
	int rc;
	for (size_t i = 0; i <= n_edges; i++)
		if ((rc = pg_entity(g, nodes[i], &nidx[i])) < 0)
			return rc;
	for (size_t i = 0; i < n_edges; i++)
		if ((rc = pg_relation(g, edges[i], &eidx[i])) < 0)
			return rc;
	if (kg_path_list_add_path(g->pl, nidx, n_edges + 1, eidx, 1.0 / (1.0 + (double)n_edges)) < 0)
		return kg_call_error(g->c, KG_ENOMEM, "out of memory finding paths");
	return 0;
}

typedef struct pwalk {
	pgraph *g;
	size_t target, want, max_paths;
	size_t nodes[KG_SQ_MAX_DEPTH + 2];
	sqlite3_int64 edges[KG_SQ_MAX_DEPTH + 1];
} pwalk;

/* Paths of exactly `want` edges from nodes[0]: 1 = enough, 0 = go on. */
static int pg_walk(pwalk *w, size_t depth)
{
	size_t at = w->nodes[depth];
	int rc = pg_out(w->g, at);
	if (rc < 0)
		return rc;
	size_t left = w->want - depth - 1;
	for (size_t i = 0; i < w->g->nodes[at].n_out; i++) {
		size_t next = w->g->nodes[at].out_node[i];
		if (left == 0) {
			if (next != w->target)
				continue;
		} else {
			long d = w->g->nodes[next].dist;
			if (d < 0 || (size_t)d > left || next == w->target)
				continue;
			int cycle = 0;
			for (size_t k = 0; k <= depth && !cycle; k++)
				cycle = w->nodes[k] == next;
			if (cycle)
				continue;
		}
		w->nodes[depth + 1] = next;
		w->edges[depth] = w->g->nodes[at].out_rowid[i];
		if (left == 0) {
			if ((rc = pg_add_path(w->g, w->nodes, w->edges, w->want)) < 0)
				return rc;
			if (w->max_paths && w->g->pl->count >= w->max_paths)
				return 1;
			continue;
		}
		/* pg_out may move the node array: index, never hold pointers. */
		if ((rc = pg_walk(w, depth + 1)) != 0)
			return rc;
	}
	return 0;
}

static int paths_on(sq_backend *sb, kg_call *c, conn *cn, const char *source, const char *target, int max_depth,
                    size_t max_paths, kg_path_list **out)
{
	pgraph g = { .sb = sb, .c = c, .cn = cn };
	size_t *queue = NULL;
	int rc = 0;
	if (!(g.pl = kg_path_list_new()))
		return kg_call_error(c, KG_ENOMEM, "out of memory finding paths");
	const char *ends[2] = { source, target };
	for (int k = 0; k < 2 && rc == 0; k++) {
		int have = exists(sb, c, cn, ST_HAS_ENTITY, ends[k]);
		rc = have < 0 ? have : have ? 0 : not_found(c, "entity", ends[k]);
	}
	size_t src = 0, dst = 0;
	if (rc < 0 || (rc = pg_node(&g, target, &dst)) < 0 || (rc = pg_node(&g, source, &src)) < 0)
		goto cleanup;
	if (src == dst) {
		rc = pg_add_path(&g, &src, NULL, 0);
	} else if (max_depth > 0) {
		size_t qn = 0, qcap = 64, head = 0;
		long source_dist = -1;
		if (!(queue = malloc(qcap * sizeof(*queue)))) {
			rc = kg_call_error(c, KG_ENOMEM, "out of memory finding paths");
			goto cleanup;
		}
		g.nodes[dst].dist = 0;
		queue[qn++] = dst;
		sqlite3_stmt *st = stmt(sb, cn, c, ST_IN_SOURCES, &rc);
		while (st && rc == 0 && head < qn) {
			size_t at = queue[head++];
			long d = g.nodes[at].dist;
			sqlite3_bind_text(st, 1, g.nodes[at].id, -1, SQLITE_STATIC);
			bind_tenant(st, 2, c->tenant);
			int s2;
			while (rc == 0 && (s2 = sqlite3_step(st)) == SQLITE_ROW) {
				const char *prev_id = column_str(st, 0) ? column_str(st, 0) : "";
				if (strcmp(prev_id, source) == 0 && source_dist < 0)
					source_dist = d + 1;
				if (d + 1 >= max_depth)
					continue;
				size_t prev;
				if ((rc = pg_node(&g, prev_id, &prev)) < 0 || g.nodes[prev].dist >= 0)
					continue;
				g.nodes[prev].dist = d + 1;
				if (qn == qcap) {
					size_t *q = realloc(queue, qcap * 2 * sizeof(*q));
					if (!q) {
						rc = kg_call_error(c, KG_ENOMEM, "out of memory finding paths");
						break;
					}
					queue = q;
					qcap *= 2;
				}
				queue[qn++] = prev;
			}
			if (rc == 0 && s2 != SQLITE_DONE)
				rc = sq_error(sb, c, cn->db, s2, "finding paths");
			sqlite3_reset(st);
		}
		if (!st)
			goto cleanup;
		if (rc == 0 && source_dist > 0) {
			pwalk w = { .g = &g, .target = dst, .max_paths = max_paths };
			w.nodes[0] = src;
			for (long len = source_dist; len <= max_depth; len++) {
				w.want = (size_t)len;
				int wr = pg_walk(&w, 0);
				if (wr != 0) {
					rc = wr < 0 ? wr : 0;
					break;
				}
			}
		}
	}
cleanup:
	if (rc == 0) {
		*out = g.pl;
		g.pl = NULL;
	}
	free(queue);
	pg_free(&g);
	return rc;
}

static int sq_find_paths(kg_backend *b, kg_call *c, const char *source, const char *target, int max_depth,
                         size_t max_paths, kg_path_list **out)
{
	/* Deeper searches than the fixed walk arrays take go the generic way. */
	if (max_depth > KG_SQ_MAX_DEPTH)
		IN_SNAPSHOT(b, c, kg_generic_find_paths(b, sc, source, target, max_depth, max_paths, out));
	sq_backend *sb = sb_of(b);
	snapshot snap;
	int rc = snapshot_begin(sb, c, &snap);
	if (rc < 0)
		return rc;
	conn *cn;
	if ((rc = reader_acquire(sb, &snap.call, &cn)) == 0) {
		rc = paths_on(sb, &snap.call, cn, source, target, max_depth, max_paths, out);
		reader_release(sb, &snap.call, cn);
	}
	return snapshot_end(sb, c, &snap, rc);
}

static int sq_subgraph(kg_backend *b, kg_call *c, const char *const *ids, size_t n, kg_subgraph **out)
{
	IN_SNAPSHOT(b, c, kg_generic_subgraph(b, sc, ids, n, out));
}

/* ------------------------------------------------------------------ */
/* Text search: FTS5 selects the candidates, the core's rules rank them  */
/* ------------------------------------------------------------------ */

/*
 * The index (SCHEMA_FTS) is created by the first text search and then kept
 * by kgstore's own writes, in their transactions; nothing is attached to
 * the original's tables, so the original reads and writes the file as
 * before. Bulk adds do nothing for it: rows above the watermark are indexed
 * by the next search ("catch-up"), so a load costs what it cost without the
 * index. Updates, deletes and clears of indexed rows take them out (and put
 * the new version back) at once.
 *
 * Writes that bypass kgstore (the original, plain SQL) are found in two
 * ways. The writer connection's PRAGMA data_version moves when any other
 * connection commits; while it has not moved since the index was last
 * verified, every commit was this store's, so the index is right. When it
 * has moved (and once per opening), the rows under the watermark are
 * compared with the index's count and fingerprint sum before the index is
 * used or changed; on a difference the index is emptied and built again.
 * A search that cannot take the writer to check (another handle's open
 * transaction) scans instead: slower, never stale.
 */

typedef struct fts_total {
	char *key;       /* tenant key, NUL, type, NUL (one allocation) */
	size_t type_off;
	sqlite3_int64 docs, tokens;
} fts_total;

/* Totals deltas of one call, written at its end (one row per tenant and
 * type instead of one write per indexed row). */
struct fts_acc {
	fts_total *e;
	size_t n, cap;
	size_t *slots; /* index + 1, 0 = empty */
	size_t mask;
	int negative;
};

/* Tenant keys: "" is the global namespace, "+t" tenant t (so that a stray
 * '' tenant in a file does not count as global). */
static int tkey_match(const char *key, const char *tenant)
{
	return tenant ? key[0] == '+' && strcmp(key + 1, tenant) == 0 : key[0] == '\0';
}

static size_t acc_hash(const char *tenant, const char *type)
{
	return kg_hash_str(type) * 31 + (tenant ? kg_hash_str(tenant) + 1 : 0);
}

static void acc_clear(struct fts_acc *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->e[i].key);
	a->n = 0;
	a->negative = 0;
	if (a->slots)
		memset(a->slots, 0, (a->mask + 1) * sizeof(*a->slots));
}

static void acc_free(struct fts_acc *a)
{
	if (!a)
		return;
	acc_clear(a);
	free(a->e);
	free(a->slots);
	free(a);
}

static int acc_add(sq_backend *sb, const char *tenant, const char *type, sqlite3_int64 docs, sqlite3_int64 tokens)
{
	struct fts_acc *a = sb->fts_acc;
	if (!a && !(a = sb->fts_acc = calloc(1, sizeof(*a))))
		return KG_ENOMEM;
	if (!type)
		type = "";
	size_t h = acc_hash(tenant, type);
	if (a->slots)
		for (size_t i = h & a->mask; a->slots[i]; i = (i + 1) & a->mask) {
			fts_total *t = &a->e[a->slots[i] - 1];
			if (tkey_match(t->key, tenant) && strcmp(t->key + t->type_off, type) == 0) {
				t->docs += docs;
				t->tokens += tokens;
				a->negative |= docs < 0;
				return 0;
			}
		}
	if ((a->n + 1) * 2 > (a->slots ? a->mask + 1 : 0)) {
		size_t nslots = a->slots ? (a->mask + 1) * 2 : 16;
		size_t *slots = calloc(nslots, sizeof(*slots));
		if (!slots)
			return KG_ENOMEM;
		free(a->slots);
		a->slots = slots;
		a->mask = nslots - 1;
		for (size_t k = 0; k < a->n; k++) {
			const fts_total *t = &a->e[k];
			size_t i = acc_hash(t->key[0] ? t->key + 1 : NULL, t->key + t->type_off) & a->mask;
			while (a->slots[i])
				i = (i + 1) & a->mask;
			a->slots[i] = k + 1;
		}
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		fts_total *e = realloc(a->e, cap * sizeof(*e));
		if (!e)
			return KG_ENOMEM;
		a->e = e;
		a->cap = cap;
	}
	size_t tl = tenant ? strlen(tenant) + 1 : 0, yl = strlen(type);
	char *key = malloc(tl + 1 + yl + 1);
	if (!key)
		return KG_ENOMEM;
	if (tenant) {
		key[0] = '+';
		memcpy(key + 1, tenant, tl - 1);
	}
	key[tl] = '\0';
	memcpy(key + tl + 1, type, yl + 1);
	a->e[a->n] = (fts_total){ key, tl + 1, docs, tokens };
	size_t i = h & a->mask;
	while (a->slots[i])
		i = (i + 1) & a->mask;
	a->slots[i] = ++a->n;
	a->negative |= docs < 0;
	return 0;
}

/* Writes the call's totals deltas and the index state (writer, inside the
 * call's transaction). */
static int fts_flush(sq_backend *sb, kg_call *c)
{
	struct fts_acc *a = sb->fts_acc;
	int rc = 0;
	for (size_t i = 0; a && i < a->n && rc >= 0; i++) {
		const fts_total *t = &a->e[i];
		if (!t->docs && !t->tokens)
			continue;
		sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_FTS_TOTALS_ADD, &rc);
		if (!st)
			break;
		sqlite3_bind_text(st, 1, t->key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, t->key + t->type_off, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, t->docs);
		sqlite3_bind_int64(st, 4, t->tokens);
		rc = step_done(sb, c, &sb->writer, st, "updating the text index");
	}
	if (rc >= 0 && a && a->negative) {
		sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_FTS_TOTALS_PRUNE, &rc);
		if (st)
			rc = step_done(sb, c, &sb->writer, st, "updating the text index");
	}
	if (rc >= 0) {
		sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_FTS_SET_STATE, &rc);
		if (st) {
			sqlite3_bind_int64(st, 1, sb->fts_w);
			sqlite3_bind_int64(st, 2, sb->fts_docs);
			sqlite3_bind_int64(st, 3, (sqlite3_int64)sb->fts_hash);
			rc = step_done(sb, c, &sb->writer, st, "updating the text index");
		}
	}
	acc_clear(a);
	return rc;
}

/* End of a writer call: what it changed in the index state is kept only
 * if it was committed (or released into the open transaction). */
static void fts_call_done(sq_backend *sb, kg_call *c, int committed)
{
	if (sb->fts_dirty) {
		if (!committed) {
			sb->fts_known = 0; /* read again from the database */
			if (!sb->in_memory)
				sb->fts_trusted = 0;
		} else if (c->txn) {
			sb->fts_txn_dirty = 1;
		}
	}
	sb->fts_dirty = 0;
	acc_clear(sb->fts_acc);
}

/* With the writer held: the index state, read again when another
 * connection has committed since it was read (data_version moved), which
 * also ends the trust in it. In memory nothing else can write. */
static int fts_refresh(sq_backend *sb, kg_call *c)
{
	if (sb->fts_fresh && sb->fts_known)
		return 0;
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_DATA_VERSION, &rc);
	if (!st)
		return rc;
	int src = sqlite3_step(st);
	sqlite3_int64 dv = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (src != SQLITE_ROW)
		return sq_error(sb, c, sb->writer.db, src, "reading the data version");
	sb->fts_fresh = 1;
	if (sb->fts_known && dv == sb->fts_dv)
		return 0;
	if (dv != sb->fts_dv && !sb->in_memory)
		sb->fts_trusted = 0;
	sb->fts_known = 0;
	if (!(st = stmt(sb, &sb->writer, c, ST_FTS_EXISTS, &rc)))
		return rc;
	src = sqlite3_step(st);
	sb->fts_exists = src == SQLITE_ROW && sqlite3_column_int(st, 0) == 3;
	sqlite3_reset(st);
	if (src != SQLITE_ROW)
		return sq_error(sb, c, sb->writer.db, src, "reading the text index state");
	sb->fts_w = INT64_MIN;
	sb->fts_docs = 0;
	sb->fts_hash = 0;
	if (sb->fts_exists) {
		if (!(st = stmt(sb, &sb->writer, c, ST_FTS_STATE, &rc)))
			return rc;
		if ((src = sqlite3_step(st)) == SQLITE_ROW) {
			sb->fts_w = sqlite3_column_int64(st, 0);
			sb->fts_docs = sqlite3_column_int64(st, 1);
			sb->fts_hash = (uint64_t)sqlite3_column_int64(st, 2);
		}
		sqlite3_reset(st);
		if (src != SQLITE_ROW) /* a missing state row: start again */
			sb->fts_exists = 0;
	}
	sb->fts_dv = dv;
	sb->fts_known = 1;
	if (sb->in_memory)
		sb->fts_trusted = 1;
	return 0;
}

/* Adds (add = 1) or takes out one entities row: index text, count,
 * fingerprint sum and totals. Writer, inside a write transaction. */
static int fts_row(sq_backend *sb, kg_call *c, int add, sqlite3_int64 rowid, const char *id, const char *tenant,
                   const char *type, const char *props)
{
	if (kg_fts_text_build(&sb->fts_text, id, type, props) < 0)
		return kg_call_error(c, KG_ENOMEM, "out of memory indexing entity '%s'", id ? id : "");
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, add ? ST_FTS_INSERT : ST_FTS_DELETE, &rc);
	if (!st)
		return rc;
	sqlite3_bind_int64(st, 1, rowid);
	sqlite3_bind_text(st, 2, sb->fts_text.buf, (int)sb->fts_text.len, SQLITE_STATIC);
	if ((rc = step_done(sb, c, &sb->writer, st, "updating the text index")) < 0)
		return rc;
	uint64_t h = kg_fts_row_hash(rowid, id, tenant, type, props);
	sqlite3_int64 tokens = (sqlite3_int64)sb->fts_text.tokens;
	sb->fts_docs += add ? 1 : -1;
	sb->fts_hash = add ? sb->fts_hash + h : sb->fts_hash - h;
	sb->fts_dirty = 1;
	if (acc_add(sb, tenant, type, add ? 1 : -1, add ? tokens : -tokens) < 0)
		return kg_call_error(c, KG_ENOMEM, "out of memory indexing entity '%s'", id ? id : "");
	return 0;
}

/* Empties the index (built again from the first row by catch-up). */
static int fts_reset(sq_backend *sb, kg_call *c)
{
	int rc = exec(sb, c, sb->writer.db,
	              "INSERT INTO kgstore_fts (kgstore_fts) VALUES ('delete-all'); DELETE FROM kgstore_fts_totals",
	              "emptying the text index");
	if (rc < 0)
		return rc;
	acc_clear(sb->fts_acc);
	sb->fts_w = INT64_MIN;
	sb->fts_docs = 0;
	sb->fts_hash = 0;
	sb->fts_dirty = 1;
	sb->fts_trusted = 1;
	return 0;
}

/* Makes the index safe to use and change (writer held, inside a write
 * transaction): when it is not trusted, compares it with the rows under
 * the watermark and empties it if they differ. */
static int fts_ready(sq_backend *sb, kg_call *c)
{
	int rc = fts_refresh(sb, c);
	if (rc < 0 || !sb->fts_exists || sb->fts_trusted)
		return rc;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_FTS_ROWS_UPTO, &rc);
	if (!st)
		return rc;
	sqlite3_bind_int64(st, 1, sb->fts_w);
	sqlite3_int64 n = 0;
	uint64_t h = 0;
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		h += kg_fts_row_hash(sqlite3_column_int64(st, 0), column_str(st, 1), column_str(st, 2), column_str(st, 3),
		                     column_str(st, 4));
	}
	sqlite3_reset(st);
	if (src != SQLITE_DONE)
		return sq_error(sb, c, sb->writer.db, src, "checking the text index");
	if (n == sb->fts_docs && h == sb->fts_hash) {
		sb->fts_trusted = 1;
		return 0;
	}
	return fts_reset(sb, c);
}

/* Indexes the rows above the watermark (writer, in a write transaction). */
static int fts_catch_up(sq_backend *sb, kg_call *c)
{
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, &sb->writer, c, ST_FTS_ROWS_AFTER, &rc);
	if (!st)
		return rc;
	sqlite3_bind_int64(st, 1, sb->fts_w);
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
		if ((rc = fts_row(sb, c, 1, rowid, column_str(st, 1), column_str(st, 2), column_str(st, 3),
		                  column_str(st, 4))) < 0)
			break;
		sb->fts_w = rowid;
	}
	sqlite3_reset(st);
	if (rc == 0 && src != SQLITE_DONE)
		rc = sq_error(sb, c, sb->writer.db, src, "building the text index");
	return rc;
}

/* Creates the index if needed, checks it, indexes what is new. */
static int fts_sync_locked(sq_backend *sb, kg_call *c)
{
	int rc = fts_refresh(sb, c);
	if (rc < 0)
		return rc;
	if (!sb->fts_exists) {
		char *emsg = NULL;
		int src = sqlite3_exec(sb->writer.db, SCHEMA_FTS, NULL, NULL, &emsg);
		if (src != SQLITE_OK) {
			if (emsg && strstr(emsg, "no such module")) {
				pthread_mutex_lock(&sb->wlock);
				sb->fts_off = 1; /* this SQLite has no FTS5: searches scan */
				pthread_mutex_unlock(&sb->wlock);
			}
			rc = kg_call_error(c, KG_EUNSUPPORTED, "creating the text index in %s: %s", sb->path,
			                   emsg ? emsg : sqlite3_errstr(src));
			sqlite3_free(emsg);
			return rc;
		}
		sb->fts_known = 0;
		sb->fts_dirty = 1; /* a rollback takes the tables away again */
		if ((rc = fts_refresh(sb, c)) < 0)
			return rc;
		if (!sb->fts_exists)
			return kg_call_error(c, KG_EINTERNAL, "the text index tables of %s were not created", sb->path);
		sb->fts_trusted = 1; /* empty: nothing to compare */
	}
	if ((rc = fts_ready(sb, c)) < 0)
		return rc;
	return fts_catch_up(sb, c);
}

/* Runs fts_sync_locked in a write call of its own. Does not wait for
 * another handle's open transaction (the search scans instead). */
static int fts_sync(sq_backend *sb, kg_call *c)
{
	pthread_mutex_lock(&sb->wlock);
	int blocked = sb->active_txn && sb->active_txn != c->txn;
	pthread_mutex_unlock(&sb->wlock);
	if (blocked)
		return KG_EBUSY;
	int rc = write_begin(sb, c);
	if (rc < 0)
		return rc;
	return write_end(sb, c, fts_sync_locked(sb, c));
}

/* After an insert (writer, in its transaction): a row above the watermark
 * waits for the next search; one below it (a reused rowid) is indexed now. */
static int fts_after_insert(sq_backend *sb, kg_call *c, const kg_entity *e)
{
	if (sb->fts_off || tt_on(sb, c))
		return 0; /* the index covers the shared tables only */
	int rc = fts_refresh(sb, c);
	if (rc < 0 || !sb->fts_exists)
		return rc;
	sqlite3_int64 rowid = sqlite3_last_insert_rowid(sb->writer.db);
	if (rowid > sb->fts_w)
		return 0;
	if ((rc = fts_ready(sb, c)) < 0 || rowid > sb->fts_w)
		return rc;
	return fts_row(sb, c, 1, rowid, e->id, c->tenant, e->entity_type, e->properties);
}

/* Before an update, delete or clear (writer, in its transaction): takes
 * the indexed rows it will touch out of the index. `sel` is
 * ST_FTS_ROWS_BY_ID (key = id) or ST_FTS_ROWS_TENANT. Their rowids go to
 * *rows (caller frees) so that an update can index the new version. */
static int fts_before_change(sq_backend *sb, kg_call *c, enum stmt_id sel, const char *id, sqlite3_int64 **rows,
                             size_t *n)
{
	*rows = NULL;
	*n = 0;
	if (sb->fts_off || tt_on(sb, c))
		return 0;
	int rc = fts_refresh(sb, c);
	if (rc < 0 || !sb->fts_exists)
		return rc;
	size_t cap = 0;
	for (int pass = 0; pass < 2; pass++) {
		/* Pass 0 only looks for an indexed row, so that the check of an
		 * untrusted index is paid only when something is to change. */
		if (pass == 1 && (rc = fts_ready(sb, c)) < 0)
			return rc;
		sqlite3_stmt *st = stmt(sb, &sb->writer, c, sel, &rc);
		if (!st)
			return rc;
		if (sel == ST_FTS_ROWS_BY_ID) {
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			bind_tenant(st, 2, c->tenant);
		} else {
			bind_tenant(st, 1, c->tenant);
			sqlite3_bind_int64(st, 2, sb->fts_w);
		}
		int src, found = 0;
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
			if (rowid > sb->fts_w)
				continue;
			found = 1;
			if (pass == 0)
				break;
			if (*n == cap) {
				cap = cap ? cap * 2 : 4;
				sqlite3_int64 *r = realloc(*rows, cap * sizeof(*r));
				if (!r) {
					rc = kg_call_error(c, KG_ENOMEM, "out of memory updating the text index");
					break;
				}
				*rows = r;
			}
			(*rows)[(*n)++] = rowid;
			if ((rc = fts_row(sb, c, 0, rowid, column_str(st, 1), column_str(st, 2), column_str(st, 3),
			                  column_str(st, 4))) < 0)
				break;
		}
		sqlite3_reset(st);
		if (rc < 0)
			return rc;
		if (src != SQLITE_ROW && src != SQLITE_DONE)
			return sq_error(sb, c, sb->writer.db, src, "updating the text index");
		if (!found)
			return 0;
	}
	return 0;
}

/* The new version of updated rows back into the index. */
static int fts_after_update(sq_backend *sb, kg_call *c, const sqlite3_int64 *rows, size_t n, const kg_entity *e)
{
	int rc = 0;
	for (size_t i = 0; i < n && rc >= 0; i++)
		rc = fts_row(sb, c, 1, rows[i], e->id, c->tenant, e->entity_type, e->properties);
	return rc;
}

/* Whether the index answers for the read transaction on cn: it exists,
 * covers every row (max rowid <= watermark), and no other connection has
 * committed since it was verified. The writer is checked after the
 * snapshot's first read, so any commit the snapshot sees has moved
 * data_version by then. Errors just mean "no" (the search scans). */
static void fts_clean(sq_backend *sb, kg_call *c, conn *cn, int *clean)
{
	char buf[256] = "";
	kg_call q = *c; /* failures here are not the caller's news */
	q.msg = buf;
	q.msgcap = sizeof(buf);
	*clean = 0;
	int rc = 0;
	sqlite3_stmt *st = stmt(sb, cn, &q, ST_FTS_STATE, &rc);
	if (!st)
		return;
	int src = sqlite3_step(st);
	sqlite3_int64 w = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (src != SQLITE_ROW || !(st = stmt(sb, cn, &q, ST_MAX_ROWID, &rc)))
		return;
	/* An empty table has max NULL (0 here); a row at INT64_MIN, which the
	 * watermark cannot sit below, is left to the scan. */
	src = sqlite3_step(st);
	int ok = src == SQLITE_ROW && sqlite3_column_int64(st, 0) <= w &&
	         (sqlite3_column_type(st, 1) == SQLITE_NULL || sqlite3_column_int64(st, 1) > INT64_MIN);
	int empty = src == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL;
	sqlite3_reset(st);
	if (!ok && !empty)
		return;
	if (cn == &sb->writer) { /* held already: a transaction or memory */
		*clean = fts_refresh(sb, &q) == 0 && sb->fts_exists && sb->fts_trusted;
		return;
	}
	q.txn = NULL; /* the snapshot's pin is no writer transaction */
	if (writer_acquire_nowait(sb, &q) < 0)
		return;
	*clean = fts_refresh(sb, &q) == 0 && sb->fts_exists && sb->fts_trusted;
	writer_release(sb);
}

typedef struct fts_cand {
	double score;
	size_t order;
	sqlite3_int64 rowid;
} fts_cand;

/* Best first, ties to the earlier row, as the core's top-k. */
static int cand_cmp(const void *x, const void *y)
{
	const fts_cand *a = x, *b = y;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* The search itself, on a connection whose index is clean: candidates are
 * the rows holding a query token (in the tenant and type), in rowid order;
 * every method is scored by the core's scorer, BM25 with the corpus
 * statistics of the whole tenant and type (kgstore_fts_totals; df counts
 * only candidates, as only they hold a term). */
static int fts_search_on(sq_backend *sb, kg_call *c, conn *cn, const kg_fts_query *q, const char *query,
                         const char *entity_type, size_t k, double threshold, kg_text_method method,
                         kg_entity_list **out)
{
	kg_text_scorer *ts = NULL;
	fts_cand *cand = NULL;
	size_t n = 0, cap = 0;
	kg_entity_list *l = NULL;
	char *tkey = NULL;
	int rc = 0, src;
	int bm25 = method == KG_TEXT_BM25;
	if (kg_text_scorer_new(query, method, &ts) < 0)
		goto oom;
	sqlite3_stmt *st = stmt(sb, cn, c, ST_FTS_CANDIDATES, &rc);
	if (!st)
		goto cleanup;
	sqlite3_bind_text(st, 1, q->match, -1, SQLITE_STATIC);
	bind_tenant(st, 2, c->tenant);
	if (entity_type)
		sqlite3_bind_text(st, 3, entity_type, -1, SQLITE_STATIC);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			fts_cand *p = realloc(cand, nc * sizeof(*p));
			if (!p) {
				sqlite3_reset(st);
				goto oom;
			}
			cand = p;
			cap = nc;
		}
		cand[n] = (fts_cand){ 0, n, sqlite3_column_int64(st, 0) };
		/* The fields row_entity would give the generic path. */
		const char *id = column_str(st, 1), *type = column_str(st, 2), *props = column_str(st, 3);
		kg_entity e = KG_ENTITY_INIT;
		e.id = id ? id : "";
		e.entity_type = type ? type : "";
		e.properties = props ? props : "{}";
		size_t idx;
		if (kg_text_scorer_add(ts, &e, &idx) < 0) {
			sqlite3_reset(st);
			goto oom;
		}
		n++;
	}
	sqlite3_reset(st);
	if (src != SQLITE_DONE) {
		rc = sq_error(sb, c, cn->db, src, "searching the text index");
		goto cleanup;
	}
	if (bm25 && n) {
		/* BM25's corpus is the whole tenant and type, not the candidates. */
		size_t tl = c->tenant ? strlen(c->tenant) : 0;
		if (!(tkey = malloc(tl + 2)))
			goto oom;
		tkey[0] = '+';
		memcpy(tkey + 1, c->tenant ? c->tenant : "", tl + 1);
		if (!(st = stmt(sb, cn, c, ST_FTS_TOTALS, &rc)))
			goto cleanup;
		sqlite3_bind_text(st, 1, c->tenant ? tkey : "", -1, SQLITE_STATIC);
		if (entity_type)
			sqlite3_bind_text(st, 2, entity_type, -1, SQLITE_STATIC);
		src = sqlite3_step(st);
		sqlite3_int64 n_docs = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		double tokens = src == SQLITE_ROW ? (double)sqlite3_column_int64(st, 1) : 0;
		sqlite3_reset(st);
		if (src != SQLITE_ROW) {
			rc = sq_error(sb, c, cn->db, src, "reading the text index totals");
			goto cleanup;
		}
		if (kg_text_scorer_set_corpus(ts, (size_t)(n_docs > 0 ? n_docs : 0), tokens) < 0) {
			rc = kg_call_error(c, KG_EINTERNAL, "text search: the index totals (%lld documents) are fewer than "
			                                    "the %zu candidates",
			                   (long long)n_docs, n);
			goto cleanup;
		}
	}
	for (size_t d = 0; d < n; d++)
		cand[d].score = kg_text_scorer_score(ts, d);
	size_t kept = 0;
	for (size_t d = 0; d < n; d++)
		if (cand[d].score > 0.0 && cand[d].score >= threshold)
			cand[kept++] = cand[d];
	if (kept)
		qsort(cand, kept, sizeof(*cand), cand_cmp);
	if (kept > k)
		kept = k;
	if (!(l = kg_entity_list_new()))
		goto oom;
	for (size_t i = 0; i < kept; i++) {
		if (!(st = stmt(sb, cn, c, ST_ENTITY_BY_ROWID, &rc)))
			goto cleanup;
		sqlite3_bind_int64(st, 1, cand[i].rowid);
		src = sqlite3_step(st);
		kg_entity *e = src == SQLITE_ROW ? row_entity(st) : NULL;
		sqlite3_reset(st);
		if (src != SQLITE_ROW) {
			rc = src == SQLITE_DONE ? kg_call_error(c, KG_EINTERNAL, "text search: an entity vanished inside a read "
			                                                          "transaction")
			                        : sq_error(sb, c, cn->db, src, "text search");
			goto cleanup;
		}
		if (!e || kg_entity_list_push_scored(l, e, cand[i].score) < 0)
			goto oom;
	}
	*out = l;
	l = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory in text search");
cleanup:
	kg_text_scorer_free(ts);
	free(cand);
	free(tkey);
	kg_entity_list_free(l);
	return rc;
}

/* One try: the search on a snapshot if the index is clean for it. */
static int fts_try(sq_backend *sb, kg_call *c, const kg_fts_query *q, const char *query, const char *entity_type,
                   size_t k, double threshold, kg_text_method method, kg_entity_list **out, int *clean)
{
	snapshot snap;
	int rc = snapshot_begin(sb, c, &snap);
	if (rc < 0)
		return rc;
	conn *cn;
	if ((rc = reader_acquire(sb, &snap.call, &cn)) == 0) {
		fts_clean(sb, &snap.call, cn, clean);
		if (*clean)
			rc = fts_search_on(sb, &snap.call, cn, q, query, entity_type, k, threshold, method, out);
		reader_release(sb, &snap.call, cn);
	}
	return snapshot_end(sb, c, &snap, rc);
}

static int sq_text_search(kg_backend *b, kg_call *c, const char *query, const char *entity_type, size_t k,
                          double threshold, kg_text_method method, kg_entity_list **out)
{
	sq_backend *sb = sb_of(b);
	pthread_mutex_lock(&sb->wlock); /* fts_off is set by the writer's holder */
	int off = sb->fts_off;
	pthread_mutex_unlock(&sb->wlock);
	/* Levenshtein scores tokens that are similar, not equal: an index of
	 * tokens cannot select its candidates, so it scans (as does a query
	 * without words, for the core's message). */
	if (method != KG_TEXT_LEVENSHTEIN && !off && !tt_on(sb, c)) {
		kg_fts_query q;
		int rc = kg_fts_query_parse(&q, query), clean = 0;
		if (rc == KG_ENOMEM) {
			kg_fts_query_free(&q);
			return kg_call_error(c, rc, "out of memory in text search");
		}
		for (int attempt = 0; rc == 0 && attempt < 2 && !clean; attempt++) {
			if (attempt && fts_sync(sb, c) < 0)
				break; /* busy, read-only, no FTS5: scan */
			rc = fts_try(sb, c, &q, query, entity_type, k, threshold, method, out, &clean);
		}
		kg_fts_query_free(&q);
		if (rc < 0 && rc != KG_EINVAL)
			return rc;
		if (clean)
			return 0;
	}
	IN_SNAPSHOT(b, c, kg_generic_text_search(b, sc, query, entity_type, k, threshold, method, out));
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */
/* ------------------------------------------------------------------ */

/* KG_CTL_SCHEMA_VERSION: kgstore_meta's record (added at open when absent). */
static int sq_control(kg_backend *b, kg_call *c, int op, void *arg)
{
	if (op != KG_CTL_SCHEMA_VERSION)
		return kg_call_error(c, KG_EUNSUPPORTED, "control opcode 0x%x is not known to the SQLite backend",
		                     (unsigned)op);
	sq_backend *sb = sb_of(b);
	conn *cn;
	int rc = reader_acquire(sb, c, &cn);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(cn->db, "SELECT value FROM kgstore_meta WHERE key = 'schema_version'", -1, &st,
	                             NULL);
	if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
		*(int *)arg = sqlite3_column_int(st, 0);
		src = SQLITE_OK;
	} else if (src == SQLITE_DONE) {
		rc = kg_call_error(c, KG_ECORRUPT, "kgstore_meta holds no schema_version: the file was changed by "
		                                   "another program; reopen it with kgstore to restore it");
	}
	if (rc == 0 && src != SQLITE_OK)
		rc = sq_error(sb, c, cn->db, src, "reading the schema version");
	sqlite3_finalize(st);
	reader_release(sb, c, cn);
	return rc;
}

static void sq_free(kg_backend *b)
{
	sq_backend *sb = sb_of(b);
	for (size_t i = 0; i < sb->n_idle; i++) {
		conn_close(sb->readers[i]);
		free(sb->readers[i]);
	}
	if (sb->writer.db) {
		/* Statistics for the planner; never on a file refused at open,
		 * which is left as it was. */
		if (!sb->in_memory && sb->base.get_entity)
			sqlite3_exec(sb->writer.db, "PRAGMA optimize", NULL, NULL, NULL);
		conn_close(&sb->writer);
	}
	pthread_mutex_destroy(&sb->wlock);
	pthread_cond_destroy(&sb->wcond);
	pthread_mutex_destroy(&sb->pool_lock);
	pthread_cond_destroy(&sb->pool_cond);
	acc_free(sb->fts_acc);
	kg_fts_text_free(&sb->fts_text);
	free(sb->path);
	free(sb->journal_mode);
	free(sb->synchronous);
	free(sb);
}

/* 1 if a table has every one of the columns (NULL-terminated list). */
static int table_has_columns(sqlite3 *db, const char *table, const char *const *cols, char *missing, size_t cap)
{
	for (size_t i = 0; cols[i]; i++) {
		int rc = sqlite3_table_column_metadata(db, NULL, table, cols[i], NULL, NULL, NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			snprintf(missing, cap, "%s.%s", table, cols[i]);
			return 0;
		}
	}
	return 1;
}

static int name_ok(const char *v)
{
	for (; *v; v++)
		if (!((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z')))
			return 0;
	return 1;
}

/* 1 if the query's first column of its first row is non-zero, 0 if not,
 * < 0 (an SQLite code, negated) if it failed. */
static int query_flag(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	int flag = src == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : -(src ? src : SQLITE_ERROR);
	sqlite3_finalize(st);
	return flag;
}

/* Resolves sb->tenant_tables (-1: not given) from the file: per-tenant
 * tables mean the per-tenant layout, unless the shared tables hold tenant
 * rows too, which is refused as ambiguous (as is asking for the per-tenant
 * layout there: those rows would disappear from view). */
static int choose_tenancy(sq_backend *sb, int shared_tables, char *err, size_t errcap)
{
	sqlite3 *db = sb->writer.db;
	int own = query_flag(db, "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
	                         "(name LIKE 'tenant\\_%\\_entities' ESCAPE '\\' OR "
	                         "name LIKE 'tenant\\_%\\_relations' ESCAPE '\\' OR "
	                         "name LIKE 'kgstore\\_tenant\\_%' ESCAPE '\\'))");
	/* The layout a kgstore opening asked for before (kgstore_meta), so that
	 * a file opened with tenancy=tables keeps it before any tenant wrote. */
	if (own == 0 && sb->tenant_tables < 0 &&
	    query_flag(db, "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'kgstore_meta')") == 1)
		own = query_flag(db, "SELECT EXISTS (SELECT 1 FROM kgstore_meta WHERE key = 'tenancy' AND "
		                     "value = 'tables')");
	int shared = 0;
	if (own >= 0 && shared_tables && (sb->tenant_tables == 1 || (sb->tenant_tables < 0 && own)))
		shared = query_flag(db, "SELECT EXISTS (SELECT 1 FROM entities WHERE tenant_id IS NOT NULL) OR "
		                        "EXISTS (SELECT 1 FROM relations WHERE tenant_id IS NOT NULL)");
	if (own < 0 || shared < 0) {
		snprintf(err, errcap, "cannot read the tables of %s (%s); it was not modified", sb->path, sqlite3_errmsg(db));
		return KG_EIO;
	}
	if (shared && sb->tenant_tables == 1) {
		snprintf(err, errcap, "%s keeps tenants' rows in the shared tables (tenant_id set), but tenancy=tables "
		         "was asked for, which would hide them; it was not modified. Open it with tenancy=shared, or "
		         "move the data with kgstore migrate into a new file opened with tenancy=tables", sb->path);
		return KG_EINVAL;
	}
	if (shared && own && sb->tenant_tables < 0) {
		snprintf(err, errcap, "%s keeps tenants both ways: rows with tenant_id in entities/relations and "
		         "per-tenant tables (tenant_<id>_entities); it was not modified. Say which to use: "
		         "?tenancy=shared or ?tenancy=tables", sb->path);
		return KG_EINVAL;
	}
	if (sb->tenant_tables < 0)
		sb->tenant_tables = own;
	return 0;
}

/* Checks an existing file before anything is written to it, then creates
 * what is missing and sets the PRAGMAs. */
static int prepare_database(sq_backend *sb, char *err, size_t errcap)
{
	sqlite3 *db = sb->writer.db;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(db, "SELECT count(*), sum(name LIKE 'kgstore_%') FROM sqlite_master "
	                                 "WHERE type = 'table' AND name IN ('entities', 'relations', 'kgstore_meta', "
	                                 "'kgstore_sources')",
	                             -1, &st, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	int own = src == SQLITE_ROW ? sqlite3_column_int(st, 1) : 0;
	int tables = src == SQLITE_ROW ? sqlite3_column_int(st, 0) - own : -1;
	sqlite3_finalize(st);
	if (tables < 0) {
		int code = (src & 0xff) == SQLITE_NOTADB || (src & 0xff) == SQLITE_CORRUPT ? KG_ECORRUPT
		         : (src & 0xff) == SQLITE_BUSY ? KG_EBUSY : KG_EIO;
		snprintf(err, errcap, "%s cannot be read as an SQLite database (%s); it was not modified. %s", sb->path,
		         sqlite3_errmsg(db),
		         code == KG_ECORRUPT ? "Is it the right file? A truncated or damaged database must be restored "
		                               "from a backup"
		                             : "Check the file and its permissions");
		return code;
	}
	if (tables > 0) {
		static const char *const ecols[] = { "id", "tenant_id", "entity_type", "properties", "embedding",
			                                 "created_at", "updated_at", NULL };
		static const char *const rcols[] = { "id", "tenant_id", "relation_type", "source_id", "target_id",
			                                 "properties", "weight", "created_at", "updated_at", NULL };
		char missing[128];
		if (tables != 2 || !table_has_columns(db, "entities", ecols, missing, sizeof(missing)) ||
		    !table_has_columns(db, "relations", rcols, missing, sizeof(missing))) {
			snprintf(err, errcap, "%s holds tables of another schema (%s is missing); it was not modified. "
			         "kgstore reads the knowledge-graph schema of the original SQLiteGraphStore: open another "
			         "file, or export the data from the program that wrote this one",
			         sb->path, tables != 2 ? "one of entities/relations" : missing);
			return KG_EINVAL;
		}
	}
	int rc = choose_tenancy(sb, tables == 2, err, errcap);
	if (rc < 0)
		return rc;
	if (sqlite3_db_readonly(db, "main") == 1) {
		snprintf(err, errcap, "%s is read-only; check its permissions (kgstore needs to write)", sb->path);
		return KG_EIO;
	}
	char sql[512];
	/* temp_store stays SQLite's default (files): an index build's sorted
	 * runs written to in-memory temp files read back 2-3x slower. */
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s; PRAGMA synchronous=%s; PRAGMA cache_size=%ld; "
	                           "PRAGMA foreign_keys=OFF;",
	         sb->in_memory ? "MEMORY" : sb->journal_mode, sb->synchronous, sb->cache_size);
	char *emsg = NULL;
	src = sqlite3_exec(db, sql, NULL, NULL, &emsg);
	/* A file kgstore has set up before needs no write, so opening it never
	 * waits for another process's write transaction. */
	int set_up = tables == 2 && own == 2;
	if (src == SQLITE_OK && !set_up)
		src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &emsg);
	if (src == SQLITE_OK && !set_up) {
		src = sqlite3_exec(db, SCHEMA_TABLES, NULL, NULL, &emsg);
		if (src == SQLITE_OK)
			src = sqlite3_exec(db, SCHEMA_OWN, NULL, NULL, &emsg);
		sqlite3_exec(db, src == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	}
	if (src != SQLITE_OK) {
		snprintf(err, errcap, "cannot set up %s: %s%s", sb->path, emsg ? emsg : sqlite3_errstr(src),
		         (src & 0xff) == SQLITE_BUSY ? "; another process holds a write lock: retry, or raise the timeout"
		                                     : "");
		sqlite3_free(emsg);
		return (src & 0xff) == SQLITE_BUSY ? KG_EBUSY : (src & 0xff) == SQLITE_READONLY ? KG_EIO : KG_EINTERNAL;
	}
	if (sb->tenant_tables) {
		/* Remembered for openings that do not say (choose_tenancy); a
		 * write only the first time, so opening does not wait for a lock. */
		if (query_flag(db, "SELECT EXISTS (SELECT 1 FROM kgstore_meta WHERE key = 'tenancy' AND "
		                   "value = 'tables')") != 1)
			src = sqlite3_exec(db, "INSERT OR REPLACE INTO kgstore_meta VALUES ('tenancy', 'tables')", NULL, NULL,
			                   &emsg);
		if (src == SQLITE_OK) /* after the PRAGMAs: setting temp_store drops temp tables */
			return conn_standins(sb, &sb->writer, err, errcap);
		snprintf(err, errcap, "cannot set up %s: %s", sb->path, emsg ? emsg : sqlite3_errstr(src));
		sqlite3_free(emsg);
		return (src & 0xff) == SQLITE_BUSY ? KG_EBUSY : KG_EIO;
	}
	return 0;
}

int kg_sqlite_backend_new(const kg_options *o, kg_backend **out, char *err, size_t errcap)
{
	*out = NULL;
	const char *path = o->path ? o->path : "knowledge_graph.db";
	const char *jm = o->journal_mode ? o->journal_mode : "WAL";
	const char *sy = o->synchronous ? o->synchronous : "NORMAL";
	if (!name_ok(jm) || !name_ok(sy)) {
		snprintf(err, errcap, "journal_mode '%s' / synchronous '%s': use SQLite's names (WAL, DELETE, NORMAL, FULL...)",
		         jm, sy);
		return KG_EINVAL;
	}
	int tenancy = !o->tenancy ? -1 : !strcmp(o->tenancy, "shared") ? 0 : !strcmp(o->tenancy, "tables") ? 1 : -2;
	if (tenancy == -2) {
		snprintf(err, errcap, "tenancy '%s': use shared (tenants' rows in entities/relations) or tables (the "
		         "original's per-tenant tables tenant_<id>_entities/_relations)", o->tenancy);
		return KG_EINVAL;
	}
	sq_backend *sb = calloc(1, sizeof(*sb));
	if (!sb) {
		snprintf(err, errcap, "out of memory opening %s", path);
		return KG_ENOMEM;
	}
	sb->tenant_tables = tenancy;
	for (int i = 0; i < ST_COUNT; i++)
		sb->tabled[i] = strchr(SQL_TABLES[i], '\001') != NULL;
	pthread_mutex_init(&sb->wlock, NULL);
	pthread_cond_init(&sb->wcond, NULL);
	pthread_mutex_init(&sb->pool_lock, NULL);
	pthread_cond_init(&sb->pool_cond, NULL);
	sb->path = strdup(path);
	sb->journal_mode = strdup(jm);
	sb->synchronous = strdup(sy);
	sb->in_memory = strcmp(path, ":memory:") == 0;
	sb->timeout = o->timeout > 0 ? o->timeout : 5.0;
	sb->cache_size = o->cache_size ? o->cache_size : -64000;
	sb->check_same_thread = o->check_same_thread;
	sb->owner = pthread_self();
	kg_backend *b = &sb->base;
	b->version = KG_BACKEND_VERSION;
	b->name = "sqlite";
	b->caps = KG_CAP_TRANSACTIONS | (sb->in_memory ? 0 : KG_CAP_PERSISTENT);
	b->control = sq_control;
	b->free = sq_free;
	int rc;
	if (!sb->path || !sb->journal_mode || !sb->synchronous) {
		snprintf(err, errcap, "out of memory opening %s", path);
		rc = KG_ENOMEM;
		goto fail;
	}
	struct stat stt;
	if (!sb->in_memory && stat(path, &stt) == 0 && S_ISREG(stt.st_mode) && access(path, W_OK) != 0) {
		snprintf(err, errcap, "%s is read-only for this user; it was not modified. Check its permissions", path);
		rc = KG_EIO;
		goto fail;
	}
	if ((rc = conn_open(sb, &sb->writer, 1, err, errcap)) < 0 || (rc = prepare_database(sb, err, errcap)) < 0)
		goto fail;
	b->add_entities = sq_add_entities;
	b->get_entity = sq_get_entity;
	b->update_entity = sq_update_entity;
	b->delete_entity = sq_delete_entity;
	b->add_relations = sq_add_relations;
	b->get_relation = sq_get_relation;
	b->update_relation = sq_update_relation;
	b->delete_relation = sq_delete_relation;
	b->relations_of = sq_relations_of;
	b->iter_entities = sq_iter_entities;
	b->iter_relations = sq_iter_relations;
	b->stats = sq_stats;
	b->clear = sq_clear;
	b->list_tenants = sq_list_tenants;
	b->txn_begin = sq_txn_begin;
	b->txn_commit = sq_txn_commit;
	b->txn_rollback = sq_txn_rollback;
	b->list_entities = sq_list_entities;
	b->neighbors = sq_neighbors;
	b->traverse = sq_traverse;
	b->find_paths = sq_find_paths;
	b->subgraph = sq_subgraph;
	b->get_entities = sq_get_entities;
	b->text_search = sq_text_search;
	*out = b;
	return 0;
fail:
	sq_free(b);
	return rc;
}
