/*
 * degrade.c - the graceful-degradation wrapper: a kg_backend that sends
 * calls to a primary store and, after max_failures consecutive
 * connection-class failures, to an in-memory fallback whose writes are
 * journaled (journal.c) and replayed into the primary on recovery
 * (replay.c). Rules and reasons in docs/DEGRADATION.md.
 *
 * Locks, outermost first:
 *  dmu  - the fallback and the journal: every call answered by the
 *         fallback, the switch to degraded, and replay hold it, so journal
 *         order is the order the fallback applied writes, and the primary
 *         takes no new write before the journal is replayed.
 *  mu   - state and counters, held briefly, never across a call to a store.
 *  lru  - the warm cache.
 * Calls to the primary hold no lock: a hung primary call blocks only its
 * own thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dg_internal.h"

/* ------------------------------------------------------------------ */
/* Warm cache: an LRU of entity copies, keyed by tenant and id          */
/* ------------------------------------------------------------------ */

typedef struct lru_node {
	char *key;    /* tenant "\x1f" id ("" for the global namespace) */
	char *tenant; /* NULL = global; owned */
	kg_entity *e; /* owned copy */
	struct lru_node *prev, *next, *hnext;
} lru_node;

typedef struct lru {
	pthread_mutex_t mu;
	size_t cap, n, nb;
	lru_node **b;
	lru_node head; /* sentinel: head.next most recent, head.prev oldest */
} lru;

static char *make_key(const char *tenant, const char *id)
{
	size_t lt = tenant ? strlen(tenant) : 0, li = strlen(id);
	char *k = malloc(lt + li + 2);
	if (k) {
		if (lt)
			memcpy(k, tenant, lt);
		k[lt] = '\x1f';
		memcpy(k + lt + 1, id, li + 1);
	}
	return k;
}

static int lru_init(lru *l, size_t cap)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	l->cap = cap;
	l->head.next = l->head.prev = &l->head;
	if (cap == 0)
		return 0;
	l->nb = 16;
	while (l->nb < cap * 2 && l->nb < (1u << 24))
		l->nb *= 2;
	l->b = calloc(l->nb, sizeof(*l->b));
	return l->b ? 0 : KG_ENOMEM;
}

static void node_free(lru_node *x)
{
	if (!x)
		return;
	kg_entity_free(x->e);
	free(x->tenant);
	free(x->key);
	free(x);
}

static lru_node **lru_slot(lru *l, const char *key)
{
	lru_node **p = &l->b[kg_hash_str(key) & (l->nb - 1)];
	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->hnext;
	return p;
}

static void unlink_node(lru *l, lru_node *x)
{
	x->prev->next = x->next;
	x->next->prev = x->prev;
	lru_node **p = lru_slot(l, x->key);
	*p = x->hnext;
	l->n--;
}

static void lru_remove(lru *l, const char *tenant, const char *id)
{
	if (!l->cap)
		return;
	char *key = make_key(tenant, id);
	if (!key)
		return;
	pthread_mutex_lock(&l->mu);
	lru_node *x = *lru_slot(l, key);
	if (x) {
		unlink_node(l, x);
		node_free(x);
	}
	pthread_mutex_unlock(&l->mu);
	free(key);
}

/* Best effort: a cache that misses an entry only warms less. */
static void lru_put(lru *l, const char *tenant, const kg_entity *e)
{
	if (!l->cap)
		return;
	lru_node *x = calloc(1, sizeof(*x));
	if (!x)
		return;
	x->key = make_key(tenant, e->id);
	x->e = kg_entity_dup(e);
	x->tenant = tenant ? strdup(tenant) : NULL;
	if (!x->key || !x->e || (tenant && !x->tenant)) {
		node_free(x);
		return;
	}
	pthread_mutex_lock(&l->mu);
	lru_node **p = lru_slot(l, x->key);
	if (*p) {
		lru_node *old = *p;
		unlink_node(l, old);
		node_free(old);
		p = lru_slot(l, x->key);
	}
	x->hnext = *p;
	*p = x;
	x->next = l->head.next;
	x->prev = &l->head;
	l->head.next->prev = x;
	l->head.next = x;
	l->n++;
	lru_node *drop = NULL;
	if (l->n > l->cap) {
		drop = l->head.prev;
		unlink_node(l, drop);
	}
	pthread_mutex_unlock(&l->mu);
	node_free(drop);
}

static void lru_clear_tenant(lru *l, const char *tenant)
{
	pthread_mutex_lock(&l->mu);
	for (lru_node *x = l->head.next, *nx; x != &l->head; x = nx) {
		nx = x->next;
		if ((!tenant && !x->tenant) || (tenant && x->tenant && strcmp(tenant, x->tenant) == 0)) {
			unlink_node(l, x);
			node_free(x);
		}
	}
	pthread_mutex_unlock(&l->mu);
}

static void lru_destroy(lru *l)
{
	for (lru_node *x = l->head.next, *nx; x != &l->head; x = nx) {
		nx = x->next;
		node_free(x);
	}
	free(l->b);
	pthread_mutex_destroy(&l->mu);
}

/* ------------------------------------------------------------------ */
/* The wrapper                                                          */
/* ------------------------------------------------------------------ */

typedef struct dg {
	kg_backend base; /* first: the core sees a kg_backend */
	kg_degrade_options o;
	char *journal_path;
	kg_degrade_connect_fn connect;
	void *cuser;
	char *uri; /* kg_degrade_open's URI (connect_uri's user) */

	pthread_mutex_t conn_mu; /* one connect at a time */
	pthread_mutex_t mu;
	kg_store *primary; /* set once, closed by free */
	kg_backend *pb;
	kg_degrade_state state;
	unsigned failures;
	int recovering;
	int64_t next_attempt;
	kg_degrade_status st; /* counters and messages (state fields above win) */

	pthread_mutex_t dmu;
	kg_backend *fb; /* the fallback, made at the first switch, kept until free
	                   (iterators over it may outlive a recovery) */
	int have_journal;
	dg_journal j;

	lru cache;
	pthread_key_t key; /* this thread's last call was degraded */

	/* Optional background recovery (o.recovery_thread). */
	pthread_t thread;
	int thread_running, thread_stop;
	pthread_cond_t thread_cv; /* with mu */
} dg;

typedef struct dg_txn {
	void *inner; /* the primary's transaction */
} dg_txn;

#define PROBE_ID "kgstore-degrade-probe"

static double interval_of(const dg *d) { return d->o.recovery_interval > 0 ? d->o.recovery_interval : 5.0; }

/* The last failure's message, copied under the lock. */
static void last_failure(dg *d, char *out, size_t cap)
{
	pthread_mutex_lock(&d->mu);
	snprintf(out, cap, "%s", d->st.last_failure);
	pthread_mutex_unlock(&d->mu);
}

static void set_degraded_flag(dg *d, kg_call *c, int on)
{
	pthread_setspecific(d->key, on ? (void *)d : NULL);
	if (on)
		c->result_flags |= KG_RESULT_DEGRADED;
}

static void fill_call(kg_call *sub, const kg_call *c, void *txn)
{
	sub->tenant = c->tenant;
	sub->txn = txn;
	sub->msg = c->msg;
	sub->msgcap = c->msgcap;
	sub->result_flags = 0;
	if (c->msg && c->msgcap)
		c->msg[0] = '\0';
}

/* Empties every tenant of the fallback. */
static void fallback_clear(dg *d)
{
	if (!d->fb)
		return;
	char msg[256];
	kg_call c = { NULL, NULL, msg, sizeof(msg), 0 };
	char **names = NULL;
	size_t n = 0;
	if (d->fb->list_tenants(d->fb, &c, &names, &n) == KG_OK) {
		for (size_t i = 0; i < n; i++) {
			kg_call tc = { names[i], NULL, msg, sizeof(msg), 0 };
			d->fb->clear(d->fb, &tc);
		}
		free(names);
	}
	d->fb->clear(d->fb, &c);
}

/* Applies the pending journal to the fallback, so that a process started
 * while the primary is down still answers with the writes it acknowledged
 * before. Holds dmu. */
static void fallback_load_journal(dg *d)
{
	if (!d->have_journal || !d->j.pending)
		return;
	dg_replay rp;
	memset(&rp, 0, sizeof(rp));
	rp.dst = d->fb;
	rp.policy = KG_DEGRADE_JOURNAL_WINS;
	rp.quiet = 1;
	uint64_t off = d->j.cursor_off;
	while (off < d->j.end) {
		uint64_t seq;
		unsigned char *p = NULL;
		size_t len;
		if (dg_journal_read(&d->j, &off, d->j.end, &seq, &p, &len) < 0)
			break;
		if (seq <= d->j.cursor) {
			free(p);
			continue;
		}
		dg_record r;
		if (dg_record_decode(p, len, seq, &r) < 0)
			continue; /* the failed decode freed p */
		dg_replay_record(&rp, &r, r.payload, len);
		dg_record_free(&r);
	}
}

/* Switches to the fallback (or FAILED without one). Takes dmu then mu. */
static void enter_degraded(dg *d)
{
	pthread_mutex_lock(&d->dmu);
	pthread_mutex_lock(&d->mu);
	if (d->state != KG_DEGRADE_NORMAL) {
		pthread_mutex_unlock(&d->mu);
		pthread_mutex_unlock(&d->dmu);
		return;
	}
	int64_t now = kg_now_us();
	int want_fallback = d->o.enable_fallback;
	pthread_mutex_unlock(&d->mu);

	int ok = 0;
	char err[256] = "";
	if (want_fallback) {
		if (!d->fb) {
			kg_options mo = KG_OPTIONS_INIT;
			mo.backend = KG_BACKEND_MEMORY;
			mo.memory_budget = d->o.fallback_budget;
			if (kg_memory_backend_new(&mo, &d->fb, err, sizeof(err)) < 0)
				d->fb = NULL;
		} else {
			fallback_clear(d);
		}
		if (d->fb) {
			/* Warm with what the application used last, oldest first so
			 * the fallback's insertion order follows the cache's. */
			char msg[256];
			pthread_mutex_lock(&d->cache.mu);
			for (lru_node *x = d->cache.head.prev; x != &d->cache.head; x = x->prev) {
				kg_call c = { x->tenant, NULL, msg, sizeof(msg), 0 };
				d->fb->update_entity(d->fb, &c, x->e, KG_UPSERT);
			}
			pthread_mutex_unlock(&d->cache.mu);
			fallback_load_journal(d);
			ok = 1;
		}
	}
	pthread_mutex_lock(&d->mu);
	if (want_fallback && !ok) /* say why in the status, where the user looks */
		snprintf(d->st.last_failure, sizeof(d->st.last_failure),
		         "the primary is down and the in-memory fallback could not be made (%s); calls fail until the "
		         "primary is back", err[0] ? err : "out of memory");
	d->state = ok ? KG_DEGRADE_DEGRADED : KG_DEGRADE_FAILED;
	if (ok)
		d->st.switches++;
	d->st.degraded_since = now;
	d->next_attempt = now + (int64_t)(interval_of(d) * 1e6);
	pthread_cond_broadcast(&d->thread_cv); /* the recovery thread re-plans */
	pthread_mutex_unlock(&d->mu);
	pthread_mutex_unlock(&d->dmu);
}

/* Counts a connection-class failure; switches when the count is reached. */
static void note_failure(dg *d, const char *msg)
{
	pthread_mutex_lock(&d->mu);
	/* Written under mu, but atomically: note_success peeks without it. */
	unsigned nfail = __atomic_add_fetch(&d->failures, 1, __ATOMIC_RELAXED);
	d->st.total_failures++;
	d->st.last_failure_at = kg_now_us();
	snprintf(d->st.last_failure, sizeof(d->st.last_failure), "%s", msg && *msg ? msg : "connection lost");
	int max = d->o.max_failures > 0 ? d->o.max_failures : 3;
	int sw = d->state == KG_DEGRADE_NORMAL && nfail >= (unsigned)max;
	pthread_mutex_unlock(&d->mu);
	if (sw)
		enter_degraded(d);
}

static void note_success(dg *d)
{
	/* A racy read first: most calls succeed with a zero count already. */
	if (__atomic_load_n(&d->failures, __ATOMIC_RELAXED) == 0)
		return;
	pthread_mutex_lock(&d->mu);
	if (d->state == KG_DEGRADE_NORMAL)
		__atomic_store_n(&d->failures, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->mu);
}

/* Opens the primary if it is not open. 0, or the open's error in c. */
static int ensure_primary(dg *d, kg_call *c)
{
	pthread_mutex_lock(&d->conn_mu);
	pthread_mutex_lock(&d->mu);
	int have = d->pb != NULL;
	pthread_mutex_unlock(&d->mu);
	int rc = KG_OK;
	if (!have) {
		kg_store *s = NULL;
		char err[1024] = "";
		rc = d->connect(d->cuser, &s, err, sizeof(err));
		if (rc == KG_OK && s) {
			pthread_mutex_lock(&d->mu);
			d->primary = s;
			d->pb = kg_store_backend(s);
			d->base.caps = d->pb->caps;
			pthread_mutex_unlock(&d->mu);
		} else {
			if (rc == KG_OK)
				rc = KG_EINTERNAL;
			kg_call_error(c, rc, "cannot open the primary store: %s", err[0] ? err : kg_strerror(rc));
		}
	}
	pthread_mutex_unlock(&d->conn_mu);
	return rc;
}

/* Replays the journal into the primary with dmu held. 0 or the code that
 * stopped it (message in c). Updates the counters. */
static int replay_locked(dg *d, kg_call *c)
{
	if (!d->have_journal)
		return KG_OK;
	if (!d->j.pending) {
		if (d->j.end)
			dg_journal_reset(&d->j);
		return KG_OK;
	}
	dg_replay rp;
	memset(&rp, 0, sizeof(rp));
	rp.dst = d->pb;
	rp.policy = d->o.policy;
	rp.on_conflict = d->o.on_conflict;
	rp.user = d->o.user;
	rp.j = &d->j;
	int rc = dg_replay_range(&rp, d->j.end);
	pthread_mutex_lock(&d->mu);
	d->st.replayed += rp.rep.applied;
	d->st.already_applied += rp.rep.already_applied;
	d->st.conflicts += rp.rep.conflicts;
	d->st.rejected += rp.rep.rejected;
	pthread_mutex_unlock(&d->mu);
	if (rc < 0) {
		kg_call_error(c, rc, "replaying the journal into the primary stopped: %s", rp.msg);
		return rc;
	}
	return dg_journal_reset(&d->j) < 0
	               ? kg_call_error(c, KG_EIO, "cannot empty the replayed journal %s", d->j.path)
	               : KG_OK;
}

/* One recovery attempt: reconnect, probe, replay, switch back. */
static int recover(dg *d, kg_call *c)
{
	pthread_mutex_lock(&d->mu);
	if (d->state == KG_DEGRADE_NORMAL) {
		pthread_mutex_unlock(&d->mu);
		return KG_OK;
	}
	if (d->recovering) {
		pthread_mutex_unlock(&d->mu);
		return kg_call_error(c, KG_ECONNLOST, "a recovery attempt is already running in another thread");
	}
	d->recovering = 1;
	pthread_mutex_unlock(&d->mu);

	double t0 = (double)kg_now_us();
	int rc = ensure_primary(d, c);
	if (rc == KG_OK) {
		kg_entity *probe = NULL;
		kg_call pc;
		fill_call(&pc, c, NULL);
		pc.tenant = NULL;
		rc = d->pb->get_entity(d->pb, &pc, PROBE_ID, &probe);
		kg_entity_free(probe);
		if (rc == KG_ENOTFOUND)
			rc = KG_OK;
	}
	if (rc == KG_OK) {
		pthread_mutex_lock(&d->dmu);
		rc = replay_locked(d, c);
		if (rc == KG_OK) {
			fallback_clear(d); /* its data is in the primary now */
			pthread_mutex_lock(&d->mu);
			d->state = KG_DEGRADE_NORMAL;
			__atomic_store_n(&d->failures, 0, __ATOMIC_RELAXED);
			d->st.recoveries++;
			d->st.degraded_since = 0;
			d->st.last_recovery_seconds = ((double)kg_now_us() - t0) / 1e6;
			d->recovering = 0;
			pthread_mutex_unlock(&d->mu);
		}
		pthread_mutex_unlock(&d->dmu);
		if (rc == KG_OK)
			return KG_OK;
	}
	pthread_mutex_lock(&d->mu);
	d->recovering = 0;
	d->next_attempt = kg_now_us() + (int64_t)(interval_of(d) * 1e6);
	if (dg_conn_class(rc) || rc == KG_EBUSY) {
		d->st.total_failures++;
		d->st.last_failure_at = kg_now_us();
		snprintf(d->st.last_failure, sizeof(d->st.last_failure), "%s", c->msg);
	}
	pthread_mutex_unlock(&d->mu);
	if (!dg_conn_class(rc)) {
		char why[1024]; /* c->msg cannot be both the format's argument and its output */
		snprintf(why, sizeof(why), "%s", c->msg);
		kg_call_error(c, KG_ECONNLOST, "the primary is not back yet: %s", why);
	}
	return KG_ECONNLOST;
}

/* Recovery checked lazily on calls, once per interval. */
static void maybe_recover(dg *d)
{
	if (d->thread_running)
		return; /* the background thread does it */
	pthread_mutex_lock(&d->mu);
	int go = d->state != KG_DEGRADE_NORMAL && !d->recovering && kg_now_us() >= d->next_attempt;
	pthread_mutex_unlock(&d->mu);
	if (go) {
		char msg[1024];
		kg_call c = { NULL, NULL, msg, sizeof(msg), 0 };
		recover(d, &c);
	}
}

enum { R_PRIMARY = 1, R_FALLBACK = 0 };

/* Where a call goes: R_PRIMARY (*pb set), R_FALLBACK, or a negative code
 * with the message in c. */
static int route(dg *d, kg_call *c, kg_backend **pb)
{
	maybe_recover(d);
	for (int round = 0; round < 3; round++) {
		pthread_mutex_lock(&d->mu);
		kg_degrade_state st = d->state;
		*pb = d->pb;
		char since[32];
		kg_format_time(d->st.degraded_since, since);
		pthread_mutex_unlock(&d->mu);
		if (st == KG_DEGRADE_DEGRADED)
			return R_FALLBACK;
		if (st == KG_DEGRADE_FAILED)
			return kg_call_error(c, KG_ECONNLOST,
			                     "the primary store is down (since %s UTC) and no fallback is in use%s; it is "
			                     "tried again every %.3g s (kg_degrade_try_recover to try now)",
			                     since,
			                     d->o.enable_fallback ? "" : " (enable_fallback is off)", interval_of(d));
		if (*pb)
			return R_PRIMARY;
		int rc = ensure_primary(d, c);
		if (rc == KG_OK)
			continue;
		if (!dg_conn_class(rc))
			return rc;
		note_failure(d, c->msg);
		pthread_mutex_lock(&d->mu);
		st = d->state;
		pthread_mutex_unlock(&d->mu);
		if (st == KG_DEGRADE_NORMAL)
			return rc;
	}
	return kg_call_error(c, KG_EINTERNAL, "degrade: routing did not settle");
}

/* After a primary call: counts the result. 1 if the call should now be
 * answered by the fallback (this failure, or another thread's, switched). */
static int after_primary(dg *d, kg_call *c, int rc)
{
	/* The primary answered this call; a fallback answer sets it again. */
	set_degraded_flag(d, c, 0);
	if (!dg_conn_class(rc)) {
		note_success(d); /* request errors prove the server answered */
		return 0;
	}
	note_failure(d, c->msg);
	pthread_mutex_lock(&d->mu);
	int fb = d->state == KG_DEGRADE_DEGRADED;
	pthread_mutex_unlock(&d->mu);
	return fb;
}

/* Takes dmu for a fallback call; 0 if the store is still degraded, 1 if it
 * recovered meanwhile (dmu released: route again). */
static int fallback_enter(dg *d)
{
	pthread_mutex_lock(&d->dmu);
	pthread_mutex_lock(&d->mu);
	int degraded = d->state == KG_DEGRADE_DEGRADED;
	pthread_mutex_unlock(&d->mu);
	if (!degraded) {
		pthread_mutex_unlock(&d->dmu);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Writes                                                               */
/* ------------------------------------------------------------------ */

typedef struct wop {
	int op;
	unsigned flags;
	const kg_entity *ents;
	const kg_relation *rels;
	size_t n;
	const char *id;
	size_t *added;
} wop;

static int apply_op(kg_backend *b, kg_call *c, const wop *w)
{
	switch (w->op) {
	case KG_JOP_ADD_ENTITIES:
		return b->add_entities(b, c, w->ents, w->n, w->flags, w->added);
	case KG_JOP_UPDATE_ENTITY:
		return b->update_entity(b, c, w->ents, w->flags);
	case KG_JOP_DELETE_ENTITY:
		return b->delete_entity(b, c, w->id);
	case KG_JOP_ADD_RELATIONS:
		return b->add_relations(b, c, w->rels, w->n, w->flags, w->added);
	case KG_JOP_UPDATE_RELATION:
		return b->update_relation(b, c, w->rels, w->flags);
	case KG_JOP_DELETE_RELATION:
		return b->delete_relation(b, c, w->id);
	default:
		return b->clear(b, c);
	}
}

static void encode_op(dg_buf *buf, const char *tenant, const wop *w)
{
	switch (w->op) {
	case KG_JOP_ADD_ENTITIES:
	case KG_JOP_UPDATE_ENTITY:
		dg_encode_entities(buf, w->op, tenant, w->flags, w->ents, w->n);
		break;
	case KG_JOP_ADD_RELATIONS:
	case KG_JOP_UPDATE_RELATION:
		dg_encode_relations(buf, w->op, tenant, w->flags, w->rels, w->n);
		break;
	case KG_JOP_DELETE_ENTITY:
	case KG_JOP_DELETE_RELATION:
		dg_encode_id(buf, w->op, tenant, w->id);
		break;
	default:
		dg_encode_clear(buf, tenant);
	}
}

/* The warm cache follows successful entity writes. */
static void cache_after_write(dg *d, const char *tenant, const wop *w)
{
	switch (w->op) {
	case KG_JOP_ADD_ENTITIES:
	case KG_JOP_UPDATE_ENTITY:
		for (size_t i = 0; i < w->n; i++)
			lru_put(&d->cache, tenant, &w->ents[i]);
		break;
	case KG_JOP_DELETE_ENTITY:
		lru_remove(&d->cache, tenant, w->id);
		break;
	case KG_JOP_CLEAR:
		lru_clear_tenant(&d->cache, tenant);
		break;
	default:
		break;
	}
}

#define RETRY_ROUTE 1

/* A write answered by the fallback: applied there inside a fallback
 * transaction, journaled and fsynced, then committed, so the fallback
 * never holds a write the journal lacks. */
static int fallback_write(dg *d, kg_call *c, const wop *w)
{
	if (!d->have_journal) {
		char lf[512];
		last_failure(d, lf, sizeof(lf));
		set_degraded_flag(d, c, 1);
		return kg_call_error(c, KG_ECONNLOST,
		                     "the primary store is down and writes are refused while degraded because no "
		                     "journal_path is set (kg_degrade_options); retry after recovery: %s", lf);
	}
	if (fallback_enter(d))
		return RETRY_ROUTE;
	set_degraded_flag(d, c, 1);
	kg_call fc;
	fill_call(&fc, c, NULL);
	void *txn = NULL;
	int rc = d->fb->txn_begin(d->fb, &fc, &txn);
	if (rc == KG_OK) {
		fc.txn = txn;
		rc = apply_op(d->fb, &fc, w);
		if (rc == KG_OK) {
			dg_buf buf = { 0 };
			encode_op(&buf, c->tenant, w);
			rc = buf.oom ? kg_call_error(c, KG_ENOMEM, "out of memory journaling a write")
			             : dg_journal_append(&d->j, buf.p, buf.len, c->msg, c->msgcap);
			dg_buf_free(&buf);
		}
		char m2[256];
		kg_call ec = { c->tenant, NULL, m2, sizeof(m2), 0 };
		if (rc == KG_OK) {
			rc = d->fb->txn_commit(d->fb, &ec, txn);
			if (rc == KG_OK) {
				pthread_mutex_lock(&d->mu);
				d->st.journaled++;
				pthread_mutex_unlock(&d->mu);
			}
		} else {
			d->fb->txn_rollback(d->fb, &ec, txn);
		}
	}
	pthread_mutex_unlock(&d->dmu);
	if (rc == KG_OK)
		cache_after_write(d, c->tenant, w);
	return rc;
}

static int do_write(dg *d, kg_call *c, const wop *w)
{
	if (c->txn) {
		dg_txn *t = c->txn;
		kg_call pc;
		fill_call(&pc, c, t->inner);
		int rc = apply_op(d->pb, &pc, w);
		after_primary(d, c, rc); /* a transaction never moves to the fallback */
		if (rc == KG_OK)
			cache_after_write(d, c->tenant, w);
		return rc;
	}
	for (;;) {
		kg_backend *pb = NULL;
		int r = route(d, c, &pb);
		if (r < 0) {
			set_degraded_flag(d, c, 0);
			return r;
		}
		if (r == R_PRIMARY) {
			kg_call pc;
			fill_call(&pc, c, NULL);
			int rc = apply_op(pb, &pc, w);
			if (!after_primary(d, c, rc)) {
				if (rc == KG_OK)
					cache_after_write(d, c->tenant, w);
				return rc;
			}
		}
		int rc = fallback_write(d, c, w);
		if (rc != RETRY_ROUTE)
			return rc;
	}
}

static int dg_add_entities(kg_backend *b, kg_call *c, const kg_entity *e, size_t n, unsigned flags, size_t *added)
{
	wop w = { KG_JOP_ADD_ENTITIES, flags, e, NULL, n, NULL, added };
	return do_write((dg *)b, c, &w);
}

static int dg_update_entity(kg_backend *b, kg_call *c, const kg_entity *e, unsigned flags)
{
	wop w = { KG_JOP_UPDATE_ENTITY, flags, e, NULL, 1, NULL, NULL };
	return do_write((dg *)b, c, &w);
}

static int dg_delete_entity(kg_backend *b, kg_call *c, const char *id)
{
	wop w = { KG_JOP_DELETE_ENTITY, 0, NULL, NULL, 1, id, NULL };
	return do_write((dg *)b, c, &w);
}

static int dg_add_relations(kg_backend *b, kg_call *c, const kg_relation *r, size_t n, unsigned flags,
                            size_t *added)
{
	wop w = { KG_JOP_ADD_RELATIONS, flags, NULL, r, n, NULL, added };
	return do_write((dg *)b, c, &w);
}

static int dg_update_relation(kg_backend *b, kg_call *c, const kg_relation *r, unsigned flags)
{
	wop w = { KG_JOP_UPDATE_RELATION, flags, NULL, r, 1, NULL, NULL };
	return do_write((dg *)b, c, &w);
}

static int dg_delete_relation(kg_backend *b, kg_call *c, const char *id)
{
	wop w = { KG_JOP_DELETE_RELATION, 0, NULL, NULL, 1, id, NULL };
	return do_write((dg *)b, c, &w);
}

static int dg_clear(kg_backend *b, kg_call *c)
{
	wop w = { KG_JOP_CLEAR, 0, NULL, NULL, 0, NULL, NULL };
	return do_write((dg *)b, c, &w);
}

/* ------------------------------------------------------------------ */
/* Reads                                                                */
/* ------------------------------------------------------------------ */

/*
 * READ(expr) runs `expr` against backend `B` with call `C`: first the
 * primary (or the transaction's), then, if the store is or becomes
 * degraded, the fallback under dmu. `expr` may use B and C only.
 */
#define READ(d, c, expr, on_ok)                                       \
	do {                                                              \
		kg_backend *B;                                                \
		kg_call C_;                                                   \
		kg_call *C = &C_;                                             \
		if ((c)->txn) {                                               \
			B = (d)->pb;                                              \
			fill_call(C, (c), ((dg_txn *)(c)->txn)->inner);           \
			int rc_ = (expr);                                         \
			after_primary((d), (c), rc_);                             \
			if (rc_ == KG_OK) {                                       \
				on_ok;                                                \
			}                                                         \
			return rc_;                                               \
		}                                                             \
		for (;;) {                                                    \
			int r_ = route((d), (c), &B);                             \
			if (r_ < 0) {                                             \
				set_degraded_flag((d), (c), 0);                       \
				return r_;                                            \
			}                                                         \
			if (r_ == R_PRIMARY) {                                    \
				fill_call(C, (c), NULL);                              \
				int rc_ = (expr);                                     \
				if (!after_primary((d), (c), rc_)) {                  \
					if (rc_ == KG_OK) {                               \
						on_ok;                                        \
					}                                                 \
					return rc_;                                       \
				}                                                     \
			}                                                         \
			if (fallback_enter(d))                                    \
				continue;                                             \
			B = (d)->fb;                                              \
			fill_call(C, (c), NULL);                                  \
			int rc_ = (expr);                                         \
			pthread_mutex_unlock(&(d)->dmu);                          \
			set_degraded_flag((d), (c), 1);                           \
			if (rc_ == KG_OK) {                                       \
				on_ok;                                                \
			}                                                         \
			return rc_;                                               \
		}                                                             \
	} while (0)

/* Inside READ: B's own method if it has one, else the core's generic
 * version built on B's basic calls. */
#define OWN_OR_GENERIC(fn, ...) (B->fn ? B->fn(B, C, __VA_ARGS__) : kg_generic_##fn(B, C, __VA_ARGS__))

static int dg_get_entity(kg_backend *b, kg_call *c, const char *id, kg_entity **out)
{
	dg *d = (dg *)b;
	READ(d, c, B->get_entity(B, C, id, out), lru_put(&d->cache, c->tenant, *out));
}

static int dg_get_relation(kg_backend *b, kg_call *c, const char *id, kg_relation **out)
{
	dg *d = (dg *)b;
	READ(d, c, B->get_relation(B, C, id, out), (void)0);
}

static int dg_relations_of(kg_backend *b, kg_call *c, const char *id, const char *type, kg_direction dir,
                           kg_relation_list **out)
{
	dg *d = (dg *)b;
	READ(d, c, B->relations_of(B, C, id, type, dir, out), (void)0);
}

/* A primary's iterator, wrapped so that a connection lost mid-stream
 * counts toward max_failures. The stream itself is not moved to the
 * fallback: its position means nothing there. */
typedef struct dg_iter {
	kg_iter base;
	kg_iter *inner;
	dg *d;
} dg_iter;

static int dg_iter_next(kg_iter *it, kg_call *c, const void **item)
{
	dg_iter *w = (dg_iter *)it;
	int rc = w->inner->next(w->inner, c, item);
	if (dg_conn_class(rc))
		note_failure(w->d, c->msg);
	return rc;
}

static void dg_iter_free(kg_iter *it)
{
	dg_iter *w = (dg_iter *)it;
	w->inner->free(w->inner);
	free(w);
}

/* Wraps *out when it came from the primary (B != fallback). */
static void wrap_iter(dg *d, kg_backend *from, kg_iter **out)
{
	if (from == d->fb || !*out)
		return;
	dg_iter *w = malloc(sizeof(*w));
	if (!w)
		return; /* unwrapped: still correct, only uncounted */
	w->base.next = dg_iter_next;
	w->base.free = dg_iter_free;
	w->inner = *out;
	w->d = d;
	*out = &w->base;
}

static int dg_iter_entities(kg_backend *b, kg_call *c, const char *type, kg_iter **out)
{
	dg *d = (dg *)b;
	READ(d, c, B->iter_entities(B, C, type, out), wrap_iter(d, B, out));
}

static int dg_iter_relations(kg_backend *b, kg_call *c, const char *type, kg_iter **out)
{
	dg *d = (dg *)b;
	READ(d, c, B->iter_relations(B, C, type, out), wrap_iter(d, B, out));
}

static int dg_stats(kg_backend *b, kg_call *c, kg_stats **out)
{
	dg *d = (dg *)b;
	READ(d, c, B->stats(B, C, out), (void)0);
}

static int dg_list_tenants(kg_backend *b, kg_call *c, char ***out, size_t *n)
{
	dg *d = (dg *)b;
	READ(d, c, B->list_tenants(B, C, out, n), (void)0);
}

static int dg_neighbors(kg_backend *b, kg_call *c, const char *id, const char *type, kg_direction dir,
                        kg_entity_list **out)
{
	dg *d = (dg *)b;
	READ(d, c, OWN_OR_GENERIC(neighbors, id, type, dir, out), (void)0);
}

static int dg_traverse(kg_backend *b, kg_call *c, const char *start, const char *type, int depth, size_t maxr,
                       kg_path_list **out)
{
	dg *d = (dg *)b;
	READ(d, c, OWN_OR_GENERIC(traverse, start, type, depth, maxr, out), (void)0);
}

static int dg_find_paths(kg_backend *b, kg_call *c, const char *src, const char *dst, int depth, size_t maxp,
                         kg_path_list **out)
{
	dg *d = (dg *)b;
	READ(d, c, OWN_OR_GENERIC(find_paths, src, dst, depth, maxp, out), (void)0);
}

static int dg_subgraph(kg_backend *b, kg_call *c, const char *const *ids, size_t n, kg_subgraph **out)
{
	dg *d = (dg *)b;
	READ(d, c, OWN_OR_GENERIC(subgraph, ids, n, out), (void)0);
}

static int dg_list_entities(kg_backend *b, kg_call *c, const char *type, size_t limit, size_t offset,
                            kg_entity_list **out)
{
	dg *d = (dg *)b;
	READ(d, c, OWN_OR_GENERIC(list_entities, type, limit, offset, out), (void)0);
}

static int dg_vector_search(kg_backend *b, kg_call *c, const float *q, size_t dim, const char *type, size_t k,
                            double th, kg_entity_list **out)
{
	dg *d = (dg *)b;
	READ(d, c, OWN_OR_GENERIC(vector_search, q, dim, type, k, th, out), (void)0);
}

static int dg_text_search(kg_backend *b, kg_call *c, const char *q, const char *type, size_t k, double th,
                          kg_text_method m, kg_entity_list **out)
{
	dg *d = (dg *)b;
	READ(d, c, OWN_OR_GENERIC(text_search, q, type, k, th, m, out), (void)0);
}

static int dg_lookup_by_property(kg_backend *b, kg_call *c, const char *name, const char *value,
                                 kg_entity_list **out)
{
	dg *d = (dg *)b;
	READ(d, c, OWN_OR_GENERIC(lookup_by_property, name, value, out), (void)0);
}

/* An index is the primary's business: while degraded it is refused rather
 * than silently made on the fallback only. */
static int dg_add_indexed_property(kg_backend *b, kg_call *c, const char *name)
{
	dg *d = (dg *)b;
	kg_backend *pb = NULL;
	int r = c->txn ? R_PRIMARY : route(d, c, &pb);
	if (c->txn)
		pb = d->pb;
	if (r < 0)
		return r;
	if (r == R_FALLBACK) {
		set_degraded_flag(d, c, 1);
		return kg_call_error(c, KG_ECONNLOST,
		                     "kg_add_indexed_property needs the primary store, which is down; lookups still "
		                     "work (by scanning the fallback); call it again after recovery");
	}
	kg_call pc;
	fill_call(&pc, c, c->txn ? ((dg_txn *)c->txn)->inner : NULL);
	int rc = pb->add_indexed_property ? pb->add_indexed_property(pb, &pc, name) : KG_OK;
	after_primary(d, c, rc);
	return rc;
}

/* Backend-specific requests go to the primary (e.g. pool statistics). */
static int dg_control(kg_backend *b, kg_call *c, int op, void *arg)
{
	dg *d = (dg *)b;
	pthread_mutex_lock(&d->mu);
	kg_backend *pb = d->pb;
	pthread_mutex_unlock(&d->mu);
	if (!pb || !pb->control)
		return kg_call_error(c, KG_EUNSUPPORTED, "control opcode 0x%x: the primary %s", (unsigned)op,
		                     pb ? "has no control requests" : "is not open");
	kg_call pc;
	fill_call(&pc, c, c->txn ? ((dg_txn *)c->txn)->inner : NULL);
	return pb->control(pb, &pc, op, arg);
}

/* ------------------------------------------------------------------ */
/* Transactions: on the primary only                                    */
/* ------------------------------------------------------------------ */

static int dg_txn_begin(kg_backend *b, kg_call *c, void **txn)
{
	dg *d = (dg *)b;
	kg_backend *pb = NULL;
	int r = route(d, c, &pb);
	if (r < 0)
		return r;
	if (r == R_FALLBACK) {
		char lf[512];
		last_failure(d, lf, sizeof(lf));
		set_degraded_flag(d, c, 1);
		return kg_call_error(c, KG_ECONNLOST,
		                     "transactions need the primary store, which is down (%s); single calls are served "
		                     "by the fallback meanwhile: retry the transaction after recovery", lf);
	}
	if (!pb->txn_begin)
		return kg_call_error(c, KG_EUNSUPPORTED, "the primary backend %s does not support transactions", pb->name);
	dg_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return kg_call_error(c, KG_ENOMEM, "out of memory beginning a transaction");
	kg_call pc;
	fill_call(&pc, c, NULL);
	int rc = pb->txn_begin(pb, &pc, &t->inner);
	after_primary(d, c, rc);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*txn = t;
	return KG_OK;
}

static int txn_end(dg *d, kg_call *c, void *txn, int commit)
{
	dg_txn *t = txn;
	kg_call pc;
	fill_call(&pc, c, t->inner);
	int rc = commit ? d->pb->txn_commit(d->pb, &pc, t->inner) : d->pb->txn_rollback(d->pb, &pc, t->inner);
	after_primary(d, c, rc);
	free(t);
	return rc;
}

static int dg_txn_commit(kg_backend *b, kg_call *c, void *txn) { return txn_end((dg *)b, c, txn, 1); }
static int dg_txn_rollback(kg_backend *b, kg_call *c, void *txn) { return txn_end((dg *)b, c, txn, 0); }

/* ------------------------------------------------------------------ */
/* Open, free, status                                                   */
/* ------------------------------------------------------------------ */

/* Background recovery: wakes every interval while degraded. */
static void *recovery_main(void *arg)
{
	dg *d = arg;
	pthread_mutex_lock(&d->mu);
	while (!d->thread_stop) {
		int64_t now = kg_now_us();
		if (d->state != KG_DEGRADE_NORMAL && !d->recovering && now >= d->next_attempt) {
			pthread_mutex_unlock(&d->mu);
			char msg[1024] = "";
			kg_call c = { NULL, NULL, msg, sizeof(msg), 0 };
			recover(d, &c);
			pthread_mutex_lock(&d->mu);
			continue;
		}
		int64_t wait_us = d->state != KG_DEGRADE_NORMAL && d->next_attempt > now ? d->next_attempt - now
		                                                                          : (int64_t)(interval_of(d) * 1e6);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = (int64_t)ts.tv_nsec + (wait_us % 1000000) * 1000;
		ts.tv_sec += (time_t)(wait_us / 1000000 + ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&d->thread_cv, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static void dg_free(kg_backend *b)
{
	dg *d = (dg *)b;
	if (!d)
		return;
	if (d->thread_running) {
		pthread_mutex_lock(&d->mu);
		d->thread_stop = 1;
		pthread_cond_broadcast(&d->thread_cv);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->thread, NULL);
	}
	pthread_cond_destroy(&d->thread_cv);
	if (d->primary)
		kg_close(d->primary);
	if (d->fb)
		d->fb->free(d->fb);
	if (d->have_journal)
		dg_journal_close(&d->j);
	lru_destroy(&d->cache);
	pthread_key_delete(d->key);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->dmu);
	pthread_mutex_destroy(&d->conn_mu);
	free(d->journal_path);
	free(d->uri);
	free(d);
}

static int connect_uri(void *user, kg_store **out, char *err, size_t errcap)
{
	const char *uri = user;
	kg_store *s = NULL;
	int rc = kg_open(uri, &s);
	if (rc < 0) {
		snprintf(err, errcap, "%s", kg_errmsg(s));
		kg_close(s);
		*out = NULL;
		return rc;
	}
	*out = s;
	return KG_OK;
}

static dg *dg_from(kg_store *s)
{
	kg_backend *b = kg_store_backend(s);
	return b && b->free == dg_free ? (dg *)b : NULL;
}

int kg_degrade_is(kg_store *s) { return dg_from(s) != NULL; }

int kg_degrade_open_with(kg_degrade_connect_fn connect, void *user, const kg_degrade_options *o, kg_store **out,
                         char *err, size_t errcap)
{
	char dummy[8];
	if (!err || !errcap) {
		err = dummy;
		errcap = sizeof(dummy);
	}
	err[0] = '\0';
	if (!out) {
		snprintf(err, errcap, "kg_degrade_open: out must not be NULL");
		return KG_EINVAL;
	}
	*out = NULL;
	if (!connect) {
		snprintf(err, errcap, "kg_degrade_open: no primary given (URI or connect function)");
		return KG_EINVAL;
	}
	if (!o || o->version < 1 || o->version > KG_DEGRADE_OPTIONS_VERSION) {
		snprintf(err, errcap, "kg_degrade_open: options %s; start from KG_DEGRADE_OPTIONS_INIT",
		         o ? "have an unknown version" : "are NULL");
		return KG_EINVAL;
	}
	if (o->max_failures < 0 || o->recovery_interval < 0 || o->recovery_interval != o->recovery_interval ||
	    (o->policy != KG_DEGRADE_JOURNAL_WINS && o->policy != KG_DEGRADE_KEEP_PRIMARY)) {
		snprintf(err, errcap, "kg_degrade_open: max_failures (%d) and recovery_interval (%g) must be >= 0 and "
		         "policy (%d) KG_DEGRADE_JOURNAL_WINS or KG_DEGRADE_KEEP_PRIMARY",
		         o->max_failures, o->recovery_interval, (int)o->policy);
		return KG_EINVAL;
	}
	dg *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errcap, "kg_degrade_open: out of memory");
		return KG_ENOMEM;
	}
	d->o = *o;
	d->connect = connect;
	d->cuser = user;
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_init(&d->dmu, NULL);
	pthread_mutex_init(&d->conn_mu, NULL);
	pthread_cond_init(&d->thread_cv, NULL);
	size_t warm = o->warm_cache_size == KG_DEGRADE_NO_WARM ? 0 : o->warm_cache_size ? o->warm_cache_size : 1000;
	int rc = lru_init(&d->cache, warm);
	if (rc == KG_OK && pthread_key_create(&d->key, NULL) != 0)
		rc = KG_ENOMEM;
	if (rc < 0) {
		snprintf(err, errcap, "kg_degrade_open: out of memory");
		free(d->cache.b);
		pthread_mutex_destroy(&d->cache.mu);
		pthread_mutex_destroy(&d->mu);
		pthread_mutex_destroy(&d->dmu);
		pthread_mutex_destroy(&d->conn_mu);
		pthread_cond_destroy(&d->thread_cv);
		free(d);
		return rc;
	}
	kg_backend *b = &d->base;
	b->version = KG_BACKEND_VERSION;
	b->name = "degrade";
	b->caps = KG_CAP_TRANSACTIONS | KG_CAP_PERSISTENT;
	b->add_entities = dg_add_entities;
	b->get_entity = dg_get_entity;
	b->update_entity = dg_update_entity;
	b->delete_entity = dg_delete_entity;
	b->add_relations = dg_add_relations;
	b->get_relation = dg_get_relation;
	b->update_relation = dg_update_relation;
	b->delete_relation = dg_delete_relation;
	b->relations_of = dg_relations_of;
	b->iter_entities = dg_iter_entities;
	b->iter_relations = dg_iter_relations;
	b->stats = dg_stats;
	b->clear = dg_clear;
	b->list_tenants = dg_list_tenants;
	b->txn_begin = dg_txn_begin;
	b->txn_commit = dg_txn_commit;
	b->txn_rollback = dg_txn_rollback;
	b->neighbors = dg_neighbors;
	b->traverse = dg_traverse;
	b->find_paths = dg_find_paths;
	b->subgraph = dg_subgraph;
	b->list_entities = dg_list_entities;
	b->vector_search = dg_vector_search;
	b->text_search = dg_text_search;
	b->add_indexed_property = dg_add_indexed_property;
	b->lookup_by_property = dg_lookup_by_property;
	b->control = dg_control;
	b->free = dg_free;

	int journal_existed = 1;
	if (o->journal_path) {
		journal_existed = access(o->journal_path, F_OK) == 0;
		if (!(d->journal_path = strdup(o->journal_path))) {
			dg_free(b);
			snprintf(err, errcap, "kg_degrade_open: out of memory");
			return KG_ENOMEM;
		}
		d->o.journal_path = d->journal_path;
		char jerr[1024];
		rc = dg_journal_open(&d->j, o->journal_path, 0, 1, jerr, sizeof(jerr));
		if (rc < 0) {
			dg_free(b);
			snprintf(err, errcap, "kg_degrade_open: %s", jerr);
			return rc;
		}
		d->have_journal = 1;
	}

	/* The primary: unreachable is an outage, anything else an error. */
	char msg[1024] = "";
	kg_call c = { NULL, NULL, msg, sizeof(msg), 0 };
	rc = ensure_primary(d, &c);
	if (rc < 0 && !dg_conn_class(rc)) {
		snprintf(err, errcap, "%s", msg);
		if (!journal_existed) { /* a failed open leaves no files behind */
			unlink(d->j.cursor_path);
			unlink(d->j.path);
		}
		dg_free(b);
		return rc;
	}
	if (rc < 0)
		note_failure(d, msg);
	if (d->have_journal && d->j.pending) {
		/* An earlier process left acknowledged writes: they go first. */
		pthread_mutex_lock(&d->mu);
		int normal = d->state == KG_DEGRADE_NORMAL;
		pthread_mutex_unlock(&d->mu);
		int replayed = 0;
		if (normal && d->pb) {
			pthread_mutex_lock(&d->dmu);
			rc = replay_locked(d, &c);
			pthread_mutex_unlock(&d->dmu);
			replayed = rc == KG_OK;
			if (rc < 0 && dg_conn_class(rc))
				note_failure(d, msg);
		}
		if (!replayed && normal) {
			pthread_mutex_lock(&d->mu);
			__atomic_store_n(&d->failures, (unsigned)(d->o.max_failures > 0 ? d->o.max_failures : 3),
			                 __ATOMIC_RELAXED);
			pthread_mutex_unlock(&d->mu);
			enter_degraded(d);
		}
	}
	if (o->recovery_thread) {
		if (pthread_create(&d->thread, NULL, recovery_main, d) != 0) {
			dg_free(b);
			snprintf(err, errcap, "kg_degrade_open: cannot start the recovery thread");
			return KG_ENOMEM;
		}
		d->thread_running = 1;
	}
	kg_store *s = NULL;
	rc = kg_store_from_backend(b, &s); /* frees b on failure */
	if (rc < 0) {
		snprintf(err, errcap, "%s", kg_errmsg(s));
		kg_close(s);
		return rc;
	}
	*out = s;
	return KG_OK;
}

int kg_degrade_open(const char *primary_uri, const kg_degrade_options *o, kg_store **out, char *err,
                    size_t errcap)
{
	if (!primary_uri || !*primary_uri) {
		if (err && errcap)
			snprintf(err, errcap, "kg_degrade_open: the primary URI is empty (e.g. postgresql://host/db)");
		if (out)
			*out = NULL;
		return KG_EINVAL;
	}
	char *uri = strdup(primary_uri);
	if (!uri) {
		if (out)
			*out = NULL;
		return KG_ENOMEM;
	}
	int rc = kg_degrade_open_with(connect_uri, uri, o, out, err, errcap);
	if (rc < 0) {
		free(uri);
		return rc;
	}
	dg_from(*out)->uri = uri; /* freed with the wrapper */
	return rc;
}

const char *kg_degrade_state_name(kg_degrade_state st)
{
	switch (st) {
	case KG_DEGRADE_NORMAL:
		return "normal";
	case KG_DEGRADE_DEGRADED:
		return "degraded";
	case KG_DEGRADE_FAILED:
		return "failed";
	}
	return "unknown";
}

int kg_degrade_status_get(kg_store *s, kg_degrade_status *out)
{
	dg *d = dg_from(s);
	if (!d || !out)
		return KG_EINVAL;
	pthread_mutex_lock(&d->mu);
	*out = d->st;
	out->state = d->state;
	out->failures = d->failures;
	pthread_mutex_unlock(&d->mu);
	/* The journal counters change under dmu; a status read must not wait
	 * for a replay, so read them without it (a moment stale at worst). */
	out->pending = d->have_journal ? __atomic_load_n(&d->j.pending, __ATOMIC_RELAXED) : 0;
	return KG_OK;
}

int kg_degrade_last_call_degraded(kg_store *s)
{
	dg *d = dg_from(s);
	return d && pthread_getspecific(d->key) != NULL;
}

int kg_degrade_try_recover(kg_store *s, char *err, size_t errcap)
{
	dg *d = dg_from(s);
	char msg[1024] = "";
	if (!d) {
		if (err && errcap)
			snprintf(err, errcap, "kg_degrade_try_recover: not a degrading store (open it with kg_degrade_open)");
		return KG_EINVAL;
	}
	kg_call c = { NULL, NULL, msg, sizeof(msg), 0 };
	int rc = recover(d, &c);
	if (err && errcap)
		snprintf(err, errcap, "%s", rc == KG_OK ? "" : msg);
	return rc;
}
