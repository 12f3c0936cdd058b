/*
 * unit_degrade.c - the graceful-degradation wrapper over a fault-injecting
 * primary: a real store (memory: or an SQLite file) behind a backend that
 * fails the next N calls with a chosen code, is "down", hangs a call until
 * released, applies a write and then reports the connection lost, or
 * SIGKILLs its process after N writes (crash during replay).
 *
 * Covers: switching after max_failures consecutive connection failures
 * (and not before, and not on request errors); reads flagged degraded;
 * writes journaled and replayed in order; conflicts resolved and reported
 * under both policies; a write the primary took before its connection
 * broke recognised on replay; crashes while degraded and during replay
 * (fork + SIGKILL, then reopen); a hung primary call blocking no one else;
 * FAILED without a fallback; torn journal tails; bad options.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kgstore.h"
#include "kgstore/backend.h"
#include "kgstore/degrade.h"

/* ------------------------------------------------------------------ */
/* The fault-injecting primary                                          */
/* ------------------------------------------------------------------ */

#define LOG_MAX 512

typedef struct ctl {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int down;            /* every call: KG_ECONNLOST */
	int connect_down;    /* opening the primary: KG_ECONNLOST */
	int fail_n;          /* the next fail_n calls fail with fail_code */
	int fail_code;
	int apply_then_fail; /* the next write is applied, then reported lost */
	int hang;            /* the next call blocks until release */
	int vanish;          /* the next relation update finds it deleted by another client */
	int hanging, release;
	long kill_after_adds; /* > 0: SIGKILL this process at that many adds */
	long adds;
	long calls;          /* calls that reached the real store */
	char log[LOG_MAX][48];
	int nlog;
	char uri[512];
	kg_store *inner;     /* the real store (owned by the fake) */
} ctl;

typedef struct fake {
	kg_backend base;
	ctl *k;
	kg_store *inner;
	kg_backend *ib;
} fake;

static void ctl_init(ctl *k, const char *uri)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	snprintf(k->uri, sizeof(k->uri), "%s", uri);
}

static void ctl_destroy(ctl *k)
{
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
}

static int gate(fake *f, kg_call *c)
{
	ctl *k = f->k;
	pthread_mutex_lock(&k->mu);
	if (k->hang) {
		k->hang = 0;
		k->hanging = 1;
		pthread_cond_broadcast(&k->cv);
		while (!k->release)
			pthread_cond_wait(&k->cv, &k->mu);
		k->hanging = 0;
		k->release = 0;
		pthread_mutex_unlock(&k->mu);
		return kg_call_error(c, KG_ECONNLOST, "fake primary: the call hung and timed out");
	}
	if (k->down) {
		pthread_mutex_unlock(&k->mu);
		return kg_call_error(c, KG_ECONNLOST, "fake primary: server is down");
	}
	if (k->fail_n > 0) {
		k->fail_n--;
		int code = k->fail_code;
		pthread_mutex_unlock(&k->mu);
		return kg_call_error(c, code, "fake primary: injected %s", kg_strerror(code));
	}
	k->calls++;
	pthread_mutex_unlock(&k->mu);
	return 0;
}

static void logw(fake *f, const char *what, const char *id)
{
	ctl *k = f->k;
	pthread_mutex_lock(&k->mu);
	if (k->nlog < LOG_MAX)
		snprintf(k->log[k->nlog++], sizeof(k->log[0]), "%s:%s", what, id);
	pthread_mutex_unlock(&k->mu);
}

/* After a successful write: maybe pretend the connection broke anyway. */
static int after_write(fake *f, kg_call *c)
{
	ctl *k = f->k;
	pthread_mutex_lock(&k->mu);
	int lost = k->apply_then_fail;
	k->apply_then_fail = 0;
	pthread_mutex_unlock(&k->mu);
	return lost ? kg_call_error(c, KG_ECONNLOST, "fake primary: connection lost after the write") : KG_OK;
}

#define GATE(b, c)                          \
	fake *f = (fake *)(b);                  \
	int g_ = gate(f, (c));                  \
	if (g_ < 0)                             \
		return g_;

static int f_add_entities(kg_backend *b, kg_call *c, const kg_entity *e, size_t n, unsigned fl, size_t *added)
{
	GATE(b, c);
	int rc = f->ib->add_entities(f->ib, c, e, n, fl, added);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		logw(f, "add", e[i].id);
		pthread_mutex_lock(&f->k->mu);
		long adds = ++f->k->adds;
		long kill = f->k->kill_after_adds;
		pthread_mutex_unlock(&f->k->mu);
		if (kill > 0 && adds >= kill)
			raise(SIGKILL); /* a crash after the primary took the write */
	}
	return after_write(f, c);
}

static int f_get_entity(kg_backend *b, kg_call *c, const char *id, kg_entity **out)
{
	GATE(b, c);
	return f->ib->get_entity(f->ib, c, id, out);
}

static int f_update_entity(kg_backend *b, kg_call *c, const kg_entity *e, unsigned fl)
{
	GATE(b, c);
	int rc = f->ib->update_entity(f->ib, c, e, fl);
	if (rc < 0)
		return rc;
	logw(f, fl & KG_UPSERT ? "upsert" : "update", e->id);
	return after_write(f, c);
}

static int f_delete_entity(kg_backend *b, kg_call *c, const char *id)
{
	GATE(b, c);
	int rc = f->ib->delete_entity(f->ib, c, id);
	if (rc == KG_OK)
		logw(f, "del", id);
	return rc;
}

static int f_add_relations(kg_backend *b, kg_call *c, const kg_relation *r, size_t n, unsigned fl, size_t *added)
{
	GATE(b, c);
	int rc = f->ib->add_relations(f->ib, c, r, n, fl, added);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		logw(f, "radd", r[i].id);
	return after_write(f, c);
}

static int f_get_relation(kg_backend *b, kg_call *c, const char *id, kg_relation **out)
{
	GATE(b, c);
	return f->ib->get_relation(f->ib, c, id, out);
}

static int f_update_relation(kg_backend *b, kg_call *c, const kg_relation *r, unsigned fl)
{
	GATE(b, c);
	pthread_mutex_lock(&f->k->mu);
	int vanish = f->k->vanish;
	f->k->vanish = 0;
	pthread_mutex_unlock(&f->k->mu);
	if (vanish)
		f->ib->delete_relation(f->ib, c, r->id);
	int rc = f->ib->update_relation(f->ib, c, r, fl);
	if (rc == KG_OK)
		logw(f, "rupd", r->id);
	return rc;
}

static int f_delete_relation(kg_backend *b, kg_call *c, const char *id)
{
	GATE(b, c);
	int rc = f->ib->delete_relation(f->ib, c, id);
	if (rc == KG_OK)
		logw(f, "rdel", id);
	return rc;
}

static int f_relations_of(kg_backend *b, kg_call *c, const char *id, const char *t, kg_direction d,
                          kg_relation_list **out)
{
	GATE(b, c);
	return f->ib->relations_of(f->ib, c, id, t, d, out);
}

/* The entity stream fails by the same rules, call by call. */
typedef struct fiter {
	kg_iter base;
	kg_iter *inner;
	fake *f;
} fiter;

static int fi_next(kg_iter *it, kg_call *c, const void **item)
{
	fiter *w = (fiter *)it;
	int g = gate(w->f, c);
	return g < 0 ? g : w->inner->next(w->inner, c, item);
}

static void fi_free(kg_iter *it)
{
	fiter *w = (fiter *)it;
	w->inner->free(w->inner);
	free(w);
}

static int f_iter_entities(kg_backend *b, kg_call *c, const char *t, kg_iter **out)
{
	GATE(b, c);
	fiter *w = calloc(1, sizeof(*w));
	if (!w)
		return KG_ENOMEM;
	int rc = f->ib->iter_entities(f->ib, c, t, &w->inner);
	if (rc < 0) {
		free(w);
		return rc;
	}
	w->base.next = fi_next;
	w->base.free = fi_free;
	w->f = f;
	*out = &w->base;
	return KG_OK;
}

static int f_iter_relations(kg_backend *b, kg_call *c, const char *t, kg_iter **out)
{
	GATE(b, c);
	return f->ib->iter_relations(f->ib, c, t, out);
}

static int f_stats(kg_backend *b, kg_call *c, kg_stats **out)
{
	GATE(b, c);
	return f->ib->stats(f->ib, c, out);
}

static int f_clear(kg_backend *b, kg_call *c)
{
	GATE(b, c);
	int rc = f->ib->clear(f->ib, c);
	if (rc == KG_OK)
		logw(f, "clear", c->tenant ? c->tenant : "-");
	return rc;
}

static int f_list_tenants(kg_backend *b, kg_call *c, char ***out, size_t *n)
{
	GATE(b, c);
	return f->ib->list_tenants(f->ib, c, out, n);
}

static int f_txn_begin(kg_backend *b, kg_call *c, void **t)
{
	GATE(b, c);
	return f->ib->txn_begin(f->ib, c, t);
}

static int f_txn_commit(kg_backend *b, kg_call *c, void *t)
{
	fake *f = (fake *)b;
	return f->ib->txn_commit(f->ib, c, t);
}

static int f_txn_rollback(kg_backend *b, kg_call *c, void *t)
{
	fake *f = (fake *)b;
	return f->ib->txn_rollback(f->ib, c, t);
}

static void f_free(kg_backend *b)
{
	fake *f = (fake *)b;
	pthread_mutex_lock(&f->k->mu);
	f->k->inner = NULL;
	pthread_mutex_unlock(&f->k->mu);
	kg_close(f->inner);
	free(f);
}

/* The wrapper's connect function: opens the real store behind a fake. */
static int fake_connect(void *user, kg_store **out, char *err, size_t errcap)
{
	ctl *k = user;
	*out = NULL;
	pthread_mutex_lock(&k->mu);
	int down = k->connect_down || k->down;
	pthread_mutex_unlock(&k->mu);
	if (down) {
		snprintf(err, errcap, "fake primary: cannot connect (server unavailable)");
		return KG_ECONNLOST;
	}
	fake *f = calloc(1, sizeof(*f));
	if (!f)
		return KG_ENOMEM;
	int rc = kg_open(k->uri, &f->inner);
	if (rc < 0) {
		snprintf(err, errcap, "%s", kg_errmsg(f->inner));
		kg_close(f->inner);
		free(f);
		return rc;
	}
	f->k = k;
	f->ib = kg_store_backend(f->inner);
	kg_backend *b = &f->base;
	b->version = KG_BACKEND_VERSION;
	b->name = "fake";
	b->caps = KG_CAP_TRANSACTIONS;
	b->add_entities = f_add_entities;
	b->get_entity = f_get_entity;
	b->update_entity = f_update_entity;
	b->delete_entity = f_delete_entity;
	b->add_relations = f_add_relations;
	b->get_relation = f_get_relation;
	b->update_relation = f_update_relation;
	b->delete_relation = f_delete_relation;
	b->relations_of = f_relations_of;
	b->iter_entities = f_iter_entities;
	b->iter_relations = f_iter_relations;
	b->stats = f_stats;
	b->clear = f_clear;
	b->list_tenants = f_list_tenants;
	b->txn_begin = f_txn_begin;
	b->txn_commit = f_txn_commit;
	b->txn_rollback = f_txn_rollback;
	b->free = f_free;
	k->inner = f->inner;
	return kg_store_from_backend(b, out);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static char g_dir[256];

static void path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", g_dir, name);
}

static void rm_journal(const char *j)
{
	char p[600];
	unlink(j);
	snprintf(p, sizeof(p), "%s.cursor", j);
	unlink(p);
	snprintf(p, sizeof(p), "%s.rejected", j);
	unlink(p);
}

static int add(kg_store *s, const char *id, const char *props)
{
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = "T";
	e.properties = props;
	return kg_add_entity(s, &e);
}

static int put(kg_store *s, const char *id, const char *props, int upsert)
{
	kg_entity e = KG_ENTITY_INIT;
	e.id = id;
	e.entity_type = "T";
	e.properties = props;
	return upsert ? kg_upsert_entity(s, &e) : kg_update_entity(s, &e);
}

static int has(kg_store *s, const char *id)
{
	kg_entity *e = NULL;
	int rc = kg_get_entity(s, id, &e);
	kg_entity_free(e);
	return rc;
}

/* 1 if entity id's properties equal `props` exactly. */
static int props_are(kg_store *s, const char *id, const char *props)
{
	kg_entity *e = NULL;
	int ok = kg_get_entity(s, id, &e) == KG_OK && strcmp(e->properties, props) == 0;
	if (!ok && e)
		fprintf(stderr, "  %s has %s, expected %s\n", id, e->properties, props);
	kg_entity_free(e);
	return ok;
}

static kg_degrade_state state_of(kg_store *s)
{
	kg_degrade_status st;
	return kg_degrade_status_get(s, &st) == KG_OK ? st.state : (kg_degrade_state)-1;
}

static kg_degrade_status status_of(kg_store *s)
{
	kg_degrade_status st;
	memset(&st, 0, sizeof(st));
	kg_degrade_status_get(s, &st);
	return st;
}

static void set_down(ctl *k, int down)
{
	pthread_mutex_lock(&k->mu);
	k->down = down;
	pthread_mutex_unlock(&k->mu);
}

static void fail_next(ctl *k, int n, int code)
{
	pthread_mutex_lock(&k->mu);
	k->fail_n = n;
	k->fail_code = code;
	pthread_mutex_unlock(&k->mu);
}

typedef struct conflicts {
	int n, exists, missing, rejected, journal, primary;
	char last_id[64];
} conflicts;

static void on_conflict(void *user, const kg_degrade_conflict *c)
{
	conflicts *x = user;
	x->n++;
	x->exists += c->kind == KG_CONFLICT_EXISTS;
	x->missing += c->kind == KG_CONFLICT_MISSING;
	x->rejected += c->kind == KG_CONFLICT_REJECTED;
	x->journal += c->resolution == KG_RESOLVED_JOURNAL;
	x->primary += c->resolution == KG_RESOLVED_PRIMARY;
	snprintf(x->last_id, sizeof(x->last_id), "%s", c->id);
	if (!c->message || !*c->message)
		fprintf(stderr, "conflict report without a message\n");
}

static kg_store *open_over(ctl *k, const char *journal, int max_failures, kg_degrade_options *base)
{
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	if (base)
		o = *base;
	o.max_failures = max_failures;
	o.journal_path = journal;
	o.recovery_interval = 3600; /* recovery on demand only, unless a test says */
	kg_store *s = NULL;
	char err[1024];
	int rc = kg_degrade_open_with(fake_connect, k, &o, &s, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "kg_degrade_open_with: %s\n", err);
	CHECK(s != NULL);
	return s;
}

/* A test's usual start: journal NAME in the test directory, emptied, and a
 * store over a fresh fake primary on memory:. */
static kg_store *open_fresh(ctl *k, char *j, size_t cap, const char *name, int max_failures,
                            kg_degrade_options *base)
{
	path_in(j, cap, name);
	rm_journal(j);
	ctl_init(k, "memory:");
	return open_over(k, j, max_failures, base);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_switching(void)
{
	char j[512];
	ctl k;
	kg_store *s = open_fresh(&k, j, sizeof(j), "switch.journal", 3, NULL);
	if (!s)
		return;
	CHECK(kg_degrade_is(s));
	CHECK_STR(kg_backend_name(s), "degrade");
	CHECK_OK(s, add(s, "a", "{\"v\": 1}"));
	CHECK_OK(s, has(s, "a"));
	CHECK(kg_degrade_last_call_degraded(s) == 0);

	/* Two failures, then a success: the count is of consecutive ones. */
	fail_next(&k, 2, KG_ECONNLOST);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK(status_of(s).failures == 2);
	CHECK(state_of(s) == KG_DEGRADE_NORMAL);
	CHECK_OK(s, has(s, "a"));
	CHECK(status_of(s).failures == 0);

	/* Down: two errors, the third failure switches and is answered. */
	set_down(&k, 1);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_OK(s, has(s, "a")); /* from the warm fallback */
	CHECK(kg_degrade_last_call_degraded(s) == 1);
	kg_degrade_status st = status_of(s);
	CHECK(st.state == KG_DEGRADE_DEGRADED);
	CHECK(st.switches == 1);
	CHECK(st.total_failures == 5);
	CHECK(strstr(st.last_failure, "server is down") != NULL);
	CHECK(st.degraded_since > 0);
	CHECK(props_are(s, "a", "{\"v\": 1}"));
	CHECK_RC(s, has(s, "never-read"), KG_ENOTFOUND);
	CHECK(kg_degrade_last_call_degraded(s) == 1);

	/* A write while degraded: acknowledged, journaled, not in the primary. */
	long calls_before = k.calls;
	CHECK_OK(s, add(s, "c", "{\"v\": 3}"));
	CHECK(status_of(s).pending == 1);
	CHECK(k.calls == calls_before); /* the primary was not asked */
	CHECK_RC(s, has(k.inner, "c"), KG_ENOTFOUND);
	kg_degrade_journal_info ji;
	char err[512];
	CHECK_OK(s, kg_degrade_journal_info_get(j, &ji, err, sizeof(err)));
	CHECK(ji.pending == 1 && ji.records == 1 && ji.torn_bytes == 0);

	/* Recovery on demand: refused while down, then replays. */
	CHECK_RC(s, kg_degrade_try_recover(s, err, sizeof(err)), KG_ECONNLOST);
	CHECK(strstr(err, "down") != NULL);
	set_down(&k, 0);
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	st = status_of(s);
	CHECK(st.state == KG_DEGRADE_NORMAL);
	CHECK(st.pending == 0 && st.replayed == 1 && st.recoveries == 1 && st.failures == 0);
	CHECK(props_are(k.inner, "c", "{\"v\": 3}"));
	CHECK_OK(s, has(s, "c"));
	CHECK(kg_degrade_last_call_degraded(s) == 0);

	/* A stream from the primary that loses its connection counts too. */
	kg_entity_iter *eit = NULL;
	CHECK_OK(s, kg_entity_iter_new(s, NULL, &eit));
	CHECK(kg_degrade_last_call_degraded(s) == 0);
	const kg_entity *ie = NULL;
	CHECK(kg_entity_iter_next(eit, &ie) == 1);
	fail_next(&k, 1, KG_ECONNLOST);
	CHECK(kg_entity_iter_next(eit, &ie) == KG_ECONNLOST);
	CHECK(status_of(s).failures == 1);
	kg_entity_iter_free(eit);
	CHECK_OK(s, has(s, "a"));
	CHECK(status_of(s).failures == 0);

	/* Pool exhaustion counts too. */
	fail_next(&k, 3, KG_EPOOL);
	CHECK_RC(s, has(s, "a"), KG_EPOOL);
	CHECK_RC(s, has(s, "a"), KG_EPOOL);
	CHECK_OK(s, has(s, "a"));
	CHECK(kg_degrade_last_call_degraded(s) == 1);
	CHECK(status_of(s).switches == 2);
	/* The fallback was rebuilt: "c" was read and written, so it is warm. */
	CHECK_OK(s, has(s, "c"));
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	kg_close(s);
	ctl_destroy(&k);
}

static void test_request_errors_never_switch(void)
{
	char j[512];
	ctl k;
	kg_store *s = open_fresh(&k, j, sizeof(j), "req.journal", 3, NULL);
	if (!s)
		return;
	CHECK_OK(s, add(s, "a", NULL));
	/* The original's bug: three duplicates switched a healthy primary. */
	for (int i = 0; i < 10; i++)
		CHECK_RC(s, add(s, "a", NULL), KG_EEXISTS);
	for (int i = 0; i < 10; i++)
		CHECK_RC(s, has(s, "missing"), KG_ENOTFOUND);
	const int codes[] = { KG_ENOTFOUND, KG_EEXISTS, KG_EINVAL, KG_EBUSY, KG_EINTERNAL, KG_EIO };
	for (size_t c = 0; c < sizeof(codes) / sizeof(codes[0]); c++) {
		fail_next(&k, 5, codes[c]);
		for (int i = 0; i < 5; i++)
			CHECK_RC(s, has(s, "a"), codes[c]);
	}
	kg_degrade_status st = status_of(s);
	CHECK(st.state == KG_DEGRADE_NORMAL && st.failures == 0 && st.total_failures == 0 && st.switches == 0);
	/* A request error between connection failures breaks the run. */
	fail_next(&k, 2, KG_ECONNLOST);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_RC(s, add(s, "a", NULL), KG_EEXISTS);
	fail_next(&k, 2, KG_ECONNLOST);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK(state_of(s) == KG_DEGRADE_NORMAL);
	CHECK(status_of(s).failures == 2);
	CHECK_OK(s, has(s, "a"));
	kg_close(s);
	ctl_destroy(&k);
}

/* A primary that answers a replayed record with a lock timeout (KG_EBUSY)
 * is busy, not refusing it: the replay stops and the record stays in the
 * journal for the next one, never in the .rejected file. */
static void test_replay_busy_retries(void)
{
	char j[512], err[512];
	ctl k;
	kg_store *s = open_fresh(&k, j, sizeof(j), "busy.journal", 1, NULL);
	if (!s)
		return;
	set_down(&k, 1);
	CHECK_OK(s, add(s, "b", "{\"v\": 1}")); /* switches; journaled */
	CHECK(status_of(s).pending == 1);
	set_down(&k, 0);
	fail_next(&k, 4, KG_EBUSY);
	kg_degrade_try_recover(s, err, sizeof(err)); /* busy: may stop anywhere */
	fail_next(&k, 0, 0);
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	kg_degrade_status st = status_of(s);
	CHECK(st.state == KG_DEGRADE_NORMAL && st.pending == 0);
	CHECK(st.rejected == 0);
	CHECK(props_are(k.inner, "b", "{\"v\": 1}"));
	kg_close(s);
	ctl_destroy(&k);
}

static void test_replay_order(void)
{
	char j[512];
	ctl k;
	kg_store *s = open_fresh(&k, j, sizeof(j), "order.journal", 1, NULL);
	if (!s)
		return;
	set_down(&k, 1);
	CHECK_OK(s, add(s, "x", "{\"v\": 1}")); /* the failure switches, the fallback answers */
	CHECK(kg_degrade_last_call_degraded(s) == 1);
	CHECK_OK(s, put(s, "x", "{\"v\": 2}", 0));
	CHECK_OK(s, add(s, "y", "{\"v\": 1}"));
	CHECK_OK(s, kg_delete_entity(s, "y"));
	CHECK_OK(s, add(s, "y", "{\"v\": 3}"));
	kg_relation r = KG_RELATION_INIT;
	r.id = "r1";
	r.relation_type = "R";
	r.source_id = "x";
	r.target_id = "y";
	CHECK_OK(s, kg_add_relation(s, &r));
	CHECK_OK(s, kg_delete_entity(s, "x")); /* takes r1 with it */
	CHECK_OK(s, add(s, "x", "{\"v\": 4}"));
	r.id = "r2";
	CHECK_OK(s, kg_add_relation(s, &r));
	kg_entity batch[2] = { KG_ENTITY_INIT, KG_ENTITY_INIT };
	batch[0].id = "p";
	batch[0].entity_type = "T";
	batch[1].id = "q";
	batch[1].entity_type = "T";
	float emb[3] = { 0.25f, -1.5f, 3.0e-7f };
	batch[1].embedding = emb;
	batch[1].embedding_dim = 3;
	CHECK_OK(s, kg_add_entities(s, batch, 2, 0, NULL));
	CHECK_OK(s, put(s, "z", "{\"v\": 5}", 1));
	kg_store *t = NULL;
	CHECK_OK(s, kg_tenant(s, "t1", &t));
	if (t) {
		CHECK_OK(t, add(t, "x", "{\"tenant\": 1}"));
		CHECK(kg_degrade_last_call_degraded(t) == 1);
	}
	/* A request error from the fallback is returned, and not journaled. */
	CHECK_RC(s, add(s, "x", NULL), KG_EEXISTS);
	CHECK(status_of(s).pending == 12); /* the batch is one record */

	set_down(&k, 0);
	k.nlog = 0;
	char err[512];
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	const char *expect[] = { "add:x", "update:x", "add:y", "del:y", "add:y", "radd:r1", "del:x",
		                     "add:x", "radd:r2", "add:p", "add:q", "add:z", "add:x" };
	size_t ne = sizeof(expect) / sizeof(expect[0]);
	CHECK(k.nlog == (int)ne);
	for (size_t i = 0; i < ne && i < (size_t)k.nlog; i++)
		CHECK_STR(k.log[i], expect[i]);
	CHECK(props_are(k.inner, "x", "{\"v\": 4}"));
	CHECK(props_are(k.inner, "y", "{\"v\": 3}"));
	CHECK(props_are(k.inner, "z", "{\"v\": 5}"));
	kg_relation *rel = NULL;
	CHECK_RC(k.inner, kg_get_relation(k.inner, "r1", &rel), KG_ENOTFOUND);
	CHECK_OK(k.inner, kg_get_relation(k.inner, "r2", &rel));
	kg_relation_free(rel);
	kg_entity *q = NULL;
	CHECK_OK(k.inner, kg_get_entity(k.inner, "q", &q));
	CHECK(q && q->embedding_dim == 3 && q->embedding && memcmp(q->embedding, emb, sizeof(emb)) == 0);
	kg_entity_free(q);
	kg_store *it = NULL;
	CHECK_OK(k.inner, kg_tenant(k.inner, "t1", &it));
	if (it) {
		CHECK(props_are(it, "x", "{\"tenant\": 1}"));
		kg_close(it);
	}
	kg_degrade_status st = status_of(s);
	CHECK(st.pending == 0 && st.conflicts == 0 && st.already_applied == 0);
	kg_close(t);
	kg_close(s);
	ctl_destroy(&k);
}

/* A record the primary refuses must be kept in JOURNAL.rejected; when that
 * file cannot be written, replay stops before the record (nothing lost)
 * and continues once it can. */
static void test_reject_copy_fails(void)
{
	char j[512], rej[600];
	ctl k;
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	kg_store *s = open_fresh(&k, j, sizeof(j), "rejectfail.journal", 1, &o);
	if (!s)
		return;
	CHECK_OK(s, add(s, "e1", NULL));
	CHECK_OK(s, add(s, "e2", NULL));
	set_down(&k, 1);
	kg_relation r = KG_RELATION_INIT;
	r.id = "r";
	r.relation_type = "R";
	r.source_id = "e1";
	r.target_id = "e2";
	CHECK_OK(s, kg_add_relation(s, &r));
	CHECK_OK(k.inner, kg_delete_entity(k.inner, "e2")); /* the primary will refuse r */
	snprintf(rej, sizeof(rej), "%s.rejected", j);
	CHECK(mkdir(rej, 0700) == 0); /* a directory where the file should go */
	set_down(&k, 0);
	char err[512] = "";
	CHECK(kg_degrade_try_recover(s, err, sizeof(err)) != KG_OK);
	CHECK(strstr(err, ".rejected") != NULL);
	CHECK(status_of(s).pending == 1); /* the refused record is still in the journal */
	CHECK(rmdir(rej) == 0);
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	kg_degrade_status st = status_of(s);
	CHECK(st.pending == 0 && st.rejected == 1);
	kg_degrade_journal_info ji;
	CHECK_OK(s, kg_degrade_journal_info_get(j, &ji, err, sizeof(err)));
	CHECK(ji.rejected == 1);
	kg_close(s);
	ctl_destroy(&k);
}

static void test_conflicts(void)
{
	char j[512];
	for (int policy = 0; policy < 2; policy++) {
		ctl k;
		conflicts seen = { 0 };
		kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
		o.policy = policy ? KG_DEGRADE_KEEP_PRIMARY : KG_DEGRADE_JOURNAL_WINS;
		o.on_conflict = on_conflict;
		o.user = &seen;
		kg_store *s = open_fresh(&k, j, sizeof(j), "conflict.journal", 1, &o);
		if (!s)
			return;
		/* In the primary before the outage: "old" never read (so the
		 * fallback does not know it), "w", "e1", "e2" read. */
		CHECK_OK(k.inner, add(k.inner, "old", "{\"v\": 1}"));
		CHECK_OK(s, add(s, "w", "{\"v\": 1}"));
		CHECK_OK(s, add(s, "e1", NULL));
		CHECK_OK(s, add(s, "e2", NULL));
		set_down(&k, 1);
		CHECK_OK(s, add(s, "old", "{\"v\": 2}"));   /* the fallback cannot know */
		CHECK_OK(s, put(s, "w", "{\"v\": 9}", 0));  /* another writer deletes w below */
		kg_relation r = KG_RELATION_INIT;
		r.id = "r";
		r.relation_type = "R";
		r.source_id = "e1";
		r.target_id = "e2";
		CHECK_OK(s, kg_add_relation(s, &r));        /* e2 is deleted below */
		CHECK(status_of(s).pending == 3);
		/* Meanwhile another client of the primary. */
		CHECK_OK(k.inner, kg_delete_entity(k.inner, "w"));
		CHECK_OK(k.inner, kg_delete_entity(k.inner, "e2"));
		set_down(&k, 0);
		char err[512];
		CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
		CHECK(seen.n == 3);
		CHECK(seen.exists == 1 && seen.missing == 1 && seen.rejected == 1);
		kg_degrade_status st = status_of(s);
		CHECK(st.conflicts == 3 && st.rejected == 1 && st.pending == 0);
		if (policy == 0) {
			CHECK(seen.journal == 2);
			CHECK(props_are(k.inner, "old", "{\"v\": 2}"));
			CHECK(props_are(k.inner, "w", "{\"v\": 9}"));
		} else {
			CHECK(seen.primary == 2);
			CHECK(props_are(k.inner, "old", "{\"v\": 1}"));
			CHECK_RC(k.inner, has(k.inner, "w"), KG_ENOTFOUND);
		}
		/* The refused relation is kept for a human, not dropped. */
		kg_degrade_journal_info ji;
		CHECK_OK(s, kg_degrade_journal_info_get(j, &ji, err, sizeof(err)));
		CHECK(ji.rejected == 1 && ji.pending == 0);
		kg_close(s);
		ctl_destroy(&k);
	}

	/* A write the primary took just before its connection broke is found
	 * already applied: no conflict, not written twice. */
	ctl k;
	conflicts seen = { 0 };
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.on_conflict = on_conflict;
	o.user = &seen;
	kg_store *s = open_fresh(&k, j, sizeof(j), "conflict.journal", 1, &o);
	if (!s)
		return;
	pthread_mutex_lock(&k.mu);
	k.apply_then_fail = 1;
	pthread_mutex_unlock(&k.mu);
	CHECK_OK(s, add(s, "dup", "{\"n\": 1}")); /* lost on the primary, so the fallback took it */
	CHECK(kg_degrade_last_call_degraded(s) == 1);
	CHECK_OK(k.inner, has(k.inner, "dup"));
	k.nlog = 0;
	char err[512];
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	CHECK(seen.n == 0);
	CHECK(k.nlog == 0);
	kg_degrade_status st = status_of(s);
	CHECK(st.already_applied == 1 && st.replayed == 0);
	kg_close(s);
	ctl_destroy(&k);
}

/* A relation another client deletes between replay's look at it and its
 * update is looked at again, not rejected: the journaled write wins. */
static void test_deleted_during_replay(void)
{
	char j[512];
	ctl k;
	conflicts seen = { 0 };
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.on_conflict = on_conflict;
	o.user = &seen;
	kg_store *s = open_fresh(&k, j, sizeof(j), "vanish.journal", 1, &o);
	if (!s)
		return;
	CHECK_OK(s, add(s, "a", NULL));
	CHECK_OK(s, add(s, "b", NULL));
	set_down(&k, 1);
	kg_relation r = KG_RELATION_INIT;
	r.id = "r";
	r.relation_type = "R";
	r.source_id = "a";
	r.target_id = "b";
	CHECK_OK(s, kg_add_relation(s, &r));
	r.weight = 0.5;
	CHECK_OK(s, kg_update_relation(s, &r));
	set_down(&k, 0);
	pthread_mutex_lock(&k.mu);
	k.vanish = 1;
	pthread_mutex_unlock(&k.mu);
	char err[512];
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	CHECK(seen.n == 1 && seen.missing == 1 && seen.journal == 1);
	kg_degrade_status st = status_of(s);
	CHECK(st.rejected == 0 && st.pending == 0);
	kg_relation *got = NULL;
	CHECK_OK(k.inner, kg_get_relation(k.inner, "r", &got));
	CHECK(got && got->weight == 0.5);
	kg_relation_free(got);
	kg_close(s);
	ctl_destroy(&k);
}

/* Child: degraded writes, then die (SIGKILL) with the journal pending. */
static void child_write_degraded(const char *uri, const char *j, int n)
{
	ctl k;
	ctl_init(&k, uri);
	kg_store *s = open_over(&k, j, 1, NULL);
	if (!s)
		_exit(3);
	set_down(&k, 1);
	char id[32], props[64];
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "e%03d", i);
		snprintf(props, sizeof(props), "{\"i\": %d}", i);
		if (add(s, id, props) != KG_OK || !kg_degrade_last_call_degraded(s))
			_exit(4);
	}
	raise(SIGKILL);
	_exit(5);
}

/* Child: open (which replays) and die after `kill_after` primary writes. */
static void child_replay_and_die(const char *uri, const char *j, long kill_after)
{
	ctl k;
	ctl_init(&k, uri);
	k.kill_after_adds = kill_after;
	kg_store *s = open_over(&k, j, 1, NULL);
	(void)s;
	_exit(6); /* the kill did not happen: the test fails on the exit code */
}

static int run_child(void (*fn)(const char *, const char *, long), const char *uri, const char *j, long arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		fn(uri, j, arg);
		_exit(7);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 1000 + WEXITSTATUS(status);
}

static void write_degraded_fn(const char *uri, const char *j, long n) { child_write_degraded(uri, j, (int)n); }

static void test_crash_during_replay(void)
{
	char j[512], db[512], uri[600];
	path_in(j, sizeof(j), "crash.journal");
	path_in(db, sizeof(db), "crash.db");
	rm_journal(j);
	unlink(db);
	snprintf(uri, sizeof(uri), "sqlite:%s", db);
	const int n = 50;

	/* 1. A process dies while degraded: 50 acknowledged, journaled writes. */
	CHECK(run_child(write_degraded_fn, uri, j, n) == SIGKILL);
	kg_degrade_journal_info ji;
	char err[512];
	CHECK_OK(NULL, kg_degrade_journal_info_get(j, &ji, err, sizeof(err)));
	CHECK(ji.pending == (uint64_t)n && ji.records == (uint64_t)n);

	/* 2. The next process replays at open and dies after the primary took
	 * its 20th write, before the cursor moved past it. */
	CHECK(run_child(child_replay_and_die, uri, j, 20) == SIGKILL);
	CHECK_OK(NULL, kg_degrade_journal_info_get(j, &ji, err, sizeof(err)));
	CHECK(ji.pending == (uint64_t)(n - 19));
	CHECK(ji.cursor == 19);

	/* 3. A third process finishes: the 20th write is found already there,
	 * the rest are written once each, nothing is lost or doubled. */
	ctl k;
	ctl_init(&k, uri);
	conflicts seen = { 0 };
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.on_conflict = on_conflict;
	o.user = &seen;
	kg_store *s = open_over(&k, j, 1, &o);
	if (!s)
		return;
	kg_degrade_status st = status_of(s);
	CHECK(st.state == KG_DEGRADE_NORMAL && st.pending == 0);
	CHECK(st.already_applied == 1 && st.replayed == (uint64_t)(n - 20));
	CHECK(seen.n == 0);
	CHECK(k.nlog == n - 20);
	CHECK(k.nlog > 0 && strcmp(k.log[0], "add:e020") == 0);
	kg_stats *stats = NULL;
	CHECK_OK(s, kg_get_stats(s, &stats));
	CHECK(stats && stats->entity_count == (size_t)n);
	kg_stats_free(stats);
	char id[32], props[64];
	int all = 1;
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "e%03d", i);
		snprintf(props, sizeof(props), "{\"i\": %d}", i);
		all &= props_are(s, id, props);
	}
	CHECK(all);
	CHECK_OK(s, kg_degrade_journal_info_get(j, &ji, err, sizeof(err)));
	CHECK(ji.records == 0 && ji.pending == 0);
	kg_close(s);
	ctl_destroy(&k);
}

typedef struct hang_arg {
	kg_store *s;
	int rc, degraded;
} hang_arg;

static void *hang_thread(void *p)
{
	hang_arg *a = p;
	a->rc = has(a->s, "a");
	a->degraded = kg_degrade_last_call_degraded(a->s);
	return NULL;
}

static void test_hang(void)
{
	char j[512];
	ctl k;
	kg_store *s = open_fresh(&k, j, sizeof(j), "hang.journal", 2, NULL);
	if (!s)
		return;
	CHECK_OK(s, add(s, "a", NULL));
	pthread_mutex_lock(&k.mu);
	k.hang = 1;
	pthread_mutex_unlock(&k.mu);
	hang_arg a = { s, 99, -1 };
	pthread_t th;
	CHECK(pthread_create(&th, NULL, hang_thread, &a) == 0);
	pthread_mutex_lock(&k.mu);
	while (!k.hanging)
		pthread_cond_wait(&k.cv, &k.mu);
	pthread_mutex_unlock(&k.mu);
	/* One call hangs in the primary; the others go on, fail, switch, and
	 * are answered by the fallback meanwhile. */
	set_down(&k, 1);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_OK(s, has(s, "a"));
	CHECK(kg_degrade_last_call_degraded(s) == 1);
	CHECK_OK(s, add(s, "b", NULL));
	pthread_mutex_lock(&k.mu);
	k.release = 1;
	pthread_cond_broadcast(&k.cv);
	pthread_mutex_unlock(&k.mu);
	pthread_join(th, NULL);
	/* The hung call timed out after the switch: the fallback answered it. */
	CHECK(a.rc == KG_OK);
	CHECK(a.degraded == 1);
	set_down(&k, 0);
	char err[512];
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	CHECK_OK(k.inner, has(k.inner, "b"));
	kg_close(s);
	ctl_destroy(&k);
}

static void test_no_fallback_and_no_journal(void)
{
	ctl k;
	ctl_init(&k, "memory:");
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.enable_fallback = 0;
	kg_store *s = open_over(&k, NULL, 2, &o);
	if (!s)
		return;
	CHECK_OK(s, add(s, "a", NULL));
	set_down(&k, 1);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK(state_of(s) == KG_DEGRADE_FAILED);
	set_down(&k, 0);
	long before = k.calls;
	/* FAILED fails fast: the primary is not asked until recovery. */
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK(strstr(kg_errmsg(s), "enable_fallback") != NULL);
	CHECK(k.calls == before);
	char err[512];
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	CHECK_OK(s, has(s, "a"));
	kg_close(s);
	ctl_destroy(&k);

	/* Fallback without a journal: reads are served, writes refused. */
	ctl_init(&k, "memory:");
	s = open_over(&k, NULL, 1, NULL);
	if (!s)
		return;
	CHECK_OK(s, add(s, "a", NULL));
	set_down(&k, 1);
	CHECK_OK(s, has(s, "a"));
	CHECK(kg_degrade_last_call_degraded(s) == 1);
	CHECK_RC(s, add(s, "b", NULL), KG_ECONNLOST);
	CHECK(strstr(kg_errmsg(s), "journal_path") != NULL);
	kg_store *txn = NULL;
	CHECK_RC(s, kg_begin(s, &txn), KG_ECONNLOST);
	kg_close(s);
	ctl_destroy(&k);
}

static void test_unreachable_at_open(void)
{
	char j[512];
	path_in(j, sizeof(j), "open.journal");
	rm_journal(j);
	ctl k;
	ctl_init(&k, "memory:");
	k.connect_down = 1;
	kg_store *s = open_over(&k, j, 3, NULL);
	if (!s)
		return;
	kg_degrade_status st = status_of(s);
	CHECK(st.state == KG_DEGRADE_NORMAL && st.failures == 1);
	CHECK(strstr(st.last_failure, "cannot connect") != NULL);
	CHECK_RC(s, has(s, "a"), KG_ECONNLOST);
	CHECK_RC(s, add(s, "a", NULL), KG_OK); /* third failure: the fallback */
	CHECK(state_of(s) == KG_DEGRADE_DEGRADED);
	kg_close(s); /* exits degraded, journal pending */

	/* Next start, primary still unreachable: degraded at once, and the
	 * pending write is visible in the fallback. */
	s = open_over(&k, j, 3, NULL);
	if (!s)
		return;
	CHECK(state_of(s) == KG_DEGRADE_DEGRADED);
	CHECK(status_of(s).pending == 1);
	CHECK_OK(s, has(s, "a"));
	CHECK(kg_degrade_last_call_degraded(s) == 1);
	/* The same journal cannot be used by two stores at once. */
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.journal_path = j;
	kg_store *s2 = NULL;
	char err[512];
	CHECK(kg_degrade_open_with(fake_connect, &k, &o, &s2, err, sizeof(err)) == KG_EBUSY);
	CHECK(s2 == NULL && strstr(err, "in use") != NULL);
	pthread_mutex_lock(&k.mu);
	k.connect_down = 0;
	pthread_mutex_unlock(&k.mu);
	CHECK_OK(s, kg_degrade_try_recover(s, err, sizeof(err)));
	CHECK_OK(k.inner, has(k.inner, "a"));
	kg_close(s);
	ctl_destroy(&k);
}

static void test_lazy_recovery(void)
{
	char j[512];
	path_in(j, sizeof(j), "lazy.journal");
	rm_journal(j);
	ctl k;
	ctl_init(&k, "memory:");
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.max_failures = 1;
	o.journal_path = j;
	o.recovery_interval = 1e-6; /* every call after the switch may try */
	kg_store *s = NULL;
	char err[512];
	CHECK_OK(s, kg_degrade_open_with(fake_connect, &k, &o, &s, err, sizeof(err)));
	if (!s)
		return;
	set_down(&k, 1);
	CHECK_OK(s, add(s, "a", NULL));
	CHECK(state_of(s) == KG_DEGRADE_DEGRADED);
	set_down(&k, 0);
	/* No explicit recovery: the next call finds the primary back. */
	CHECK_OK(s, add(s, "b", NULL));
	CHECK(kg_degrade_last_call_degraded(s) == 0);
	CHECK(state_of(s) == KG_DEGRADE_NORMAL);
	CHECK_OK(k.inner, has(k.inner, "a"));
	CHECK_OK(k.inner, has(k.inner, "b"));
	CHECK(k.nlog == 2 && strcmp(k.log[0], "add:a") == 0 && strcmp(k.log[1], "add:b") == 0);
	kg_close(s);
	ctl_destroy(&k);
}

static void test_recovery_thread(void)
{
	char j[512], err[512];
	path_in(j, sizeof(j), "thread.journal");
	rm_journal(j);
	ctl k;
	ctl_init(&k, "memory:");
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.max_failures = 1;
	o.journal_path = j;
	o.recovery_interval = 0.01;
	o.recovery_thread = 1;
	kg_store *s = NULL;
	CHECK_OK(s, kg_degrade_open_with(fake_connect, &k, &o, &s, err, sizeof(err)));
	if (!s)
		return;
	set_down(&k, 1);
	CHECK_OK(s, add(s, "a", NULL));
	CHECK(state_of(s) == KG_DEGRADE_DEGRADED);
	set_down(&k, 0);
	/* No call, no try_recover: the thread replays on its own. The loop
	 * bound only turns a hang into a failure. */
	int normal = 0;
	for (int i = 0; i < 30000 && !normal; i++) {
		normal = state_of(s) == KG_DEGRADE_NORMAL;
		if (!normal)
			usleep(1000);
	}
	CHECK(normal);
	pthread_mutex_lock(&k.mu);
	int n = k.nlog;
	int first = n > 0 && strcmp(k.log[0], "add:a") == 0;
	pthread_mutex_unlock(&k.mu);
	CHECK(n == 1 && first);
	CHECK(status_of(s).pending == 0);
	kg_close(s); /* stops and joins the thread */
	ctl_destroy(&k);
}

/* Several writers while the primary goes down and comes back, with lazy
 * recovery racing the writes: every acknowledged write lands once. */
#define CW_THREADS 4

typedef struct cw_shared {
	kg_store *s;
	pthread_mutex_t mu;
	long acked, acked_degraded;
	int bad, stop;
} cw_shared;

typedef struct cw_arg {
	cw_shared *sh;
	int t;
} cw_arg;

static void *cw_writer(void *p)
{
	cw_arg *a = p;
	char id[32];
	for (int i = 0;; i++) {
		pthread_mutex_lock(&a->sh->mu);
		int stop = a->sh->stop || a->sh->bad;
		pthread_mutex_unlock(&a->sh->mu);
		if (stop)
			break;
		snprintf(id, sizeof(id), "t%d-%06d", a->t, i);
		int rc;
		while ((rc = add(a->sh->s, id, NULL)) == KG_ECONNLOST)
			;
		int deg = kg_degrade_last_call_degraded(a->sh->s);
		pthread_mutex_lock(&a->sh->mu);
		if (rc == KG_OK) {
			a->sh->acked++;
			a->sh->acked_degraded += deg;
		} else {
			fprintf(stderr, "writer %d: %s: %d %s\n", a->t, id, rc, kg_errmsg(a->sh->s));
			a->sh->bad = 1;
		}
		pthread_mutex_unlock(&a->sh->mu);
	}
	return NULL;
}

static long cw_get(cw_shared *sh, long *v)
{
	pthread_mutex_lock(&sh->mu);
	long x = sh->bad ? -1 : *v;
	pthread_mutex_unlock(&sh->mu);
	return x;
}

static void test_concurrent_writers(void)
{
	char j[512], err[512];
	path_in(j, sizeof(j), "concurrent.journal");
	rm_journal(j);
	ctl k;
	ctl_init(&k, "memory:");
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.max_failures = 3;
	o.journal_path = j;
	o.recovery_interval = 1e-3;
	cw_shared sh = { 0 };
	pthread_mutex_init(&sh.mu, NULL);
	CHECK_OK(sh.s, kg_degrade_open_with(fake_connect, &k, &o, &sh.s, err, sizeof(err)));
	if (!sh.s)
		return;
	pthread_t th[CW_THREADS];
	cw_arg args[CW_THREADS];
	for (int t = 0; t < CW_THREADS; t++) {
		args[t].sh = &sh;
		args[t].t = t;
		pthread_create(&th[t], NULL, cw_writer, &args[t]);
	}
	/* Two outages, by counts of acknowledged writes (the loop bounds only
	 * turn a hang into a failure). */
	for (int round = 0; round < 2; round++) {
		long start = cw_get(&sh, &sh.acked);
		for (int i = 0; i < 100000 && start >= 0 && cw_get(&sh, &sh.acked) < start + 100; i++)
			usleep(100);
		set_down(&k, 1);
		long deg0 = cw_get(&sh, &sh.acked_degraded);
		for (int i = 0; i < 100000 && deg0 >= 0 && cw_get(&sh, &sh.acked_degraded) < deg0 + 100; i++)
			usleep(100);
		set_down(&k, 0);
	}
	long end = cw_get(&sh, &sh.acked);
	for (int i = 0; i < 100000 && end >= 0 && cw_get(&sh, &sh.acked) < end + 100; i++)
		usleep(100);
	pthread_mutex_lock(&sh.mu);
	sh.stop = 1;
	pthread_mutex_unlock(&sh.mu);
	for (int t = 0; t < CW_THREADS; t++)
		pthread_join(th[t], NULL);
	CHECK(!sh.bad);
	if (state_of(sh.s) != KG_DEGRADE_NORMAL)
		CHECK_OK(sh.s, kg_degrade_try_recover(sh.s, err, sizeof(err)));
	kg_degrade_status st = status_of(sh.s);
	CHECK(st.switches >= 2);
	CHECK(sh.acked_degraded >= 200);
	CHECK(st.pending == 0 && st.conflicts == 0);
	CHECK(st.journaled == (uint64_t)sh.acked_degraded);
	kg_stats *stats = NULL;
	CHECK_OK(k.inner, kg_get_stats(k.inner, &stats));
	CHECK(stats && stats->entity_count == (size_t)sh.acked);
	kg_stats_free(stats);
	/* Written once each: the fake counts every add that reached the store. */
	CHECK(k.adds == sh.acked);
	kg_close(sh.s);
	pthread_mutex_destroy(&sh.mu);
	ctl_destroy(&k);
}

static void test_torn_tail_and_bad_input(void)
{
	char j[512], err[512];
	ctl k;
	kg_store *s = open_fresh(&k, j, sizeof(j), "torn.journal", 1, NULL);
	if (!s)
		return;
	set_down(&k, 1);
	CHECK_OK(s, add(s, "a", NULL));
	CHECK_OK(s, add(s, "b", NULL));
	kg_close(s);
	/* A crash in the middle of a third append: a record cut short. */
	int fd = open(j, O_WRONLY | O_APPEND);
	CHECK(fd >= 0);
	if (fd >= 0) {
		const unsigned char part[] = { 'K', 'G', 'J', '1', 200, 0, 0, 0, 3, 0, 0 };
		CHECK(write(fd, part, sizeof(part)) == (ssize_t)sizeof(part));
		close(fd);
	}
	kg_degrade_journal_info ji;
	CHECK_OK(NULL, kg_degrade_journal_info_get(j, &ji, err, sizeof(err)));
	CHECK(ji.records == 2 && ji.pending == 2 && ji.torn_bytes == 11);
	set_down(&k, 0);
	s = open_over(&k, j, 1, NULL);
	if (s) {
		CHECK(state_of(s) == KG_DEGRADE_NORMAL);
		CHECK_OK(k.inner, has(k.inner, "a"));
		CHECK_OK(k.inner, has(k.inner, "b"));
		kg_close(s);
	}
	ctl_destroy(&k);

	/* By hand: replay a journal into a store of one's choosing. */
	rm_journal(j);
	ctl_init(&k, "memory:");
	s = open_over(&k, j, 1, NULL);
	if (s) {
		set_down(&k, 1);
		CHECK_OK(s, add(s, "m", "{\"by\": \"hand\"}"));
		kg_close(s);
	}
	ctl_destroy(&k);
	kg_store *target = NULL;
	CHECK_OK(target, kg_open("memory:", &target));
	kg_degrade_replay_report rep;
	CHECK_OK(target, kg_degrade_replay_journal(j, target, KG_DEGRADE_JOURNAL_WINS, NULL, NULL, &rep, err,
	                                           sizeof(err)));
	CHECK(rep.applied == 1 && rep.remaining == 0);
	CHECK(props_are(target, "m", "{\"by\": \"hand\"}"));
	CHECK_OK(target, kg_degrade_replay_journal(j, target, KG_DEGRADE_JOURNAL_WINS, NULL, NULL, &rep, err,
	                                           sizeof(err)));
	CHECK(rep.applied == 0 && rep.already_applied == 0);
	char nothere[512];
	path_in(nothere, sizeof(nothere), "no-such.journal");
	CHECK(kg_degrade_replay_journal(nothere, target, KG_DEGRADE_JOURNAL_WINS, NULL, NULL, &rep, err,
	                                sizeof(err)) == KG_ENOTFOUND);
	CHECK(access(nothere, F_OK) != 0); /* not created by the attempt */
	kg_close(target);

	/* Bad options and paths: clear errors, nothing made. */
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	kg_store *bad = NULL;
	o.version = 0;
	CHECK(kg_degrade_open("memory:", &o, &bad, err, sizeof(err)) == KG_EINVAL && bad == NULL);
	CHECK(strstr(err, "KG_DEGRADE_OPTIONS_INIT") != NULL);
	o.version = KG_DEGRADE_OPTIONS_VERSION;
	o.max_failures = -1;
	CHECK(kg_degrade_open("memory:", &o, &bad, err, sizeof(err)) == KG_EINVAL && bad == NULL);
	o.max_failures = 0;
	o.journal_path = "/nonexistent-dir-kgstore/j";
	CHECK(kg_degrade_open("memory:", &o, &bad, err, sizeof(err)) == KG_EIO && bad == NULL);
	CHECK(strstr(err, "/nonexistent-dir-kgstore/j") != NULL);
	char notj[512];
	path_in(notj, sizeof(notj), "not-a-journal");
	FILE *f = fopen(notj, "w");
	if (f) {
		fputs("hello, this is not a journal\n", f);
		fclose(f);
	}
	o.journal_path = notj;
	CHECK(kg_degrade_open("memory:", &o, &bad, err, sizeof(err)) == KG_ECORRUPT && bad == NULL);
	struct stat sb;
	CHECK(stat(notj, &sb) == 0 && sb.st_size == 29); /* left as it was */
	char notj_cursor[600];
	snprintf(notj_cursor, sizeof(notj_cursor), "%s.cursor", notj);
	CHECK(access(notj_cursor, F_OK) != 0);
	char fresh[512];
	path_in(fresh, sizeof(fresh), "fresh.journal");
	o.journal_path = fresh;
	CHECK(kg_degrade_open("nosuch:thing", &o, &bad, err, sizeof(err)) < 0 && bad == NULL);
	CHECK(err[0] != '\0');
	CHECK(access(fresh, F_OK) != 0); /* the failed open made no journal */
	o.journal_path = NULL;
	CHECK(kg_degrade_open("memory:", &o, &bad, err, sizeof(err)) == KG_OK && bad != NULL);
	kg_close(bad);
	kg_store *plain = NULL;
	CHECK_OK(plain, kg_open("memory:", &plain));
	kg_degrade_status st;
	CHECK(kg_degrade_status_get(plain, &st) == KG_EINVAL);
	CHECK(kg_degrade_is(plain) == 0);
	CHECK(kg_degrade_try_recover(plain, err, sizeof(err)) == KG_EINVAL);
	kg_close(plain);
}

int main(void)
{
	snprintf(g_dir, sizeof(g_dir), "degrade_tmp_XXXXXX");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 2;
	}
	RUN(test_switching);
	RUN(test_request_errors_never_switch);
	RUN(test_replay_busy_retries);
	RUN(test_replay_order);
	RUN(test_conflicts);
	RUN(test_reject_copy_fails);
	RUN(test_deleted_during_replay);
	RUN(test_crash_during_replay);
	RUN(test_hang);
	RUN(test_no_fallback_and_no_journal);
	RUN(test_unreachable_at_open);
	RUN(test_lazy_recovery);
	RUN(test_recovery_thread);
	RUN(test_concurrent_writers);
	RUN(test_torn_tail_and_bad_input);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_dir);
	return th_summary("unit_degrade");
}
