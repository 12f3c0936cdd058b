/*
 * raw_postgres.c - the PostgreSQL jobs done bare with libpq, the yardstick
 * for the PostgreSQL backend: tables of the same definition as kgstore's
 * (the original's columns, indexes and GIN indexes, plus kgstore's `source`
 * and `seq`) in a schema of their own (kg_raw), loaded by a plain text
 * COPY; a prepared primary-key SELECT one at a time and pipelined (libpq
 * pipeline mode); a recursive CTE for paths. A reader is its own
 * connection. --pin puts the server's processes on the client's CPU.
 */
#ifdef KG_HAVE_POSTGRES
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "bench_internal.h"

#define RAW_SCHEMA "kg_raw"
#define TE RAW_SCHEMA ".graph_entities"
#define TR RAW_SCHEMA ".graph_relations"

static const char *const SETUP[] = {
	"SET client_min_messages = warning",
	"DROP SCHEMA IF EXISTS " RAW_SCHEMA " CASCADE",
	"CREATE SCHEMA " RAW_SCHEMA,
	"CREATE TABLE " TE " (id TEXT NOT NULL, tenant_id TEXT NOT NULL DEFAULT '', entity_type TEXT NOT NULL,"
	" properties JSONB NOT NULL DEFAULT '{}', embedding BYTEA, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, source TEXT, seq BIGSERIAL, PRIMARY KEY (id, tenant_id))",
	"CREATE TABLE " TR " (id TEXT NOT NULL, tenant_id TEXT NOT NULL DEFAULT '', relation_type TEXT NOT NULL,"
	" source_id TEXT NOT NULL, target_id TEXT NOT NULL, properties JSONB NOT NULL DEFAULT '{}',"
	" weight DOUBLE PRECISION DEFAULT 1.0, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, source TEXT, seq BIGSERIAL, PRIMARY KEY (id, tenant_id))",
	"CREATE INDEX ON " TE " (entity_type)",
	"CREATE INDEX ON " TE " (tenant_id)",
	"CREATE INDEX ON " TE " (tenant_id, entity_type)",
	"CREATE INDEX ON " TE " USING GIN (properties)",
	"CREATE INDEX ON " TE " (tenant_id, seq)",
	"CREATE INDEX ON " TR " (relation_type)",
	"CREATE INDEX ON " TR " (source_id)",
	"CREATE INDEX ON " TR " (target_id)",
	"CREATE INDEX ON " TR " (tenant_id, source_id)",
	"CREATE INDEX ON " TR " (tenant_id, target_id)",
	"CREATE INDEX ON " TR " USING GIN (properties)",
	"CREATE INDEX ON " TR " (tenant_id, seq)",
};

static const char SQL_INS[] = "INSERT INTO " TE " (tenant_id, id, entity_type, properties, embedding, created_at,"
                              " updated_at) VALUES ('', $1, $2, $3::jsonb, $4::bytea, $5::timestamp, $5::timestamp)";
static const char SQL_GET[] = "SELECT id, tenant_id, entity_type, properties, embedding, created_at, updated_at,"
                              " source FROM " TE " WHERE tenant_id = '' AND id = $1";
static const char SQL_NEIGHBORS[] =
	"SELECT e.id, e.entity_type, e.properties, e.embedding, e.created_at, e.updated_at FROM " TE " e"
	" WHERE e.tenant_id = '' AND e.id IN (SELECT target_id FROM " TR " WHERE tenant_id = '' AND source_id = $1)";
static const char SQL_PATHS[] =
	"WITH RECURSIVE p(node, nodes, edges, depth) AS ("
	" SELECT $1::text, ARRAY[$1::text], ARRAY[]::text[], 0"
	" UNION ALL"
	" SELECT r.target_id, p.nodes || r.target_id, p.edges || r.id, p.depth + 1"
	" FROM p JOIN " TR " r ON r.tenant_id = '' AND r.source_id = p.node"
	" WHERE p.depth < 5 AND p.node <> $2::text AND r.target_id <> ALL (p.nodes))"
	" SELECT nodes, edges FROM p WHERE node = $2::text ORDER BY depth LIMIT 10";
static const char SQL_VECTORS[] = "SELECT embedding FROM " TE " WHERE tenant_id = '' AND embedding IS NOT NULL";

typedef struct pdb {
	char *conninfo;
	PGconn *c;
	char now[32];
} pdb;

typedef struct preader {
	PGconn *c;
	float *buf;
} preader;

static int pfail(PGconn *c, const char *what)
{
	bench_raw_fail("raw postgres: %s: %s", what, c ? PQerrorMessage(c) : "out of memory");
	return -1;
}

/* The URI without kgstore's own parameters, which libpq would refuse. */
static char *libpq_uri(const char *uri)
{
	static const char *const own[] = { "tenancy",       "schema",        "statement_timeout", "read_host",
		                           "read_port",     "min_pool_size", "max_pool_size",     "pool_timeout",
		                           "enable_pgvector", "pgvector_fallback", "read_your_writes", "ssl" };
	char *out = malloc(strlen(uri) + 1);
	if (!out)
		return NULL;
	const char *q = strchr(uri, '?');
	if (!q || strncmp(uri, "postgres", 8)) {
		strcpy(out, uri);
		return out;
	}
	size_t o = (size_t)(q - uri);
	memcpy(out, uri, o);
	char sep = '?';
	for (const char *p = q + 1; *p;) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		size_t klen = strcspn(p, "=&");
		int skip = 0;
		for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
			skip |= strlen(own[i]) == klen && !strncmp(own[i], p, klen);
		if (!skip && len) {
			out[o++] = sep;
			memcpy(out + o, p, len);
			o += len;
			sep = '&';
		}
		p += len + (end ? 1 : 0);
	}
	out[o] = '\0';
	return out;
}

static PGconn *connect_to(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		pfail(c, "connect");
		PQfinish(c);
		return NULL;
	}
	return c;
}

static int exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		bench_raw_fail("raw postgres: %.80s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

static int prepare(PGconn *c, const char *name, const char *sql)
{
	PGresult *r = PQprepare(c, name, sql, 0, NULL);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok ? 0 : pfail(c, name);
}

static void pg_close(void *p)
{
	pdb *d = p;
	if (!d)
		return;
	if (d->c)
		exec_ok(d->c, "DROP SCHEMA IF EXISTS " RAW_SCHEMA " CASCADE");
	PQfinish(d->c);
	free(d->conninfo);
	free(d);
}

static void *pg_open(const bench_cfg *cfg)
{
	const char *uri = cfg->uri ? cfg->uri : getenv("KG_BENCH_PG_URI");
	if (!uri) {
		bench_raw_fail("raw postgres: no server given: pass --uri postgresql://... or set KG_BENCH_PG_URI");
		return NULL;
	}
	pdb *d = calloc(1, sizeof(*d));
	if (!d || !(d->conninfo = libpq_uri(uri))) {
		free(d);
		bench_raw_fail("raw postgres: out of memory");
		return NULL;
	}
	kg_format_time(kg_now_us(), d->now);
	if (!(d->c = connect_to(d->conninfo)))
		goto fail;
	for (size_t i = 0; i < sizeof(SETUP) / sizeof(SETUP[0]); i++)
		if (exec_ok(d->c, SETUP[i]) < 0)
			goto fail;
	if (prepare(d->c, "ins", SQL_INS) < 0)
		goto fail;
	return d;
fail:
	pg_close(d);
	return NULL;
}

static int pg_add_one(void *p, const kg_entity *e)
{
	pdb *d = p;
	const char *v[5] = { e->id, e->entity_type, e->properties ? e->properties : "{}", NULL, d->now };
	int len[5] = { 0 }, fmt[5] = { 0 };
	if (e->embedding) {
		v[3] = (const char *)e->embedding;
		len[3] = (int)(e->embedding_dim * sizeof(float));
		fmt[3] = 1;
	}
	PGresult *r = PQexecPrepared(d->c, "ins", 5, v, len, fmt, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok ? 0 : pfail(d->c, "insert");
}

/* COPY text-format writer: a growing buffer flushed in ~1 MB pieces. */
typedef struct cbuf {
	PGconn *c;
	char *b;
	size_t len, cap;
	int err;
} cbuf;

static void cflush(cbuf *w)
{
	if (w->len && !w->err && PQputCopyData(w->c, w->b, (int)w->len) != 1)
		w->err = 1;
	w->len = 0;
}

static void cput(cbuf *w, const char *s, size_t n)
{
	if (w->len + n > w->cap) {
		cflush(w);
		if (n > w->cap) {
			char *nb = realloc(w->b, n);
			if (!nb) {
				w->err = 1;
				return;
			}
			w->b = nb;
			w->cap = n;
		}
	}
	memcpy(w->b + w->len, s, n);
	w->len += n;
}

/* A text field, escaped as COPY's text format wants. */
static void cfield(cbuf *w, const char *s, int last)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : NULL;
		if (esc) {
			cput(w, run, (size_t)(s - run));
			cput(w, esc, 2);
			run = s + 1;
		}
	}
	cput(w, run, (size_t)(s - run));
	cput(w, last ? "\n" : "\t", 1);
}

static int copy_rows(pdb *d, const char *sql, const void *rows, size_t n, int relations)
{
	cbuf w = { .c = d->c, .cap = 1 << 20 };
	char num[64];
	if (!(w.b = malloc(w.cap)))
		return pfail(NULL, "copy");
	if (exec_ok(d->c, "BEGIN") < 0) {
		free(w.b);
		return -1;
	}
	PGresult *r = PQexec(d->c, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		PQclear(r);
		free(w.b);
		pfail(d->c, "copy");
		exec_ok(d->c, "ROLLBACK");
		return -1;
	}
	PQclear(r);
	for (size_t i = 0; i < n && !w.err; i++) {
		cput(&w, "\t", 1); /* tenant_id '' */
		if (relations) {
			const kg_relation *x = (const kg_relation *)rows + i;
			cfield(&w, x->id, 0);
			cfield(&w, x->relation_type, 0);
			cfield(&w, x->source_id, 0);
			cfield(&w, x->target_id, 0);
			cfield(&w, x->properties ? x->properties : "{}", 0);
			snprintf(num, sizeof(num), "%.17g", x->weight);
			cfield(&w, num, 0);
		} else {
			const kg_entity *x = (const kg_entity *)rows + i;
			cfield(&w, x->id, 0);
			cfield(&w, x->entity_type, 0);
			cfield(&w, x->properties ? x->properties : "{}", 0);
			if (x->embedding) {
				static const char hex[] = "0123456789abcdef";
				const unsigned char *b = (const unsigned char *)x->embedding;
				cput(&w, "\\\\x", 3);
				for (size_t k = 0; k < x->embedding_dim * sizeof(float); k++) {
					char h[2] = { hex[b[k] >> 4], hex[b[k] & 15] };
					cput(&w, h, 2);
				}
				cput(&w, "\t", 1);
			} else {
				cput(&w, "\\N\t", 3);
			}
		}
		cfield(&w, d->now, 0);
		cfield(&w, d->now, 1);
	}
	cflush(&w);
	free(w.b);
	if (PQputCopyEnd(d->c, w.err ? "client error" : NULL) != 1)
		w.err = 1;
	r = PQgetResult(d->c);
	int ok = !w.err && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		pfail(d->c, "copy");
	PQclear(r);
	while ((r = PQgetResult(d->c)))
		PQclear(r);
	if (!ok) {
		exec_ok(d->c, "ROLLBACK");
		return -1;
	}
	return exec_ok(d->c, "COMMIT");
}

static int pg_load_entities(void *p, const kg_entity *e, size_t n)
{
	return copy_rows(p,
	                 "COPY " TE " (tenant_id, id, entity_type, properties, embedding, created_at, updated_at)"
	                 " FROM STDIN",
	                 e, n, 0);
}

static int pg_load_relations(void *p, const kg_relation *r, size_t m)
{
	return copy_rows(p,
	                 "COPY " TR " (tenant_id, id, relation_type, source_id, target_id, properties, weight,"
	                 " created_at, updated_at) FROM STDIN",
	                 r, m, 1);
}

static void pg_reader_close(void *p)
{
	preader *r = p;
	if (!r)
		return;
	PQfinish(r->c);
	free(r->buf);
	free(r);
}

static void *pg_reader(void *p)
{
	pdb *d = p;
	preader *r = calloc(1, sizeof(*r));
	if (!r) {
		bench_raw_fail("raw postgres: out of memory");
		return NULL;
	}
	if (!(r->c = connect_to(d->conninfo)) || prepare(r->c, "get", SQL_GET) < 0 ||
	    prepare(r->c, "nb", SQL_NEIGHBORS) < 0 || prepare(r->c, "paths", SQL_PATHS) < 0) {
		pg_reader_close(r);
		return NULL;
	}
	return r;
}

/* Reads every value of a result, as a caller would. */
static int consume(PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res);
	size_t sum = 0;
	for (int i = 0; i < rows; i++)
		for (int c = 0; c < cols; c++)
			sum += (size_t)PQgetlength(res, i, c) + (PQgetvalue(res, i, c)[0] != 0);
	(void)sum;
	return rows;
}

static int run_prepared(preader *r, const char *name, int nparams, const char *const *v, const char *what)
{
	PGresult *res = PQexecPrepared(r->c, name, nparams, v, NULL, NULL, 0);
	int rows = PQresultStatus(res) == PGRES_TUPLES_OK ? consume(res) : pfail(r->c, what);
	PQclear(res);
	return rows;
}

static int pg_get(void *p, const char *id)
{
	return run_prepared(p, "get", 1, &id, "get");
}

/* The same SELECTs sent in one pipeline, one sync, read back in order. */
static int pg_get_batch(void *p, const char *const *ids, size_t n)
{
	preader *r = p;
	int found = 0, err = 0;
	if (PQenterPipelineMode(r->c) != 1)
		return pfail(r->c, "pipeline mode");
	for (size_t i = 0; i < n && !err; i++)
		if (PQsendQueryPrepared(r->c, "get", 1, &ids[i], NULL, NULL, 0) != 1)
			err = pfail(r->c, "pipelined get");
	if (PQpipelineSync(r->c) != 1) {
		pfail(r->c, "pipeline sync");
		PQexitPipelineMode(r->c);
		return -1;
	}
	for (int nulls = 0;;) {
		PGresult *res = PQgetResult(r->c);
		if (!res) { /* end of one query's results; many in a row: the connection broke */
			if (++nulls > 2) {
				err = pfail(r->c, "pipelined get");
				break;
			}
			continue;
		}
		nulls = 0;
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (st == PGRES_TUPLES_OK)
			found += consume(res);
		else if (!err)
			err = pfail(r->c, "pipelined get");
		PQclear(res);
	}
	if (PQexitPipelineMode(r->c) != 1 && !err)
		err = pfail(r->c, "leaving pipeline mode");
	return err ? -1 : found;
}

static int pg_neighbors(void *p, const char *id)
{
	return run_prepared(p, "nb", 1, &id, "neighbors");
}

static int pg_paths(void *p, const char *src, const char *dst)
{
	const char *v[2] = { src, dst };
	return run_prepared(p, "paths", 2, v, "paths");
}

/* Brute force in the client over the bytea rows (binary results). */
static int pg_vector(void *p, const float *q, size_t dim, size_t k)
{
	preader *r = p;
	uint32_t top[BENCH_VEC_K + 1];
	float score[BENCH_VEC_K + 1];
	size_t have = 0;
	if (k > BENCH_VEC_K)
		k = BENCH_VEC_K;
	free(r->buf);
	if (!(r->buf = malloc(dim * sizeof(float))))
		return pfail(NULL, "vector");
	PGresult *res = PQexecParams(r->c, SQL_VECTORS, 0, NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return pfail(r->c, "vector scan");
	}
	for (int i = 0; i < PQntuples(res); i++) {
		if ((size_t)PQgetlength(res, i, 0) != dim * sizeof(float))
			continue;
		memcpy(r->buf, PQgetvalue(res, i, 0), dim * sizeof(float));
		float s;
		uint32_t idx;
		if (bench_cosine_topk(r->buf, NULL, 1, dim, q, 1, &idx, &s) && !(have == k && s <= score[k - 1])) {
			size_t j = have < k ? have++ : k - 1;
			while (j > 0 && score[j - 1] < s) {
				score[j] = score[j - 1];
				top[j] = top[j - 1];
				j--;
			}
			score[j] = s;
			top[j] = (uint32_t)i;
		}
	}
	PQclear(res);
	return (int)have;
}

/* Sets the CPU affinity of one process; 0 or -1. */
static int pin_pid(pid_t pid, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (cpu >= 0)
		CPU_SET(cpu, &set);
	else /* every CPU: the placement left to the scheduler again */
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	return sched_setaffinity(pid, sizeof(set), &set);
}

int bench_pg_pin_server(const char *uri, int cpu)
{
	char *ci = libpq_uri(uri);
	PGconn *c = ci ? connect_to(ci) : NULL;
	int rc = -1;
	free(ci);
	if (!c)
		return -1;
	/* The postmaster is the parent of this connection's backend. */
	PGresult *res = PQexec(c, "SELECT pg_backend_pid()");
	pid_t postmaster = 0;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		char path[64], line[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", PQgetvalue(res, 0, 0));
		FILE *f = fopen(path, "r");
		if (f && fgets(line, sizeof(line), f)) {
			char *close_paren = strrchr(line, ')');
			int ppid = 0;
			if (close_paren && sscanf(close_paren + 2, "%*c %d", &ppid) == 1)
				postmaster = ppid;
		}
		if (f)
			fclose(f);
	}
	PQclear(res);
	if (postmaster <= 1) {
		bench_raw_fail("raw postgres: --pin: cannot find the server's processes (the server must run on this "
		               "machine)");
		goto done;
	}
	if (pin_pid(postmaster, cpu) < 0) {
		bench_raw_fail("raw postgres: --pin: cannot set the CPU of the server (pid %d): run as its owner or root",
		               (int)postmaster);
		goto done;
	}
	res = PQexec(c, "SELECT pid FROM pg_stat_activity");
	for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		pin_pid((pid_t)atoi(PQgetvalue(res, i, 0)), cpu); /* processes gone meanwhile are fine */
	PQclear(res);
	rc = 0;
done:
	PQfinish(c);
	return rc;
}

const raw_engine bench_raw_postgres = {
	.backend = "postgres",
	.open = pg_open,
	.close = pg_close,
	.add_one = pg_add_one,
	.load_entities = pg_load_entities,
	.load_relations = pg_load_relations,
	.reader = pg_reader,
	.reader_close = pg_reader_close,
	.get = pg_get,
	.get_batch = pg_get_batch,
	.neighbors = pg_neighbors,
	.paths = pg_paths,
	.vector = pg_vector,
};
#else
typedef int kg_bench_raw_postgres_unused; /* ISO C wants a declaration */
#endif
