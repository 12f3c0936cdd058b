/*
 * store.c - the public API: opening stores, handles (base, tenant view,
 * transaction), argument validation, error messages, and dispatch to the
 * backend or to the core's generic algorithms when the backend has no
 * faster way.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kgstore/backend.h"

#define KG_MSG_MAX 1024

/* ------------------------------------------------------------------ */
/* Per-handle, per-thread error messages                                */
/* ------------------------------------------------------------------ */

/* Each thread that has had an error on a handle owns one slot; slots are
 * allocated one by one so a pointer returned by kg_errmsg stays valid while
 * other threads add theirs. Only failing calls and kg_errmsg take the lock. */
typedef struct err_slot {
	pthread_t thread;
	char msg[KG_MSG_MAX];
} err_slot;

typedef struct err_table {
	pthread_mutex_t lock;
	err_slot **slots;
	size_t n, cap;
} err_table;

struct kg_store {
	kg_backend *backend; /* owned by the base handle; NULL: failed open */
	kg_store *parent;    /* the handle a view or transaction came from */
	char *tenant;        /* NULL = global namespace */
	void *txn;           /* backend transaction of a transaction handle */
	int is_txn;
	int ended;           /* a view whose transaction has ended */
	kg_store **views;    /* a transaction's tenant views still open */
	size_t n_views, cap_views;
	err_table errors;
};

static err_slot *err_slot_for_thread(err_table *t, int create)
{
	pthread_t self = pthread_self();
	for (size_t i = 0; i < t->n; i++)
		if (pthread_equal(t->slots[i]->thread, self))
			return t->slots[i];
	if (!create)
		return NULL;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 4;
		err_slot **ns = realloc(t->slots, ncap * sizeof(*ns));
		if (!ns)
			return NULL;
		t->slots = ns;
		t->cap = ncap;
	}
	err_slot *slot = calloc(1, sizeof(*slot));
	if (!slot)
		return NULL;
	slot->thread = self;
	t->slots[t->n++] = slot;
	return slot;
}

static void store_set_message(kg_store *s, const char *msg)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->errors.lock);
	err_slot *slot = err_slot_for_thread(&s->errors, 1);
	if (slot)
		snprintf(slot->msg, sizeof(slot->msg), "%s", msg);
	pthread_mutex_unlock(&s->errors.lock);
}

static int store_error(kg_store *s, int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static int store_error(kg_store *s, int code, const char *fmt, ...)
{
	char buf[KG_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	store_set_message(s, buf);
	return code;
}

const char *kg_errmsg(kg_store *s)
{
	if (!s)
		return "no store handle (the open failed before one could be made: out of memory)";
	pthread_mutex_lock(&s->errors.lock);
	err_slot *slot = err_slot_for_thread(&s->errors, 0);
	pthread_mutex_unlock(&s->errors.lock);
	return slot ? slot->msg : "";
}

static void err_table_destroy(err_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->slots[i]);
	free(t->slots);
	pthread_mutex_destroy(&t->lock);
}

/* ------------------------------------------------------------------ */
/* Calls                                                                */
/* ------------------------------------------------------------------ */

/* The context every backend operation gets. The message buffer lives on
 * the caller's stack and is copied to the handle only when a call fails. */
typedef struct call_frame {
	kg_call c;
	char msg[KG_MSG_MAX];
} call_frame;

static void frame_init(call_frame *f, kg_store *s)
{
	f->c.tenant = s->tenant;
	f->c.txn = s->txn;
	f->c.msg = f->msg;
	f->c.msgcap = sizeof(f->msg);
	f->c.result_flags = 0;
	f->msg[0] = '\0';
}

/* Records a failure's message on the handle; returns rc. */
static int frame_finish(kg_store *s, call_frame *f, int rc)
{
	if (rc < 0) {
		if (!f->msg[0])
			snprintf(f->msg, sizeof(f->msg), "%s (backend %s gave no detail)",
			         kg_strerror(rc), s->backend ? s->backend->name : "?");
		store_set_message(s, f->msg);
	}
	return rc;
}

/* Common entry checks; returns 0 or an error already recorded. */
static int check_store(kg_store *s)
{
	if (!s)
		return KG_EINVAL;
	if (s->ended)
		return store_error(s, KG_EINVAL,
		                   "this tenant view's transaction has ended (commit or rollback): close the view, "
		                   "and make views of the next transaction from its handle");
	if (!s->backend)
		return store_error(s, KG_EINVAL,
		                   "this handle is from a failed kg_open: read kg_errmsg() of the open, "
		                   "fix the cause and open again");
	return 0;
}

/* A transaction ends: the tenant views made of it stop working (their
 * calls fail with a message) but stay valid handles for kg_close. */
static void detach_views(kg_store *t)
{
	for (size_t i = 0; i < t->n_views; i++) {
		kg_store *v = t->views[i];
		v->parent = NULL;
		v->backend = NULL;
		v->txn = NULL;
		v->ended = 1;
	}
	free(t->views);
	t->views = NULL;
	t->n_views = t->cap_views = 0;
}

#define BEGIN_CALL(s)                      \
	call_frame frame_;                     \
	do {                                   \
		int chk_ = check_store(s);         \
		if (chk_ < 0)                      \
			return chk_;                   \
		frame_init(&frame_, s);            \
	} while (0)

#define END_CALL(s, expr) return frame_finish((s), &frame_, (expr))

static int need(kg_store *s, const void *p, const char *what, const char *fn)
{
	if (p)
		return 0;
	return store_error(s, KG_EINVAL, "%s: %s must not be NULL", fn, what);
}

static int need_id(kg_store *s, const char *id, const char *what, const char *fn)
{
	if (id && *id)
		return 0;
	return store_error(s, KG_EINVAL, "%s: %s must be a non-empty string", fn, what);
}

/* ------------------------------------------------------------------ */
/* Validation of what is written                                        */
/* ------------------------------------------------------------------ */

static int check_properties(kg_store *s, const char *props, const char *kind, const char *id)
{
	if (!props)
		return 0;
	if (!kg_json_is_object(props, strlen(props)))
		return store_error(s, KG_EINVAL,
		                   "%s '%s': properties are not a valid JSON object (UTF-8 text like "
		                   "{\"name\": \"Alice\"}); fix the JSON and retry", kind, id);
	return 0;
}

static int check_entity(kg_store *s, const kg_entity *e, const char *fn)
{
	int rc;
	if ((rc = need(s, e, "entity", fn)) < 0)
		return rc;
	if ((rc = need_id(s, e->id, "entity id", fn)) < 0)
		return rc;
	if (!e->entity_type || !*e->entity_type)
		return store_error(s, KG_EINVAL, "%s: entity '%s' has no entity_type; give it one (e.g. \"Person\")", fn, e->id);
	if (e->embedding && e->embedding_dim == 0)
		return store_error(s, KG_EINVAL, "%s: entity '%s' has an embedding with embedding_dim 0", fn, e->id);
	if (e->embedding)
		for (size_t i = 0; i < e->embedding_dim; i++)
			if (!isfinite(e->embedding[i]))
				return store_error(s, KG_EINVAL, "%s: entity '%s': embedding[%zu] is not a finite number", fn, e->id, i);
	return check_properties(s, e->properties, "entity", e->id);
}

static int check_relation(kg_store *s, const kg_relation *r, const char *fn)
{
	int rc;
	if ((rc = need(s, r, "relation", fn)) < 0)
		return rc;
	if ((rc = need_id(s, r->id, "relation id", fn)) < 0)
		return rc;
	if (!r->relation_type || !*r->relation_type)
		return store_error(s, KG_EINVAL, "%s: relation '%s' has no relation_type; give it one (e.g. \"KNOWS\")", fn, r->id);
	if (!r->source_id || !*r->source_id || !r->target_id || !*r->target_id)
		return store_error(s, KG_EINVAL, "%s: relation '%s' needs a non-empty source_id and target_id", fn, r->id);
	if (!(r->weight >= 0.0 && r->weight <= 1.0))
		return store_error(s, KG_EINVAL, "%s: relation '%s' has weight %g; weights must be within [0, 1]", fn, r->id, r->weight);
	return check_properties(s, r->properties, "relation", r->id);
}

/* Fills defaults the backends rely on: "{}" properties and timestamps. */
static void entity_defaults(kg_entity *e, int64_t now)
{
	if (!e->properties)
		e->properties = "{}";
	if (!e->embedding)
		e->embedding_dim = 0;
	if (!e->created_at)
		e->created_at = now;
	if (!e->updated_at)
		e->updated_at = e->created_at > now ? e->created_at : now;
	e->tenant_id = NULL;
}

static void relation_defaults(kg_relation *r, int64_t now)
{
	if (!r->properties)
		r->properties = "{}";
	if (!r->created_at)
		r->created_at = now;
	if (!r->updated_at)
		r->updated_at = r->created_at > now ? r->created_at : now;
	r->tenant_id = NULL;
}

/* A small open-addressing set of strings, to find ids repeated in a batch. */
typedef struct id_set {
	const char **slots;
	size_t mask;
} id_set;

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int id_set_init(id_set *set, size_t n)
{
	size_t cap = 16;
	while (cap < n * 2)
		cap <<= 1;
	set->slots = calloc(cap, sizeof(*set->slots));
	set->mask = cap - 1;
	return set->slots ? 0 : KG_ENOMEM;
}

/* Returns 1 if inserted, 0 if it was there. */
static int id_set_insert(id_set *set, const char *id)
{
	size_t i = hash_str(id) & set->mask;
	while (set->slots[i]) {
		if (strcmp(set->slots[i], id) == 0)
			return 0;
		i = (i + 1) & set->mask;
	}
	set->slots[i] = id;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */
/* ------------------------------------------------------------------ */

static kg_store *store_alloc(void)
{
	kg_store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->errors.lock, NULL);
	return s;
}

static void store_free(kg_store *s)
{
	if (!s)
		return;
	err_table_destroy(&s->errors);
	free(s->tenant);
	free(s);
}

static const char *const required_ops[] = {
	"add_entities", "get_entity", "update_entity", "delete_entity",
	"add_relations", "get_relation", "update_relation", "delete_relation",
	"relations_of", "iter_entities", "iter_relations", "stats", "clear",
	"list_tenants", "free",
};

static int backend_missing_op(const kg_backend *b)
{
	const void *ops[] = {
		(const void *)b->add_entities, (const void *)b->get_entity,
		(const void *)b->update_entity, (const void *)b->delete_entity,
		(const void *)b->add_relations, (const void *)b->get_relation,
		(const void *)b->update_relation, (const void *)b->delete_relation,
		(const void *)b->relations_of, (const void *)b->iter_entities,
		(const void *)b->iter_relations, (const void *)b->stats,
		(const void *)b->clear, (const void *)b->list_tenants, (const void *)b->free,
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!ops[i])
			return (int)i;
	return -1;
}

int kg_store_from_backend(kg_backend *b, kg_store **out)
{
	if (!out)
		return KG_EINVAL;
	*out = store_alloc();
	if (!*out) {
		if (b && b->free)
			b->free(b);
		return KG_ENOMEM;
	}
	if (!b)
		return store_error(*out, KG_EINVAL, "kg_store_from_backend: backend is NULL");
	if (b->version < 1 || b->version > KG_BACKEND_VERSION) {
		int rc = store_error(*out, KG_EUNSUPPORTED,
		                     "backend '%s' was written for interface version %u; this kgstore "
		                     "supports 1..%d: rebuild the backend against this kgstore",
		                     b->name ? b->name : "?", b->version, KG_BACKEND_VERSION);
		if (b->free)
			b->free(b);
		return rc;
	}
	int missing = backend_missing_op(b);
	if (missing >= 0) {
		int rc = store_error(*out, KG_EINVAL, "backend '%s' lacks the required operation '%s'",
		                     b->name ? b->name : "?", required_ops[missing]);
		if (b->free)
			b->free(b);
		return rc;
	}
	(*out)->backend = b;
	return KG_OK;
}

kg_backend *kg_store_backend(kg_store *s) { return s ? s->backend : NULL; }

int kg_open_options(const kg_options *o, kg_store **out)
{
	char err[KG_MSG_MAX] = "";
	kg_backend *b = NULL;
	int rc;
	if (!out)
		return KG_EINVAL;
	*out = NULL;
	if (!o) {
		*out = store_alloc();
		return *out ? store_error(*out, KG_EINVAL, "kg_open_options: options are NULL; start from KG_OPTIONS_INIT")
		            : KG_ENOMEM;
	}
	if (o->version < 1 || o->version > KG_OPTIONS_VERSION) {
		*out = store_alloc();
		return *out ? store_error(*out, KG_EINVAL,
		                          "kg_options.version is %u; initialise options with KG_OPTIONS_INIT",
		                          o->version)
		            : KG_ENOMEM;
	}
	kg_backend_kind kind = o->backend;
	if (kind == KG_BACKEND_DEFAULT)
		kind = o->path ? KG_BACKEND_SQLITE : KG_BACKEND_MEMORY;
	switch (kind) {
	case KG_BACKEND_MEMORY:
		rc = kg_memory_backend_new(o, &b, err, sizeof(err));
		break;
	case KG_BACKEND_SQLITE:
#ifdef KG_HAVE_SQLITE
		rc = kg_sqlite_backend_new(o, &b, err, sizeof(err));
#else
		rc = KG_EUNSUPPORTED;
		snprintf(err, sizeof(err), "the SQLite backend is not built into this kgstore "
		         "(not built yet, or configured with -DKG_WITH_SQLITE=OFF); use memory: meanwhile");
#endif
		break;
	case KG_BACKEND_POSTGRES:
#ifdef KG_HAVE_POSTGRES
		rc = kg_postgres_backend_new(o, &b, err, sizeof(err));
#else
		rc = KG_EUNSUPPORTED;
		snprintf(err, sizeof(err), "the PostgreSQL backend is not built into this kgstore "
		         "(not built yet, or configured with -DKG_WITH_POSTGRES=OFF)");
#endif
		break;
	default:
		rc = KG_EINVAL;
		snprintf(err, sizeof(err), "kg_options.backend %d is not a backend kind", (int)kind);
	}
	if (rc < 0) {
		*out = store_alloc();
		if (!*out)
			return rc;
		return store_error(*out, rc, "%s", err[0] ? err : kg_strerror(rc));
	}
	return kg_store_from_backend(b, out);
}

/* A URI's pieces, parsed into owned strings that live until the open ends. */
typedef struct uri_parts {
	kg_options o;
	char *buf; /* path / conninfo storage */
} uri_parts;

static int parse_size(const char *v, size_t *out)
{
	char *end;
	errno = 0;
	double n = strtod(v, &end);
	if (errno || end == v || n < 0)
		return -1;
	double mult = 1;
	if (!strcasecmp(end, "") || !strcasecmp(end, "B")) mult = 1;
	else if (!strcasecmp(end, "K") || !strcasecmp(end, "KB")) mult = 1024.0;
	else if (!strcasecmp(end, "M") || !strcasecmp(end, "MB")) mult = 1024.0 * 1024;
	else if (!strcasecmp(end, "G") || !strcasecmp(end, "GB")) mult = 1024.0 * 1024 * 1024;
	else return -1;
	*out = (size_t)(n * mult);
	return 0;
}

static int parse_bool(const char *v)
{
	return !strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

/* Applies one key=value of a sqlite: or memory: URI. */
static int apply_param(kg_options *o, char *key, char *val, char *err, size_t errcap)
{
	char *end = NULL;
	if (o->backend == KG_BACKEND_MEMORY && !strcmp(key, "budget")) {
		if (parse_size(val, &o->memory_budget) == 0)
			return 0;
	} else if (o->backend == KG_BACKEND_SQLITE) {
		if (!strcmp(key, "timeout")) {
			o->timeout = strtod(val, &end);
			if (end != val && !*end && o->timeout >= 0)
				return 0;
		} else if (!strcmp(key, "cache_size")) {
			o->cache_size = strtol(val, &end, 10);
			if (end != val && !*end)
				return 0;
		} else if (!strcmp(key, "check_same_thread")) {
			o->check_same_thread = parse_bool(val);
			return 0;
		} else if (!strcmp(key, "journal_mode")) {
			o->journal_mode = val;
			return 0;
		} else if (!strcmp(key, "synchronous")) {
			o->synchronous = val;
			return 0;
		} else if (!strcmp(key, "tenancy")) {
			o->tenancy = val;
			return 0;
		}
	}
	snprintf(err, errcap, "URI parameter '%s=%s' is not understood; %s", key, val,
	         o->backend == KG_BACKEND_MEMORY ? "memory: takes budget=SIZE (e.g. 256MB)"
	                                         : "sqlite: takes timeout, cache_size, check_same_thread, journal_mode, synchronous, tenancy");
	return KG_EINVAL;
}

static int parse_query(kg_options *o, char *query, char *err, size_t errcap)
{
	char *save = NULL;
	for (char *kv = strtok_r(query, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			snprintf(err, errcap, "URI parameter '%s' has no value (write key=value)", kv);
			return KG_EINVAL;
		}
		*eq = '\0';
		int rc = apply_param(o, kv, eq + 1, err, errcap);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* kgstore's own PostgreSQL parameters are taken out of the URI; the rest
 * is libpq's to read. */
static int take_pg_params(kg_options *o, char *uri, char *err, size_t errcap)
{
	char *q = strchr(uri, '?');
	if (!q)
		return 0;
	char *src = q + 1, *dst = q + 1;
	char *save = NULL;
	char *params = strdup(src);
	if (!params)
		return KG_ENOMEM;
	*dst = '\0';
	int rc = 0;
	size_t kept = 0;
	for (char *kv = strtok_r(params, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		const char *val = eq ? eq + 1 : "";
		size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
		char *end = NULL;
#define KEY_IS(k) (klen == strlen(k) && !strncmp(kv, k, klen))
		if (KEY_IS("min_pool_size")) o->min_pool_size = (int)strtol(val, &end, 10);
		else if (KEY_IS("max_pool_size")) o->max_pool_size = (int)strtol(val, &end, 10);
		else if (KEY_IS("pool_timeout")) o->pool_timeout = strtod(val, &end);
		else if (KEY_IS("enable_pgvector")) o->enable_pgvector = parse_bool(val);
		else if (KEY_IS("pgvector_fallback")) o->pgvector_fallback = parse_bool(val);
		else if (KEY_IS("read_your_writes")) o->read_your_writes = parse_bool(val);
		else {
			if (kept++)
				strcat(dst, "&");
			strcat(dst, kv);
			continue;
		}
#undef KEY_IS
		if (end && (end == val || *end)) {
			snprintf(err, errcap, "URI parameter '%.*s' needs a number, got '%s'", (int)klen, kv, val);
			rc = KG_EINVAL;
			break;
		}
	}
	if (!kept)
		*q = '\0';
	free(params);
	return rc;
}

static int parse_uri(const char *uri, uri_parts *up, char *err, size_t errcap)
{
	memset(up, 0, sizeof(*up));
	up->o = (kg_options)KG_OPTIONS_INIT;
	if (!uri || !*uri) {
		snprintf(err, errcap, "empty store URI; use memory:, sqlite:PATH, sqlite::memory: or postgresql://...");
		return KG_EINVAL;
	}
	if (!strncmp(uri, "memory:", 7) || !strcmp(uri, "memory")) {
		up->o.backend = KG_BACKEND_MEMORY;
		const char *rest = uri[6] ? uri + 7 : "";
		if (*rest == '?')
			rest++;
		else if (*rest) {
			snprintf(err, errcap, "'%s': memory: takes no path, only ?budget=SIZE", uri);
			return KG_EINVAL;
		}
		up->buf = strdup(rest);
		if (!up->buf)
			return KG_ENOMEM;
		return parse_query(&up->o, up->buf, err, errcap);
	}
	if (!strncmp(uri, "sqlite:", 7)) {
		up->o.backend = KG_BACKEND_SQLITE;
		const char *rest = uri + 7;
		if (!strncmp(rest, "//", 2))
			rest += 2;
		up->buf = strdup(rest);
		if (!up->buf)
			return KG_ENOMEM;
		char *q = strchr(up->buf, '?');
		if (q)
			*q++ = '\0';
		if (!*up->buf) {
			snprintf(err, errcap, "'%s' names no file; write sqlite:PATH or sqlite::memory:", uri);
			return KG_EINVAL;
		}
		up->o.path = up->buf;
		return q ? parse_query(&up->o, q, err, errcap) : 0;
	}
	if (!strncmp(uri, "postgresql:", 11) || !strncmp(uri, "postgres:", 9)) {
		up->o.backend = KG_BACKEND_POSTGRES;
		const char *colon = strchr(uri, ':');
		if (!strncmp(colon + 1, "//", 2)) {
			up->buf = strdup(uri);
		} else {
			up->buf = strdup(colon + 1); /* postgresql:host=... dbname=... */
		}
		if (!up->buf)
			return KG_ENOMEM;
		up->o.conninfo = up->buf;
		if (!strncmp(colon + 1, "//", 2))
			return take_pg_params(&up->o, up->buf, err, errcap);
		return 0;
	}
	snprintf(err, errcap, "'%s' is not a store URI kgstore knows; use memory:, sqlite:PATH, "
	         "sqlite::memory: or postgresql://user@host:port/db", uri);
	return KG_EINVAL;
}

int kg_open(const char *uri, kg_store **out)
{
	char err[KG_MSG_MAX] = "";
	uri_parts up;
	if (!out)
		return KG_EINVAL;
	*out = NULL;
	int rc = parse_uri(uri, &up, err, sizeof(err));
	if (rc == 0)
		rc = kg_open_options(&up.o, out);
	else {
		*out = store_alloc();
		if (*out)
			store_error(*out, rc, "%s", err);
	}
	free(up.buf);
	return rc;
}

int kg_open_env(kg_store **out)
{
	if (!out)
		return KG_EINVAL;
	*out = NULL;
	const char *env = getenv("ENVIRONMENT");
	if (!env || !*env || !strcmp(env, "development"))
		return kg_open("memory:", out);
	if (!strcmp(env, "testing"))
		return kg_open("sqlite::memory:", out);
	if (strcmp(env, "production") != 0 && strcmp(env, "staging") != 0) {
		*out = store_alloc();
		return *out ? store_error(*out, KG_EINVAL,
		                          "ENVIRONMENT='%s' is not one of development, testing, staging, production", env)
		            : KG_ENOMEM;
	}
	kg_options o = KG_OPTIONS_INIT;
	o.backend = KG_BACKEND_POSTGRES;
	const char *host = getenv("DB_HOST");
	if (!strcmp(env, "staging") && getenv("STAGING_DB_HOST"))
		host = getenv("STAGING_DB_HOST");
	o.host = host;
	const char *port = getenv("DB_PORT");
	if (port && *port) {
		char *end;
		long p = strtol(port, &end, 10);
		if (*end || p <= 0 || p > 65535) {
			*out = store_alloc();
			return *out ? store_error(*out, KG_EINVAL, "DB_PORT='%s' is not a port number", port) : KG_ENOMEM;
		}
		o.port = (int)p;
	}
	o.user = getenv("DB_USER");
	o.password = getenv("DB_PASSWORD");
	o.database = getenv("DB_NAME");
	const char *pgv = getenv("ENABLE_PGVECTOR");
	o.enable_pgvector = pgv && !strcasecmp(pgv, "true");
	return kg_open_options(&o, out);
}

void kg_close(kg_store *s)
{
	if (!s)
		return;
	if (s->is_txn && s->backend && s->txn) {
		call_frame f;
		frame_init(&f, s);
		if (s->backend->txn_rollback)
			s->backend->txn_rollback(s->backend, &f.c, s->txn);
	}
	if (s->is_txn)
		detach_views(s);
	kg_store *p = s->parent;
	if (p && p->is_txn && !s->is_txn) /* a view of a transaction: unlist it */
		for (size_t i = 0; i < p->n_views; i++)
			if (p->views[i] == s) {
				p->views[i] = p->views[--p->n_views];
				break;
			}
	if (!s->parent && s->backend)
		s->backend->free(s->backend);
	store_free(s);
}

const char *kg_backend_name(kg_store *s)
{
	return s && s->backend ? s->backend->name : "none";
}

int kg_schema_version(kg_store *s, int *version)
{
	BEGIN_CALL(s);
	int rc = need(s, version, "version", "kg_schema_version");
	if (rc < 0)
		return rc;
	kg_backend *b = s->backend;
	rc = b->control ? b->control(b, &frame_.c, KG_CTL_SCHEMA_VERSION, version) : KG_EUNSUPPORTED;
	if (rc == KG_EUNSUPPORTED && !(b->caps & KG_CAP_PERSISTENT)) {
		*version = KG_SCHEMA_VERSION; /* nothing stored: always the current layout */
		rc = KG_OK;
	} else if (rc == KG_EUNSUPPORTED) {
		rc = kg_call_error(&frame_.c, KG_EUNSUPPORTED, "backend %s does not report a schema version", b->name);
	}
	END_CALL(s, rc);
}

unsigned kg_capabilities(kg_store *s)
{
	return s && s->backend ? s->backend->caps : 0;
}

/* ------------------------------------------------------------------ */
/* Tenants and transactions                                             */
/* ------------------------------------------------------------------ */

static kg_store *store_child(kg_store *s)
{
	kg_store *v = store_alloc();
	if (!v)
		return NULL;
	v->backend = s->backend;
	v->parent = s;
	v->txn = s->txn;
	return v;
}

int kg_tenant(kg_store *s, const char *tenant_id, kg_store **view)
{
	int rc = check_store(s);
	if (rc < 0)
		return rc;
	if (!view)
		return store_error(s, KG_EINVAL, "kg_tenant: view must not be NULL");
	*view = NULL;
	if (s->txn && !s->is_txn)
		return store_error(s, KG_EINVAL, "kg_tenant: this is a view of a transaction; make views from the "
		                                 "transaction handle itself");
	if (!kg_tenant_id_valid(tenant_id))
		return store_error(s, KG_EINVAL,
		                   "tenant id '%.300s' is not valid: use 1 to 255 characters from "
		                   "A-Z a-z 0-9 _ -", tenant_id ? tenant_id : "(null)");
	kg_store *v = store_child(s);
	if (!v || !(v->tenant = strdup(tenant_id))) {
		store_free(v);
		return store_error(s, KG_ENOMEM, "kg_tenant: out of memory");
	}
	if (s->is_txn) { /* listed, so that the end of the transaction can detach it */
		if (s->n_views == s->cap_views) {
			size_t cap = s->cap_views ? s->cap_views * 2 : 4;
			kg_store **nv = realloc(s->views, cap * sizeof(*nv));
			if (!nv) {
				store_free(v);
				return store_error(s, KG_ENOMEM, "kg_tenant: out of memory");
			}
			s->views = nv;
			s->cap_views = cap;
		}
		s->views[s->n_views++] = v;
	}
	*view = v;
	return KG_OK;
}

const char *kg_tenant_id(kg_store *s) { return s ? s->tenant : NULL; }

int kg_begin(kg_store *s, kg_store **txn)
{
	BEGIN_CALL(s);
	if (!txn)
		return store_error(s, KG_EINVAL, "kg_begin: txn must not be NULL");
	*txn = NULL;
	if (s->is_txn || s->txn)
		return store_error(s, KG_EINVAL, "kg_begin: a transaction is already open on this handle; nested transactions are not supported");
	if (!s->backend->txn_begin)
		return store_error(s, KG_EUNSUPPORTED, "backend %s does not support transactions", s->backend->name);
	kg_store *t = store_child(s);
	if (!t || (s->tenant && !(t->tenant = strdup(s->tenant)))) {
		store_free(t);
		return store_error(s, KG_ENOMEM, "kg_begin: out of memory");
	}
	int rc = s->backend->txn_begin(s->backend, &frame_.c, &t->txn);
	if (rc < 0) {
		store_free(t);
		return frame_finish(s, &frame_, rc);
	}
	t->is_txn = 1;
	*txn = t;
	return KG_OK;
}

/* Ends a transaction; its messages go to the handle kg_begin was called on,
 * since the transaction handle is freed here. */
static int txn_end(kg_store *t, int commit)
{
	if (!t)
		return KG_EINVAL;
	if (!t->is_txn || !t->backend)
		return store_error(t, KG_EINVAL, "%s: this handle is not a transaction (make one with kg_begin)",
		                   commit ? "kg_commit" : "kg_rollback");
	call_frame f;
	frame_init(&f, t);
	int rc = commit ? t->backend->txn_commit(t->backend, &f.c, t->txn)
	                : t->backend->txn_rollback(t->backend, &f.c, t->txn);
	kg_store *parent = t->parent;
	detach_views(t);
	t->txn = NULL;
	t->is_txn = 0;
	store_free(t);
	return frame_finish(parent, &f, rc);
}

int kg_commit(kg_store *txn) { return txn_end(txn, 1); }
int kg_rollback(kg_store *txn) { return txn_end(txn, 0); }

/* ------------------------------------------------------------------ */
/* Entities and relations                                               */
/* ------------------------------------------------------------------ */

int kg_add_entity(kg_store *s, const kg_entity *e)
{
	BEGIN_CALL(s);
	int rc = check_entity(s, e, "kg_add_entity");
	if (rc < 0)
		return rc;
	kg_entity copy = *e;
	entity_defaults(&copy, kg_now_us());
	size_t added = 0;
	END_CALL(s, s->backend->add_entities(s->backend, &frame_.c, &copy, 1, 0, &added));
}

int kg_get_entity(kg_store *s, const char *id, kg_entity **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_get_entity")) < 0 || (rc = need_id(s, id, "id", "kg_get_entity")) < 0)
		return rc;
	*out = NULL;
	END_CALL(s, s->backend->get_entity(s->backend, &frame_.c, id, out));
}

static int put_entity(kg_store *s, const kg_entity *e, unsigned flags, const char *fn)
{
	BEGIN_CALL(s);
	int rc = check_entity(s, e, fn);
	if (rc < 0)
		return rc;
	kg_entity copy = *e;
	int64_t now = kg_now_us();
	if (!copy.updated_at)
		copy.updated_at = now;
	entity_defaults(&copy, now);
	END_CALL(s, s->backend->update_entity(s->backend, &frame_.c, &copy, flags));
}

int kg_update_entity(kg_store *s, const kg_entity *e) { return put_entity(s, e, 0, "kg_update_entity"); }
int kg_upsert_entity(kg_store *s, const kg_entity *e) { return put_entity(s, e, KG_UPSERT, "kg_upsert_entity"); }

int kg_delete_entity(kg_store *s, const char *id)
{
	BEGIN_CALL(s);
	int rc = need_id(s, id, "id", "kg_delete_entity");
	if (rc < 0)
		return rc;
	END_CALL(s, s->backend->delete_entity(s->backend, &frame_.c, id));
}

int kg_add_relation(kg_store *s, const kg_relation *r)
{
	BEGIN_CALL(s);
	int rc = check_relation(s, r, "kg_add_relation");
	if (rc < 0)
		return rc;
	kg_relation copy = *r;
	relation_defaults(&copy, kg_now_us());
	size_t added = 0;
	END_CALL(s, s->backend->add_relations(s->backend, &frame_.c, &copy, 1, 0, &added));
}

int kg_get_relation(kg_store *s, const char *id, kg_relation **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_get_relation")) < 0 || (rc = need_id(s, id, "id", "kg_get_relation")) < 0)
		return rc;
	*out = NULL;
	END_CALL(s, s->backend->get_relation(s->backend, &frame_.c, id, out));
}

static int put_relation(kg_store *s, const kg_relation *r, unsigned flags, const char *fn)
{
	BEGIN_CALL(s);
	int rc = check_relation(s, r, fn);
	if (rc < 0)
		return rc;
	kg_relation copy = *r;
	int64_t now = kg_now_us();
	if (!copy.updated_at)
		copy.updated_at = now;
	relation_defaults(&copy, now);
	END_CALL(s, s->backend->update_relation(s->backend, &frame_.c, &copy, flags));
}

int kg_update_relation(kg_store *s, const kg_relation *r) { return put_relation(s, r, 0, "kg_update_relation"); }
int kg_upsert_relation(kg_store *s, const kg_relation *r) { return put_relation(s, r, KG_UPSERT, "kg_upsert_relation"); }

int kg_delete_relation(kg_store *s, const char *id)
{
	BEGIN_CALL(s);
	int rc = need_id(s, id, "id", "kg_delete_relation");
	if (rc < 0)
		return rc;
	END_CALL(s, s->backend->delete_relation(s->backend, &frame_.c, id));
}

/* Validates a batch, fills defaults into a copy, and refuses ids repeated
 * within the batch (unless skipping): backends then see clean batches. */
int kg_add_entities(kg_store *s, const kg_entity *ents, size_t n, unsigned flags, size_t *added)
{
	BEGIN_CALL(s);
	size_t dummy;
	if (!added)
		added = &dummy;
	*added = 0;
	if (n == 0)
		return KG_OK;
	int rc = need(s, ents, "ents", "kg_add_entities");
	if (rc < 0)
		return rc;
	if (flags & ~KG_BULK_SKIP_EXISTING)
		return store_error(s, KG_EINVAL, "kg_add_entities: unknown flags 0x%x", flags);
	kg_entity *copy = malloc(n * sizeof(*copy));
	id_set seen = { 0 };
	if (!copy || id_set_init(&seen, n) < 0) {
		rc = store_error(s, KG_ENOMEM, "kg_add_entities: out of memory for a batch of %zu", n);
		goto cleanup;
	}
	int64_t now = kg_now_us();
	for (size_t i = 0; i < n; i++) {
		if ((rc = check_entity(s, &ents[i], "kg_add_entities")) < 0) {
			char buf[KG_MSG_MAX];
			snprintf(buf, sizeof(buf), "%s (item %zu of the batch; nothing was added)", kg_errmsg(s), i);
			store_set_message(s, buf);
			goto cleanup;
		}
		if (!id_set_insert(&seen, ents[i].id) && !(flags & KG_BULK_SKIP_EXISTING)) {
			rc = store_error(s, KG_EEXISTS,
			                 "kg_add_entities: entity id '%s' appears twice in the batch (item %zu); "
			                 "nothing was added: remove the repeat, or pass KG_BULK_SKIP_EXISTING", ents[i].id, i);
			goto cleanup;
		}
		copy[i] = ents[i];
		entity_defaults(&copy[i], now);
	}
	rc = frame_finish(s, &frame_, s->backend->add_entities(s->backend, &frame_.c, copy, n, flags, added));
cleanup:
	free(copy);
	free(seen.slots);
	return rc;
}

int kg_add_relations(kg_store *s, const kg_relation *rels, size_t n, unsigned flags, size_t *added)
{
	BEGIN_CALL(s);
	size_t dummy;
	if (!added)
		added = &dummy;
	*added = 0;
	if (n == 0)
		return KG_OK;
	int rc = need(s, rels, "rels", "kg_add_relations");
	if (rc < 0)
		return rc;
	if (flags & ~KG_BULK_SKIP_EXISTING)
		return store_error(s, KG_EINVAL, "kg_add_relations: unknown flags 0x%x", flags);
	kg_relation *copy = malloc(n * sizeof(*copy));
	id_set seen = { 0 };
	if (!copy || id_set_init(&seen, n) < 0) {
		rc = store_error(s, KG_ENOMEM, "kg_add_relations: out of memory for a batch of %zu", n);
		goto cleanup;
	}
	int64_t now = kg_now_us();
	for (size_t i = 0; i < n; i++) {
		if ((rc = check_relation(s, &rels[i], "kg_add_relations")) < 0) {
			char buf[KG_MSG_MAX];
			snprintf(buf, sizeof(buf), "%s (item %zu of the batch; nothing was added)", kg_errmsg(s), i);
			store_set_message(s, buf);
			goto cleanup;
		}
		if (!id_set_insert(&seen, rels[i].id) && !(flags & KG_BULK_SKIP_EXISTING)) {
			rc = store_error(s, KG_EEXISTS,
			                 "kg_add_relations: relation id '%s' appears twice in the batch (item %zu); "
			                 "nothing was added: remove the repeat, or pass KG_BULK_SKIP_EXISTING", rels[i].id, i);
			goto cleanup;
		}
		copy[i] = rels[i];
		relation_defaults(&copy[i], now);
	}
	rc = frame_finish(s, &frame_, s->backend->add_relations(s->backend, &frame_.c, copy, n, flags, added));
cleanup:
	free(copy);
	free(seen.slots);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Graph queries                                                        */
/* ------------------------------------------------------------------ */

static int check_dir(kg_store *s, kg_direction dir, const char *fn)
{
	if (dir == KG_OUT || dir == KG_IN || dir == KG_BOTH)
		return 0;
	return store_error(s, KG_EINVAL, "%s: direction %d is not KG_OUT, KG_IN or KG_BOTH", fn, (int)dir);
}

int kg_neighbors(kg_store *s, const char *id, const char *relation_type, kg_direction dir, kg_entity_list **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_neighbors")) < 0 || (rc = need_id(s, id, "id", "kg_neighbors")) < 0 ||
	    (rc = check_dir(s, dir, "kg_neighbors")) < 0)
		return rc;
	*out = NULL;
	kg_backend *b = s->backend;
	END_CALL(s, b->neighbors ? b->neighbors(b, &frame_.c, id, relation_type, dir, out)
	                         : kg_generic_neighbors(b, &frame_.c, id, relation_type, dir, out));
}

int kg_relations_of(kg_store *s, const char *id, const char *relation_type, kg_direction dir, kg_relation_list **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_relations_of")) < 0 || (rc = need_id(s, id, "id", "kg_relations_of")) < 0 ||
	    (rc = check_dir(s, dir, "kg_relations_of")) < 0)
		return rc;
	*out = NULL;
	END_CALL(s, s->backend->relations_of(s->backend, &frame_.c, id, relation_type, dir, out));
}

int kg_traverse(kg_store *s, const char *start, const char *relation_type, int max_depth, size_t max_results,
                kg_path_list **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_traverse")) < 0 || (rc = need_id(s, start, "start", "kg_traverse")) < 0)
		return rc;
	*out = NULL;
	if (max_depth < 0)
		return store_error(s, KG_EINVAL, "kg_traverse: max_depth %d is negative", max_depth);
	kg_backend *b = s->backend;
	END_CALL(s, b->traverse ? b->traverse(b, &frame_.c, start, relation_type, max_depth, max_results, out)
	                        : kg_generic_traverse(b, &frame_.c, start, relation_type, max_depth, max_results, out));
}

int kg_find_paths(kg_store *s, const char *source, const char *target, int max_depth, size_t max_paths,
                  kg_path_list **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_find_paths")) < 0 || (rc = need_id(s, source, "source", "kg_find_paths")) < 0 ||
	    (rc = need_id(s, target, "target", "kg_find_paths")) < 0)
		return rc;
	*out = NULL;
	if (max_depth < 0)
		return store_error(s, KG_EINVAL, "kg_find_paths: max_depth %d is negative", max_depth);
	kg_backend *b = s->backend;
	END_CALL(s, b->find_paths ? b->find_paths(b, &frame_.c, source, target, max_depth, max_paths, out)
	                          : kg_generic_find_paths(b, &frame_.c, source, target, max_depth, max_paths, out));
}

int kg_subgraph_get(kg_store *s, const char *const *ids, size_t n, kg_subgraph **out)
{
	BEGIN_CALL(s);
	int rc = need(s, out, "out", "kg_subgraph_get");
	if (rc < 0)
		return rc;
	*out = NULL;
	if (n && !ids)
		return store_error(s, KG_EINVAL, "kg_subgraph_get: ids is NULL but n is %zu", n);
	for (size_t i = 0; i < n; i++)
		if (!ids[i] || !*ids[i])
			return store_error(s, KG_EINVAL, "kg_subgraph_get: ids[%zu] is NULL or empty", i);
	kg_backend *b = s->backend;
	END_CALL(s, b->subgraph ? b->subgraph(b, &frame_.c, ids, n, out) : kg_generic_subgraph(b, &frame_.c, ids, n, out));
}

int kg_get_entities(kg_store *s, const char *const *ids, size_t n, kg_entity_list **out)
{
	BEGIN_CALL(s);
	int rc = need(s, out, "out", "kg_get_entities");
	if (rc < 0)
		return rc;
	*out = NULL;
	if (n && !ids)
		return store_error(s, KG_EINVAL, "kg_get_entities: ids is NULL but n is %zu", n);
	for (size_t i = 0; i < n; i++)
		if (!ids[i] || !*ids[i])
			return store_error(s, KG_EINVAL, "kg_get_entities: ids[%zu] is NULL or empty", i);
	kg_backend *b = s->backend;
	END_CALL(s, b->version >= 2 && b->get_entities ? b->get_entities(b, &frame_.c, ids, n, out)
	                                               : kg_generic_get_entities(b, &frame_.c, ids, n, out));
}

int kg_list_entities(kg_store *s, const char *entity_type, size_t limit, size_t offset, kg_entity_list **out)
{
	BEGIN_CALL(s);
	int rc = need(s, out, "out", "kg_list_entities");
	if (rc < 0)
		return rc;
	*out = NULL;
	kg_backend *b = s->backend;
	END_CALL(s, b->list_entities ? b->list_entities(b, &frame_.c, entity_type, limit, offset, out)
	                             : kg_generic_list_entities(b, &frame_.c, entity_type, limit, offset, out));
}

/* ------------------------------------------------------------------ */
/* Iterators                                                            */
/* ------------------------------------------------------------------ */

struct kg_entity_iter {
	kg_store *s;
	kg_iter *it;
};

struct kg_relation_iter {
	kg_store *s;
	kg_iter *it;
};

int kg_entity_iter_new(kg_store *s, const char *entity_type, kg_entity_iter **out)
{
	BEGIN_CALL(s);
	int rc = need(s, out, "out", "kg_entity_iter_new");
	if (rc < 0)
		return rc;
	*out = NULL;
	kg_entity_iter *w = calloc(1, sizeof(*w));
	if (!w)
		return store_error(s, KG_ENOMEM, "kg_entity_iter_new: out of memory");
	w->s = s;
	rc = s->backend->iter_entities(s->backend, &frame_.c, entity_type, &w->it);
	if (rc < 0) {
		free(w);
		return frame_finish(s, &frame_, rc);
	}
	*out = w;
	return KG_OK;
}

int kg_entity_iter_next(kg_entity_iter *it, const kg_entity **e)
{
	if (!it || !e)
		return KG_EINVAL;
	call_frame f;
	frame_init(&f, it->s);
	const void *item = NULL;
	int rc = it->it->next(it->it, &f.c, &item);
	*e = rc == 1 ? item : NULL;
	return frame_finish(it->s, &f, rc);
}

void kg_entity_iter_free(kg_entity_iter *it)
{
	if (!it)
		return;
	it->it->free(it->it);
	free(it);
}

int kg_relation_iter_new(kg_store *s, const char *relation_type, kg_relation_iter **out)
{
	BEGIN_CALL(s);
	int rc = need(s, out, "out", "kg_relation_iter_new");
	if (rc < 0)
		return rc;
	*out = NULL;
	kg_relation_iter *w = calloc(1, sizeof(*w));
	if (!w)
		return store_error(s, KG_ENOMEM, "kg_relation_iter_new: out of memory");
	w->s = s;
	rc = s->backend->iter_relations(s->backend, &frame_.c, relation_type, &w->it);
	if (rc < 0) {
		free(w);
		return frame_finish(s, &frame_, rc);
	}
	*out = w;
	return KG_OK;
}

int kg_relation_iter_next(kg_relation_iter *it, const kg_relation **r)
{
	if (!it || !r)
		return KG_EINVAL;
	call_frame f;
	frame_init(&f, it->s);
	const void *item = NULL;
	int rc = it->it->next(it->it, &f.c, &item);
	*r = rc == 1 ? item : NULL;
	return frame_finish(it->s, &f, rc);
}

void kg_relation_iter_free(kg_relation_iter *it)
{
	if (!it)
		return;
	it->it->free(it->it);
	free(it);
}

int kg_list_tenants(kg_store *s, char ***out, size_t *n)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_list_tenants")) < 0 || (rc = need(s, n, "n", "kg_list_tenants")) < 0)
		return rc;
	*out = NULL;
	*n = 0;
	END_CALL(s, s->backend->list_tenants(s->backend, &frame_.c, out, n));
}

/* ------------------------------------------------------------------ */
/* Search                                                               */
/* ------------------------------------------------------------------ */

int kg_vector_search(kg_store *s, const float *query, size_t dim, const char *entity_type, size_t k,
                     double threshold, kg_entity_list **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_vector_search")) < 0 || (rc = need(s, query, "query", "kg_vector_search")) < 0)
		return rc;
	*out = NULL;
	if (dim == 0 || k == 0)
		return store_error(s, KG_EINVAL, "kg_vector_search: dim and k must be > 0 (got dim %zu, k %zu)", dim, k);
	if (isnan(threshold))
		return store_error(s, KG_EINVAL, "kg_vector_search: threshold is NaN");
	for (size_t i = 0; i < dim; i++)
		if (!isfinite(query[i]))
			return store_error(s, KG_EINVAL, "kg_vector_search: query[%zu] is not a finite number", i);
	kg_backend *b = s->backend;
	END_CALL(s, b->vector_search
	                ? b->vector_search(b, &frame_.c, query, dim, entity_type, k, threshold, out)
	                : kg_generic_vector_search(b, &frame_.c, query, dim, entity_type, k, threshold, out));
}

int kg_text_search(kg_store *s, const char *query, const char *entity_type, size_t k, double threshold,
                   kg_text_method method, kg_entity_list **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_text_search")) < 0 || (rc = need(s, query, "query", "kg_text_search")) < 0)
		return rc;
	*out = NULL;
	if (k == 0)
		return store_error(s, KG_EINVAL, "kg_text_search: k must be > 0");
	if ((int)method < KG_TEXT_BM25 || method > KG_TEXT_LEVENSHTEIN)
		return store_error(s, KG_EINVAL, "kg_text_search: method %d is not bm25, jaccard, cosine or levenshtein", (int)method);
	if (isnan(threshold))
		return store_error(s, KG_EINVAL, "kg_text_search: threshold is NaN");
	kg_backend *b = s->backend;
	END_CALL(s, b->text_search
	                ? b->text_search(b, &frame_.c, query, entity_type, k, threshold, method, out)
	                : kg_generic_text_search(b, &frame_.c, query, entity_type, k, threshold, method, out));
}

int kg_add_indexed_property(kg_store *s, const char *name)
{
	BEGIN_CALL(s);
	int rc = need_id(s, name, "property name", "kg_add_indexed_property");
	if (rc < 0)
		return rc;
	kg_backend *b = s->backend;
	/* Without a native index, lookups scan: still correct, so not an error. */
	END_CALL(s, b->add_indexed_property ? b->add_indexed_property(b, &frame_.c, name) : KG_OK);
}

int kg_lookup_by_property(kg_store *s, const char *name, const char *json_value, kg_entity_list **out)
{
	BEGIN_CALL(s);
	int rc;
	if ((rc = need(s, out, "out", "kg_lookup_by_property")) < 0 ||
	    (rc = need_id(s, name, "property name", "kg_lookup_by_property")) < 0 ||
	    (rc = need(s, json_value, "json_value", "kg_lookup_by_property")) < 0)
		return rc;
	*out = NULL;
	kg_backend *b = s->backend;
	END_CALL(s, b->lookup_by_property ? b->lookup_by_property(b, &frame_.c, name, json_value, out)
	                                  : kg_generic_lookup_by_property(b, &frame_.c, name, json_value, out));
}

/* ------------------------------------------------------------------ */
/* Whole store                                                          */
/* ------------------------------------------------------------------ */

int kg_get_stats(kg_store *s, kg_stats **out)
{
	BEGIN_CALL(s);
	int rc = need(s, out, "out", "kg_get_stats");
	if (rc < 0)
		return rc;
	*out = NULL;
	END_CALL(s, s->backend->stats(s->backend, &frame_.c, out));
}

int kg_clear(kg_store *s)
{
	BEGIN_CALL(s);
	END_CALL(s, s->backend->clear(s->backend, &frame_.c));
}
