/*
 * pool.c - a thread-safe pool of libpq connections.
 *
 * Opens min_size connections at once and grows to max_size on demand; an
 * acquire that finds every connection lent waits up to the timeout and then
 * fails with KG_EPOOL and the pool's figures. A connection whose server went
 * away (restart, crash, network) is found either before it is lent (its
 * socket turned readable while idle: the server said goodbye) or by the call
 * that hits it, which returns KG_ECONNLOST; it is then dropped, and so are
 * the idle connections opened before it (they talked to the same server),
 * and later acquires open fresh ones.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_internal.h"

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

static void conn_close(kg_pg_conn *k)
{
	if (!k)
		return;
	if (k->pg)
		PQfinish(k->pg);
	for (size_t i = 0; k->stmts && i <= k->stmt_mask; i++)
		free(k->stmts[i].sql);
	free(k->stmts);
	free(k->tenant_setting);
	free(k);
}

/* Messages from the server (NOTICE...) are not for the application's
 * stderr: kgstore reports through return codes. */
static void quiet_notices(void *arg, const PGresult *res)
{
	(void)arg;
	(void)res;
}

/* libpq's message without its trailing newline, for quoting. */
static void copy_pq_message(char *dst, size_t cap, const char *msg)
{
	snprintf(dst, cap, "%s", msg ? msg : "");
	size_t n = strlen(dst);
	while (n && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
	for (char *p = dst; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* Masks every occurrence of a password in msg with '*' (same length):
 * libpq quotes parts of a conninfo in some of its parse errors. */
static void scrub_secrets(const kg_pg_pool *p, char *msg)
{
	for (size_t i = 0; p->secrets && p->secrets[i]; i++) {
		size_t n = strlen(p->secrets[i]);
		char *hit;
		while (n && (hit = strstr(msg, p->secrets[i])) != NULL)
			memset(hit, '*', n);
	}
}

static int conn_open(kg_pg_pool *p, kg_call *c, uint64_t generation, kg_pg_conn **out)
{
	char why[512];
	kg_pg_conn *k = calloc(1, sizeof(*k));
	if (!k)
		return kg_call_error(c, KG_ENOMEM, "out of memory opening a PostgreSQL connection");
	k->pool = p;
	k->generation = generation;
	k->pg = PQconnectdbParams((const char *const *)p->keywords, (const char *const *)p->values, 1);
	if (!k->pg || PQstatus(k->pg) != CONNECTION_OK) {
		copy_pq_message(why, sizeof(why), k->pg ? PQerrorMessage(k->pg) : "out of memory");
		scrub_secrets(p, why);
		conn_close(k);
		return kg_call_error(c, KG_ECONNLOST,
		                     "cannot connect to PostgreSQL at %s: %s; check that the server is running and "
		                     "reachable and that the user, database and password are right",
		                     p->where, why);
	}
	PQsetNoticeReceiver(k->pg, quiet_notices, NULL);
	if (p->session_sql) {
		PGresult *r = PQexec(k->pg, p->session_sql);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			copy_pq_message(why, sizeof(why), PQresultErrorMessage(r));
		PQclear(r);
		if (!ok) {
			conn_close(k);
			return kg_call_error(c, KG_ECONNLOST, "PostgreSQL at %s refused the session settings (%s): %s",
			                     p->where, p->session_sql, why);
		}
	}
	*out = k;
	return 0;
}

/* An idle connection whose socket has something to read has been told
 * goodbye by its server (or closed): it must not be lent. */
static int conn_looks_alive(kg_pg_conn *k)
{
	if (PQstatus(k->pg) != CONNECTION_OK || PQtransactionStatus(k->pg) != PQTRANS_IDLE)
		return 0;
	struct pollfd pfd = { .fd = PQsocket(k->pg), .events = POLLIN };
	if (pfd.fd < 0)
		return 0;
	int n = poll(&pfd, 1, 0);
	return n == 0;
}

/* ------------------------------------------------------------------ */
/* The pool                                                             */
/* ------------------------------------------------------------------ */

static char **dup_strv(const char *const *v, int n)
{
	char **out = calloc((size_t)n + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (int i = 0; i < n; i++) {
		if (!(out[i] = strdup(v[i]))) {
			for (int j = 0; j < i; j++)
				free(out[j]);
			free(out);
			return NULL;
		}
	}
	return out;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void pool_destroy(kg_pg_pool *p)
{
	while (p->idle) {
		kg_pg_conn *k = p->idle;
		p->idle = k->next;
		conn_close(k);
	}
	free_strv(p->keywords);
	free_strv(p->values);
	free_strv(p->secrets);
	free(p->where);
	free(p->session_sql);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int pg_pool_create(const char *const *keywords, const char *const *values, const pg_pool_config *cfg,
                   kg_pg_pool **out, char *err, size_t errcap)
{
	int n = 0, rc = 0;
	while (keywords[n])
		n++;
	kg_pg_pool *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errcap, "out of memory making a PostgreSQL pool");
		return KG_ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->min_size = cfg->min_size;
	p->max_size = cfg->max_size;
	p->timeout = cfg->timeout;
	p->refs = 1;
	p->keywords = dup_strv(keywords, n);
	p->values = dup_strv(values, n);
	p->secrets = pg_secrets(keywords, values);
	p->where = pg_describe(keywords, values);
	if (p->where && p->secrets)
		scrub_secrets(p, p->where);
	if (cfg->statement_timeout > 0) {
		char sql[96];
		snprintf(sql, sizeof(sql), "SET statement_timeout = %.0f", cfg->statement_timeout * 1000.0);
		p->session_sql = strdup(sql);
	}
	if (!p->keywords || !p->values || !p->where || !p->secrets || (cfg->statement_timeout > 0 && !p->session_sql)) {
		snprintf(err, errcap, "out of memory making a PostgreSQL pool");
		rc = KG_ENOMEM;
		goto fail;
	}
	/* The first connections now, so a wrong address fails the open. */
	char msg[1024] = "";
	kg_call c = { .msg = msg, .msgcap = sizeof(msg) };
	for (int i = 0; i < p->min_size; i++) {
		kg_pg_conn *k = NULL;
		if ((rc = conn_open(p, &c, 0, &k)) < 0) {
			snprintf(err, errcap, "%s", msg);
			goto fail;
		}
		k->next = p->idle;
		p->idle = k;
		p->n_idle++;
		p->size++;
	}
	*out = p;
	return 0;
fail:
	pool_destroy(p);
	return rc;
}

void pg_pool_ref(kg_pg_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->refs++;
	pthread_mutex_unlock(&p->mu);
}

void pg_pool_unref(kg_pg_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	int last = --p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (last)
		pool_destroy(p);
}

static void close_list(kg_pg_conn *k)
{
	while (k) {
		kg_pg_conn *next = k->next;
		conn_close(k);
		k = next;
	}
}

int pg_pool_acquire(kg_pg_pool *p, kg_call *c, kg_pg_conn **out)
{
	struct timespec deadline;
	int have_deadline = 0, rc = 0;
	kg_pg_conn *drop = NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->idle) {
			kg_pg_conn *k = p->idle;
			p->idle = k->next;
			p->n_idle--;
			if (k->generation == p->generation && conn_looks_alive(k)) {
				p->in_use++;
				p->acquired++;
				pthread_mutex_unlock(&p->mu);
				close_list(drop);
				k->next = NULL;
				*out = k;
				return 0;
			}
			p->size--;
			p->replaced++;
			k->next = drop;
			drop = k;
		}
		if (p->size < p->max_size) {
			uint64_t gen = p->generation;
			p->size++;
			p->in_use++;
			pthread_mutex_unlock(&p->mu);
			close_list(drop);
			kg_pg_conn *k = NULL;
			rc = conn_open(p, c, gen, &k);
			pthread_mutex_lock(&p->mu);
			if (rc < 0) {
				p->size--;
				p->in_use--;
				pthread_cond_signal(&p->cv);
			} else {
				p->acquired++;
				*out = k;
			}
			pthread_mutex_unlock(&p->mu);
			return rc;
		}
		if (!have_deadline) {
			clock_gettime(CLOCK_MONOTONIC, &deadline);
			double whole = (double)(time_t)p->timeout;
			deadline.tv_sec += (time_t)p->timeout;
			deadline.tv_nsec += (long)((p->timeout - whole) * 1e9);
			if (deadline.tv_nsec >= 1000000000L) {
				deadline.tv_sec++;
				deadline.tv_nsec -= 1000000000L;
			}
			have_deadline = 1;
		}
		p->waiting++;
		int w = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
		p->waiting--;
		if (w == ETIMEDOUT && !p->idle && p->size >= p->max_size) {
			p->timeouts++;
			int size = p->size, in_use = p->in_use, waiting = p->waiting + 1, max = p->max_size;
			pthread_mutex_unlock(&p->mu);
			close_list(drop);
			return kg_call_error(c, KG_EPOOL,
			                     "PostgreSQL connection pool exhausted: waited %.3g s for a connection to %s "
			                     "(pool size %d, max_pool_size %d, in use %d, waiting %d); increase "
			                     "max_pool_size or pool_timeout, or reduce concurrent requests (close "
			                     "transactions and iterators sooner)",
			                     p->timeout, p->where, size, max, in_use, waiting);
		}
	}
}

void pg_pool_release(kg_pg_conn *k)
{
	if (!k)
		return;
	kg_pg_pool *p = k->pool;
	int keep = !k->broken && PQstatus(k->pg) == CONNECTION_OK && PQtransactionStatus(k->pg) == PQTRANS_IDLE;
	pthread_mutex_lock(&p->mu);
	p->in_use--;
	if (k->broken || PQstatus(k->pg) != CONNECTION_OK) {
		/* Its siblings talked to the same server: test them anew. */
		if (k->generation == p->generation)
			p->generation++;
		p->replaced++;
	}
	if (keep && k->generation == p->generation) {
		k->next = p->idle;
		p->idle = k;
		p->n_idle++;
		k = NULL;
	} else {
		p->size--;
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	conn_close(k);
}

/* ------------------------------------------------------------------ */
/* Public pool API                                                      */
/* ------------------------------------------------------------------ */

int kg_pg_pool_new(const kg_options *o, kg_pg_pool **out, char *err, size_t errcap)
{
	pg_conn_spec spec;
	if (!o || !out) {
		snprintf(err, errcap, "kg_pg_pool_new: options and out must not be NULL");
		return KG_EINVAL;
	}
	*out = NULL;
	if (err && errcap)
		err[0] = '\0';
	int rc = pg_spec_from_options(o, &spec, err, errcap);
	if (rc < 0)
		return rc;
	pg_pool_config cfg = { spec.min_size, spec.max_size, spec.pool_timeout, spec.statement_timeout };
	rc = pg_pool_create((const char *const *)spec.kw, (const char *const *)spec.val, &cfg, out, err, errcap);
	pg_spec_free(&spec);
	return rc;
}

void kg_pg_pool_free(kg_pg_pool *p) { pg_pool_unref(p); }

int kg_pg_pool_get_stats(kg_pg_pool *p, kg_pg_pool_stats *out)
{
	if (!p || !out)
		return KG_EINVAL;
	pthread_mutex_lock(&p->mu);
	*out = (kg_pg_pool_stats){
		.size = p->size, .in_use = p->in_use, .idle = p->n_idle, .waiting = p->waiting,
		.min_size = p->min_size, .max_size = p->max_size, .timeout = p->timeout,
		.acquired = p->acquired, .timeouts = p->timeouts, .replaced = p->replaced,
	};
	pthread_mutex_unlock(&p->mu);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Statements                                                           */
/* ------------------------------------------------------------------ */

/* Statements kept prepared per connection. */
#define PG_MAX_PREPARED 1024

/* The name of the statement prepared for `sql` on this connection, or
 * NULL if it is not prepared yet (then *slot is where it goes). */
static pg_stmt *stmt_find(kg_pg_conn *k, const char *sql, uint64_t h)
{
	if (!k->stmts)
		return NULL;
	for (size_t i = h & k->stmt_mask;; i = (i + 1) & k->stmt_mask) {
		pg_stmt *s = &k->stmts[i];
		if (!s->sql)
			return s;
		if (s->hash == h && !strcmp(s->sql, sql))
			return s;
	}
}

static int stmt_grow(kg_pg_conn *k)
{
	size_t cap = k->stmts ? (k->stmt_mask + 1) * 2 : 64;
	pg_stmt *ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return KG_ENOMEM;
	for (size_t i = 0; k->stmts && i <= k->stmt_mask; i++) {
		if (!k->stmts[i].sql)
			continue;
		size_t j = k->stmts[i].hash & (cap - 1);
		while (ns[j].sql)
			j = (j + 1) & (cap - 1);
		ns[j] = k->stmts[i];
	}
	free(k->stmts);
	k->stmts = ns;
	k->stmt_mask = cap - 1;
	return 0;
}

/* Sqlstate classes that mean the server or the link is gone. */
static int sqlstate_connection_lost(const char *st)
{
	return st && (!strncmp(st, "08", 2) || !strcmp(st, "57P01") || !strcmp(st, "57P02") || !strcmp(st, "57P03"));
}

int pg_result_error(kg_pg_conn *k, kg_call *c, const PGresult *res, const char *what)
{
	char msg[768];
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	copy_pq_message(msg, sizeof(msg), primary ? primary : res ? PQresultErrorMessage(res) : PQerrorMessage(k->pg));
	if (!msg[0])
		copy_pq_message(msg, sizeof(msg), PQerrorMessage(k->pg));
	if (PQstatus(k->pg) != CONNECTION_OK || sqlstate_connection_lost(st)) {
		k->broken = 1;
		return kg_call_error(c, KG_ECONNLOST,
		                     "%s: the connection to PostgreSQL at %s was lost (%s); the pool will reconnect: "
		                     "retry the call once the server is back",
		                     what, k->pool->where, msg);
	}
	int code = KG_EINTERNAL;
	const char *hint = "this is unexpected: report it with the message";
	if (st) {
		if (!strcmp(st, "23505")) {
			code = KG_EEXISTS;
			hint = "the id is already used";
		} else if (!strcmp(st, "23503")) {
			code = KG_ENOTFOUND;
			hint = "an endpoint entity does not exist (or was deleted meanwhile)";
		} else if (!strcmp(st, "57014")) {
			code = KG_EBUSY;
			hint = "the statement ran past statement_timeout or was cancelled; raise statement_timeout or retry";
		} else if (!strcmp(st, "40001") || !strcmp(st, "40P01") || !strcmp(st, "55P03")) {
			code = KG_EBUSY;
			hint = "another transaction held a lock it needed; retry";
		} else if (!strncmp(st, "22", 2)) {
			code = KG_EINVAL;
			hint = "the server refused a value";
		} else if (!strcmp(st, "42501")) {
			code = KG_EINVAL;
			hint = "the PostgreSQL role lacks a privilege; grant it or connect as the tables' owner";
		} else if (!strncmp(st, "53", 2)) {
			code = KG_EIO;
			hint = "the server is out of a resource (disk, memory, connections); free some and retry";
		} else if (!strcmp(st, "25P02")) {
			code = KG_EINVAL;
			hint = "an earlier statement of the transaction failed; roll it back";
		}
	}
	return kg_call_error(c, code, "%s: PostgreSQL said: %s%s%s [%s] (%s)", what, msg, detail ? " - " : "",
	                     detail ? detail : "", st ? st : "no sqlstate", hint);
}

const char *pg_prepared(kg_pg_conn *k, kg_call *c, const char *sql, int nparams, int *rc, const char *what)
{
	uint64_t h = kg_hash_str(sql);
	pg_stmt *s = stmt_find(k, sql, h);
	*rc = 0;
	if (s && s->sql)
		return s->name;
	if (k->n_stmts >= PG_MAX_PREPARED)
		return ""; /* many tenants' schemas: past the cap, plan each time */
	if (k->n_stmts * 2 >= (k->stmts ? k->stmt_mask + 1 : 0) && stmt_grow(k) < 0) {
		*rc = kg_call_error(c, KG_ENOMEM, "%s: out of memory", what);
		return NULL;
	}
	s = stmt_find(k, sql, h);
	char name[24];
	snprintf(name, sizeof(name), "kg%u", k->next_stmt++);
	PGresult *pr = PQprepare(k->pg, name, sql, nparams, NULL);
	if (PQresultStatus(pr) != PGRES_COMMAND_OK) {
		*rc = pg_result_error(k, c, pr, what);
		PQclear(pr);
		return NULL;
	}
	PQclear(pr);
	if (!(s->sql = strdup(sql))) {
		*rc = kg_call_error(c, KG_ENOMEM, "%s: out of memory", what);
		return NULL;
	}
	s->hash = h;
	memcpy(s->name, name, sizeof(name));
	k->n_stmts++;
	return s->name;
}

PGresult *pg_exec(kg_pg_conn *k, kg_call *c, const char *sql, const pg_params *p, int *rc, const char *what)
{
	static const pg_params none = { 0 };
	if (!p)
		p = &none;
	const char *name = pg_prepared(k, c, sql, p->n, rc, what);
	if (!name)
		return NULL;
	PGresult *res = *name ? PQexecPrepared(k->pg, name, p->n, p->v, p->len, p->fmt, 1)
	                      : PQexecParams(k->pg, sql, p->n, NULL, p->v, p->len, p->fmt, 1);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		*rc = 0;
		return res;
	}
	*rc = pg_result_error(k, c, res, what);
	PQclear(res);
	return NULL;
}

int pg_exec_simple(kg_pg_conn *k, kg_call *c, const char *sql, const char *what)
{
	PGresult *res = PQexec(k->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = pg_result_error(k, c, res, what);
	PQclear(res);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Parameters and values (binary wire formats)                          */
/* ------------------------------------------------------------------ */

static void put_be64(char *dst, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		dst[i] = (char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t get_be64(const char *src)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char)src[i];
	return v;
}

static uint32_t get_be32(const char *src)
{
	return ((uint32_t)(unsigned char)src[0] << 24) | ((uint32_t)(unsigned char)src[1] << 16) |
	       ((uint32_t)(unsigned char)src[2] << 8) | (unsigned char)src[3];
}

void pg_param_text(pg_params *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

void pg_param_bytes(pg_params *p, const void *data, int len)
{
	p->v[p->n] = data;
	p->len[p->n] = len;
	p->fmt[p->n] = 1;
	p->n++;
}

void pg_param_int8(pg_params *p, int64_t v)
{
	put_be64(p->buf[p->n], (uint64_t)v);
	pg_param_bytes(p, p->buf[p->n], 8);
}

void pg_param_int4(pg_params *p, int32_t v)
{
	uint32_t x = (uint32_t)v;
	for (int i = 3; i >= 0; i--, x >>= 8)
		p->buf[p->n][i] = (char)(x & 0xff);
	pg_param_bytes(p, p->buf[p->n], 4);
}

void pg_param_float8(pg_params *p, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, 8);
	put_be64(p->buf[p->n], bits);
	pg_param_bytes(p, p->buf[p->n], 8);
}

void pg_param_time(pg_params *p, int64_t us) { pg_param_int8(p, us - PG_EPOCH_OFFSET_US); }

int64_t pg_get_int8(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	const char *v = PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);
	if (len == 4)
		return (int32_t)get_be32(v);
	return len == 8 ? (int64_t)get_be64(v) : 0;
}

int32_t pg_get_int4(const PGresult *r, int row, int col) { return (int32_t)pg_get_int8(r, row, col); }

double pg_get_float8(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	const char *v = PQgetvalue(r, row, col);
	if (PQgetlength(r, row, col) == 4) {
		uint32_t x = get_be32(v);
		float f;
		memcpy(&f, &x, 4);
		return f;
	}
	uint64_t bits = get_be64(v);
	double d;
	memcpy(&d, &bits, 8);
	return d;
}

int pg_get_bool(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] != 0;
}

int64_t pg_get_time(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	int64_t v = pg_get_int8(r, row, col);
	/* ±infinity are the extremes of int64: keep them there. */
	if (v == INT64_MAX || v == INT64_MIN)
		return v;
	return v + PG_EPOCH_OFFSET_US;
}

const char *pg_get_text(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

const char *pg_get_jsonb(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	const char *v = PQgetvalue(r, row, col);
	/* jsonb's binary form is a version byte (1) then the text; json and
	 * text columns come as the text itself. */
	Oid t = PQftype(r, col);
	return t == 3802 && v[0] == 1 ? v + 1 : v;
}
