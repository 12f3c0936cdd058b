/*
 * memory.c - the in-memory backend.
 *
 * Layout, per tenant ("partition"): entities and relations live in
 * append-only slot arrays in insertion order (a deleted slot keeps its place
 * with rec == NULL until compaction), found by id through open-addressing
 * hash maps. Each entity slot holds its outgoing and incoming relation slot
 * numbers, sorted, so relations_of answers in insertion order and path
 * searches walk compact integer arrays.
 *
 * Threads: one readers-writer lock over all data (readers in parallel,
 * writers alone; brlock.h, so that readers on two CPUs do not contend). Writers also take `wlock`, which is what a transaction
 * holds from begin to commit: other writers wait for it (up to the timeout,
 * then KG_EBUSY) while readers go on and may see the transaction's writes
 * early (documented in kgstore.h). Rollback replays an undo log.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brlock.h"
#include "kgstore/backend.h"

/* ------------------------------------------------------------------ */
/* Small containers                                                     */
/* ------------------------------------------------------------------ */

static uint64_t hash_u32(uint32_t x)
{
	uint64_t h = x * 0x9E3779B97F4A7C15ull;
	return h ^ (h >> 29);
}

/* Growable array of slot numbers, kept sorted (slot order is insertion order). */
typedef struct u32vec {
	uint32_t *v;
	uint32_t n, cap;
} u32vec;

static int u32vec_reserve(u32vec *a, size_t need)
{
	if (need <= a->cap)
		return 0;
	size_t cap = a->cap ? (size_t)a->cap * 2 : 4;
	while (cap < need)
		cap *= 2;
	if (cap > UINT32_MAX)
		return KG_ENOMEM;
	uint32_t *v = realloc(a->v, cap * sizeof(*v));
	if (!v)
		return KG_ENOMEM;
	a->v = v;
	a->cap = (uint32_t)cap;
	return 0;
}

/* Inserts x keeping the array sorted (a plain append in the common case). */
static int u32vec_insert_sorted(u32vec *a, uint32_t x)
{
	if (u32vec_reserve(a, (size_t)a->n + 1) < 0)
		return KG_ENOMEM;
	uint32_t i = a->n;
	while (i > 0 && a->v[i - 1] > x)
		i--;
	memmove(a->v + i + 1, a->v + i, (a->n - i) * sizeof(*a->v));
	a->v[i] = x;
	a->n++;
	return 0;
}

static void u32vec_remove(u32vec *a, uint32_t x)
{
	for (uint32_t i = a->n; i-- > 0;) {
		if (a->v[i] == x) {
			memmove(a->v + i, a->v + i + 1, (a->n - i - 1) * sizeof(*a->v));
			a->n--;
			return;
		}
	}
}

/* id -> slot. Keys point into the stored records (no copies). Linear
 * probing with backward-shift deletion, so no tombstones. */
typedef struct idmap_entry {
	const char *key; /* NULL = empty */
	const void *rec; /* the record the key is in: a get needs no other memory */
	uint64_t hash;
	uint32_t slot;
	uint32_t size;   /* entities: the record's block size (0: unknown) */
} idmap_entry;

typedef struct idmap {
	idmap_entry *e;
	size_t mask, count;
} idmap;

static ptrdiff_t idmap_find(const idmap *m, const char *key, uint64_t h)
{
	if (!m->e)
		return -1;
	for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
		const idmap_entry *x = &m->e[i];
		if (!x->key)
			return -1;
		if (x->hash == h && strcmp(x->key, key) == 0)
			return (ptrdiff_t)i;
	}
}

/* Makes room for `extra` more keys so later inserts cannot fail. */
static int idmap_reserve(idmap *m, size_t extra)
{
	size_t need = m->count + extra;
	size_t cap = m->e ? m->mask + 1 : 0;
	if (need * 10 < cap * 7)
		return 0;
	size_t ncap = cap ? cap : 16;
	while (need * 10 >= ncap * 7)
		ncap *= 2;
	idmap_entry *e = calloc(ncap, sizeof(*e));
	if (!e)
		return KG_ENOMEM;
	for (size_t i = 0; i < cap; i++) {
		if (!m->e[i].key)
			continue;
		size_t j = m->e[i].hash & (ncap - 1);
		while (e[j].key)
			j = (j + 1) & (ncap - 1);
		e[j] = m->e[i];
	}
	free(m->e);
	m->e = e;
	m->mask = ncap - 1;
	return 0;
}

/* The caller has reserved room and knows the key is absent. */
static size_t idmap_put(idmap *m, const char *key, const void *rec, uint64_t h, uint32_t slot)
{
	size_t i = h & m->mask;
	while (m->e[i].key)
		i = (i + 1) & m->mask;
	m->e[i] = (idmap_entry){ key, rec, h, slot, 0 };
	m->count++;
	return i;
}

static void idmap_remove_at(idmap *m, size_t i)
{
	m->e[i].key = NULL;
	m->count--;
	for (size_t j = (i + 1) & m->mask; m->e[j].key; j = (j + 1) & m->mask) {
		size_t home = m->e[j].hash & m->mask;
		/* Move e[j] into the hole unless its home lies cyclically in (i, j]. */
		int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			m->e[i] = m->e[j];
			m->e[j].key = NULL;
			i = j;
		}
	}
}

static void idmap_clear(idmap *m)
{
	free(m->e);
	*m = (idmap){ 0 };
}

/* Slot -> int, for the per-call bookkeeping of graph searches: only the
 * entities a search touches cost anything, whatever the graph's size. */
typedef struct slotmap {
	uint32_t *keys; /* slot + 1; 0 = empty */
	int32_t *vals;
	size_t mask, count;
} slotmap;

static int slotmap_init(slotmap *m, size_t hint)
{
	size_t cap = 64;
	while (cap < hint * 2)
		cap *= 2;
	m->keys = calloc(cap, sizeof(*m->keys));
	m->vals = malloc(cap * sizeof(*m->vals));
	m->mask = cap - 1;
	m->count = 0;
	return m->keys && m->vals ? 0 : KG_ENOMEM;
}

static void slotmap_free(slotmap *m)
{
	free(m->keys);
	free(m->vals);
}

static int32_t *slotmap_get(const slotmap *m, uint32_t slot)
{
	for (size_t i = hash_u32(slot) & m->mask;; i = (i + 1) & m->mask) {
		if (m->keys[i] == 0)
			return NULL;
		if (m->keys[i] == slot + 1)
			return &m->vals[i];
	}
}

/* Sets or adds; returns 0 or KG_ENOMEM. */
static int slotmap_set(slotmap *m, uint32_t slot, int32_t val)
{
	if ((m->count + 1) * 2 > m->mask + 1) {
		slotmap bigger;
		if (slotmap_init(&bigger, m->mask + 1) < 0) {
			slotmap_free(&bigger);
			return KG_ENOMEM;
		}
		for (size_t i = 0; i <= m->mask; i++)
			if (m->keys[i])
				slotmap_set(&bigger, m->keys[i] - 1, m->vals[i]);
		slotmap_free(m);
		*m = bigger;
	}
	size_t i = hash_u32(slot) & m->mask;
	while (m->keys[i] && m->keys[i] != slot + 1)
		i = (i + 1) & m->mask;
	if (!m->keys[i]) {
		m->keys[i] = slot + 1;
		m->count++;
	}
	m->vals[i] = val;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Data                                                                 */
/* ------------------------------------------------------------------ */

typedef struct ent_slot {
	uint64_t seq;
	kg_entity *rec; /* NULL = deleted */
	u32vec out, in; /* relation slots, sorted */
} ent_slot;

typedef struct rel_slot {
	uint64_t seq;
	kg_relation *rec; /* NULL = deleted */
	uint32_t src, dst; /* entity slots */
} rel_slot;

/* Property index: canonical JSON value -> entity slots. */
typedef struct pidx_entry {
	char *key; /* NULL = empty */
	uint64_t hash;
	u32vec slots;
} pidx_entry;

typedef struct prop_index {
	char *name;
	int dirty; /* an update failed (no memory): lookups scan instead */
	pidx_entry *e;
	size_t mask, count;
} prop_index;

typedef struct partition {
	char *tenant; /* NULL = the global namespace */
	ent_slot *ents;
	size_t n_ents, cap_ents, live_ents;
	rel_slot *rels;
	size_t n_rels, cap_rels, live_rels;
	idmap ent_ids, rel_ids;
	uint64_t next_seq;
	uint64_t generation; /* bumped by compaction: slot numbers changed */
	prop_index *indexes;
	size_t n_indexes;
} partition;

typedef enum undo_kind {
	UNDO_ENT_ADD,
	UNDO_ENT_REPLACE,
	UNDO_ENT_DELETE,
	UNDO_REL_ADD,
	UNDO_REL_REPLACE,
	UNDO_REL_DELETE
} undo_kind;

typedef struct undo_rec {
	undo_kind kind;
	partition *p;
	uint32_t slot;
	void *old;               /* the previous record (REPLACE, DELETE) */
	uint32_t old_src, old_dst; /* REL_REPLACE: previous endpoints */
} undo_rec;

typedef struct mem_txn {
	undo_rec *log;
	size_t n, cap;
} mem_txn;

typedef struct mem_backend {
	kg_backend base;
	brlock rw;
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	mem_txn *active_txn; /* under wlock */
	double lock_timeout;
	partition global;
	partition **tenants; /* sorted by name */
	size_t n_tenants, cap_tenants;
	char **index_names; /* properties indexed in every partition */
	size_t n_index_names;
	size_t budget, bytes;
} mem_backend;

/* What a record costs, for the memory budget: its block plus its share of
 * slot arrays and hash maps. */
static size_t entity_cost(const kg_entity *e)
{
	return sizeof(kg_entity) + strlen(e->id) + strlen(e->entity_type) + strlen(e->properties) +
	       (e->source ? strlen(e->source) : 0) + e->embedding_dim * sizeof(float) + sizeof(ent_slot) + 64;
}

static size_t relation_cost(const kg_relation *r)
{
	return sizeof(kg_relation) + strlen(r->id) + strlen(r->relation_type) + strlen(r->source_id) +
	       strlen(r->target_id) + strlen(r->properties) + (r->source ? strlen(r->source) : 0) +
	       sizeof(rel_slot) + 2 * sizeof(uint32_t) + 64;
}

static mem_backend *mb_of(kg_backend *b) { return (mem_backend *)b; }

static partition *find_partition(mem_backend *mb, const char *tenant)
{
	if (!tenant)
		return &mb->global;
	size_t lo = 0, hi = mb->n_tenants;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(mb->tenants[mid]->tenant, tenant);
		if (c == 0)
			return mb->tenants[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int index_add_entity(prop_index *ix, const kg_entity *e, uint32_t slot);

static partition *get_partition(mem_backend *mb, const char *tenant)
{
	partition *p = find_partition(mb, tenant);
	if (p)
		return p;
	size_t lo = 0, hi = mb->n_tenants;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(mb->tenants[mid]->tenant, tenant) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (mb->n_tenants == mb->cap_tenants) {
		size_t cap = mb->cap_tenants ? mb->cap_tenants * 2 : 8;
		partition **t = realloc(mb->tenants, cap * sizeof(*t));
		if (!t)
			return NULL;
		mb->tenants = t;
		mb->cap_tenants = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->tenant = strdup(tenant)))
		goto fail;
	if (mb->n_index_names) {
		p->indexes = calloc(mb->n_index_names, sizeof(*p->indexes));
		if (!p->indexes)
			goto fail;
		for (size_t i = 0; i < mb->n_index_names; i++) {
			if (!(p->indexes[i].name = strdup(mb->index_names[i])))
				goto fail;
			p->n_indexes++;
		}
	}
	memmove(mb->tenants + lo + 1, mb->tenants + lo, (mb->n_tenants - lo) * sizeof(*mb->tenants));
	mb->tenants[lo] = p;
	mb->n_tenants++;
	return p;
fail:
	if (p) {
		for (size_t i = 0; i < p->n_indexes; i++)
			free(p->indexes[i].name);
		free(p->indexes);
		free(p->tenant);
	}
	free(p);
	return NULL;
}

static ent_slot *find_ent(partition *p, const char *id)
{
	if (!p)
		return NULL;
	ptrdiff_t i = idmap_find(&p->ent_ids, id, kg_hash_str(id));
	return i < 0 ? NULL : &p->ents[p->ent_ids.e[i].slot];
}

static rel_slot *find_rel(partition *p, const char *id)
{
	if (!p)
		return NULL;
	ptrdiff_t i = idmap_find(&p->rel_ids, id, kg_hash_str(id));
	return i < 0 ? NULL : &p->rels[p->rel_ids.e[i].slot];
}

static uint32_t ent_slot_no(const partition *p, const ent_slot *s) { return (uint32_t)(s - p->ents); }
static uint32_t rel_slot_no(const partition *p, const rel_slot *s) { return (uint32_t)(s - p->rels); }

/* ------------------------------------------------------------------ */
/* Property indexes                                                     */
/* ------------------------------------------------------------------ */

/* The canonical text of a JSON value, so equal values share one key. */
static char *canonical_json(json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* The canonical text of top-level property `name` of an entity, or NULL
 * (absent, or out of memory: *oom says which). */
static char *property_key(const kg_entity *e, const char *name, int *oom)
{
	*oom = 0;
	json_t *root = json_loads(e->properties, 0, NULL);
	if (!root) {
		*oom = 1; /* the text was validated on the way in: only memory can fail */
		return NULL;
	}
	json_t *v = json_object_get(root, name);
	char *key = v ? canonical_json(v) : NULL;
	if (v && !key)
		*oom = 1;
	json_decref(root);
	return key;
}

static pidx_entry *pidx_find(prop_index *ix, const char *key, uint64_t h)
{
	if (!ix->e)
		return NULL;
	for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
		if (!ix->e[i].key)
			return NULL;
		if (ix->e[i].hash == h && strcmp(ix->e[i].key, key) == 0)
			return &ix->e[i];
	}
}

static int pidx_grow(prop_index *ix)
{
	size_t cap = ix->e ? ix->mask + 1 : 0;
	if ((ix->count + 1) * 10 < cap * 7)
		return 0;
	size_t ncap = cap ? cap * 2 : 16;
	pidx_entry *e = calloc(ncap, sizeof(*e));
	if (!e)
		return KG_ENOMEM;
	for (size_t i = 0; i < cap; i++) {
		if (!ix->e[i].key)
			continue;
		size_t j = ix->e[i].hash & (ncap - 1);
		while (e[j].key)
			j = (j + 1) & (ncap - 1);
		e[j] = ix->e[i];
	}
	free(ix->e);
	ix->e = e;
	ix->mask = ncap - 1;
	return 0;
}

static int index_add_entity(prop_index *ix, const kg_entity *e, uint32_t slot)
{
	int oom;
	char *key = property_key(e, ix->name, &oom);
	if (!key)
		return oom ? KG_ENOMEM : 0;
	uint64_t h = kg_hash_str(key);
	pidx_entry *x = pidx_find(ix, key, h);
	if (!x) {
		if (pidx_grow(ix) < 0) {
			free(key);
			return KG_ENOMEM;
		}
		size_t i = h & ix->mask;
		while (ix->e[i].key)
			i = (i + 1) & ix->mask;
		x = &ix->e[i];
		*x = (pidx_entry){ key, h, { 0 } };
		ix->count++;
		key = NULL;
	}
	free(key);
	return u32vec_insert_sorted(&x->slots, slot);
}

/* Removing never fails: an entry whose key cannot be computed (no memory)
 * is found by scanning instead. Empty entries stay until the next rebuild. */
static void index_remove_entity(prop_index *ix, const kg_entity *e, uint32_t slot)
{
	int oom;
	char *key = property_key(e, ix->name, &oom);
	if (key) {
		pidx_entry *x = pidx_find(ix, key, kg_hash_str(key));
		if (x)
			u32vec_remove(&x->slots, slot);
		free(key);
		return;
	}
	if (oom && ix->e)
		for (size_t i = 0; i <= ix->mask; i++)
			if (ix->e[i].key)
				u32vec_remove(&ix->e[i].slots, slot);
}

static void index_clear(prop_index *ix)
{
	if (ix->e) {
		for (size_t i = 0; i <= ix->mask; i++) {
			free(ix->e[i].key);
			free(ix->e[i].slots.v);
		}
	}
	free(ix->e);
	ix->e = NULL;
	ix->mask = ix->count = 0;
}

static int index_rebuild(partition *p, prop_index *ix)
{
	index_clear(ix);
	ix->dirty = 1;
	for (size_t i = 0; i < p->n_ents; i++)
		if (p->ents[i].rec && index_add_entity(ix, p->ents[i].rec, (uint32_t)i) < 0)
			return KG_ENOMEM;
	ix->dirty = 0;
	return 0;
}

/* Keeps every index of the partition in step with an entity change. An
 * index that cannot be updated (no memory) is rebuilt at the next lookup. */
static int indexes_update(partition *p, const kg_entity *old, const kg_entity *new_rec, uint32_t slot)
{
	int rc = 0;
	for (size_t i = 0; i < p->n_indexes; i++) {
		if (old)
			index_remove_entity(&p->indexes[i], old, slot);
		if (new_rec && index_add_entity(&p->indexes[i], new_rec, slot) < 0) {
			p->indexes[i].dirty = 1;
			rc = KG_ENOMEM;
		}
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Locking                                                              */
/* ------------------------------------------------------------------ */

static void rd_lock(mem_backend *mb) { br_rdlock(&mb->rw); }
static void rd_unlock(mem_backend *mb) { br_rdunlock(&mb->rw); }

/* Becomes the writer: waits for an open transaction of another handle to
 * end (up to the timeout), then takes the data lock exclusively. */
static int wr_lock(mem_backend *mb, kg_call *c)
{
	pthread_mutex_lock(&mb->wlock);
	if (mb->active_txn && mb->active_txn != c->txn) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		double t = mb->lock_timeout;
		until.tv_sec += (time_t)t;
		until.tv_nsec += (long)((t - floor(t)) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		int err = 0;
		while (mb->active_txn && mb->active_txn != c->txn && err != ETIMEDOUT)
			err = pthread_cond_timedwait(&mb->wcond, &mb->wlock, &until);
		if (mb->active_txn && mb->active_txn != c->txn) {
			pthread_mutex_unlock(&mb->wlock);
			return kg_call_error(c, KG_EBUSY,
			                     "the memory store is locked by an open transaction (waited %.1f s); "
			                     "commit or roll back that transaction, or write through its handle",
			                     mb->lock_timeout);
		}
	}
	if (c->txn && mb->active_txn != c->txn) {
		pthread_mutex_unlock(&mb->wlock);
		return kg_call_error(c, KG_EINVAL, "this transaction has already ended; start a new one with kg_begin");
	}
	br_wrlock(&mb->rw);
	return 0;
}

static void wr_unlock(mem_backend *mb)
{
	br_wrunlock(&mb->rw);
	pthread_mutex_unlock(&mb->wlock);
}

/* ------------------------------------------------------------------ */
/* Undo log                                                             */
/* ------------------------------------------------------------------ */

static int undo_reserve(mem_backend *mb, kg_call *c, size_t extra)
{
	mem_txn *t = c->txn;
	(void)mb;
	if (!t || t->n + extra <= t->cap)
		return 0;
	size_t cap = t->cap ? t->cap : 64;
	while (cap < t->n + extra)
		cap *= 2;
	undo_rec *log = realloc(t->log, cap * sizeof(*log));
	if (!log)
		return kg_call_error(c, KG_ENOMEM, "out of memory for the transaction's undo log");
	t->log = log;
	t->cap = cap;
	return 0;
}

/* Records an undo step when inside a transaction; room was reserved. Returns
 * 1 if the log now owns `old` (the caller must not free it). */
static int undo_push(kg_call *c, undo_kind kind, partition *p, uint32_t slot, void *old, uint32_t os, uint32_t od)
{
	mem_txn *t = c->txn;
	if (!t)
		return 0;
	t->log[t->n++] = (undo_rec){ kind, p, slot, old, os, od };
	return old != NULL;
}

/* ------------------------------------------------------------------ */
/* Core mutations (no validation; the callers check first)              */
/* ------------------------------------------------------------------ */

static int ents_reserve(partition *p, size_t extra)
{
	if (p->n_ents + extra > UINT32_MAX - 1)
		return KG_EBUDGET;
	if (p->n_ents + extra > p->cap_ents) {
		size_t cap = p->cap_ents ? p->cap_ents * 2 : 64;
		while (cap < p->n_ents + extra)
			cap *= 2;
		ent_slot *e = realloc(p->ents, cap * sizeof(*e));
		if (!e)
			return KG_ENOMEM;
		p->ents = e;
		p->cap_ents = cap;
	}
	return idmap_reserve(&p->ent_ids, extra);
}

static int rels_reserve(partition *p, size_t extra)
{
	if (p->n_rels + extra > UINT32_MAX - 1)
		return KG_EBUDGET;
	if (p->n_rels + extra > p->cap_rels) {
		size_t cap = p->cap_rels ? p->cap_rels * 2 : 64;
		while (cap < p->n_rels + extra)
			cap *= 2;
		rel_slot *r = realloc(p->rels, cap * sizeof(*r));
		if (!r)
			return KG_ENOMEM;
		p->rels = r;
		p->cap_rels = cap;
	}
	return idmap_reserve(&p->rel_ids, extra);
}

/* The size kg_entity_dup gives a record's block, or 0 past 4 GB. */
static uint32_t entity_block_size(const kg_entity *e)
{
	size_t n = sizeof(kg_entity) + e->embedding_dim * sizeof(float) + strlen(e->id) + 1 +
	           strlen(e->entity_type) + 1 + strlen(e->properties) + 1 + (e->source ? strlen(e->source) + 1 : 0) +
	           (e->tenant_id ? strlen(e->tenant_id) + 1 : 0);
	return n > UINT32_MAX ? 0 : (uint32_t)n;
}

#define RELOCATE(field, from, to) \
	((field) ? (void *)((char *)(to) + ((const char *)(field) - (const char *)(from))) : NULL)

/* Files an entity under its id, with its block size for entity_clone. */
static void ent_map_put(idmap *m, kg_entity *rec, uint32_t slot)
{
	size_t i = idmap_put(m, rec->id, rec, kg_hash_str(rec->id), slot);
	m->e[i].size = entity_block_size(rec);
}

/* Appends an entity record (owned from now on); room was reserved. */
static uint32_t ent_append(partition *p, kg_entity *rec)
{
	uint32_t slot = (uint32_t)p->n_ents++;
	p->ents[slot] = (ent_slot){ .seq = p->next_seq++, .rec = rec };
	ent_map_put(&p->ent_ids, rec, slot);
	p->live_ents++;
	return slot;
}

/* Takes an entity out of the id map and the slot; returns its record. */
static kg_entity *ent_unlink(partition *p, uint32_t slot)
{
	kg_entity *rec = p->ents[slot].rec;
	ptrdiff_t i = idmap_find(&p->ent_ids, rec->id, kg_hash_str(rec->id));
	if (i >= 0)
		idmap_remove_at(&p->ent_ids, (size_t)i);
	p->ents[slot].rec = NULL;
	p->live_ents--;
	indexes_update(p, rec, NULL, slot);
	return rec;
}

/* Puts a record back into a slot emptied by ent_unlink (rollback). */
static void ent_relink(partition *p, uint32_t slot, kg_entity *rec)
{
	p->ents[slot].rec = rec;
	ent_map_put(&p->ent_ids, rec, slot);
	p->live_ents++;
	indexes_update(p, NULL, rec, slot);
}

static void ent_set_record(partition *p, uint32_t slot, kg_entity *rec)
{
	kg_entity *old = p->ents[slot].rec;
	ptrdiff_t i = idmap_find(&p->ent_ids, old->id, kg_hash_str(old->id));
	if (i >= 0) {
		p->ent_ids.e[i].key = rec->id; /* the key points into the record */
		p->ent_ids.e[i].rec = rec;
		p->ent_ids.e[i].size = entity_block_size(rec);
	}
	p->ents[slot].rec = rec;
	indexes_update(p, old, rec, slot);
}

/* Links a relation into both endpoints' adjacency; undone on failure. */
static int rel_link(partition *p, uint32_t slot)
{
	rel_slot *r = &p->rels[slot];
	if (u32vec_insert_sorted(&p->ents[r->src].out, slot) < 0)
		return KG_ENOMEM;
	if (u32vec_insert_sorted(&p->ents[r->dst].in, slot) < 0) {
		u32vec_remove(&p->ents[r->src].out, slot);
		return KG_ENOMEM;
	}
	return 0;
}

static void rel_unlink_adjacency(partition *p, uint32_t slot)
{
	rel_slot *r = &p->rels[slot];
	u32vec_remove(&p->ents[r->src].out, slot);
	u32vec_remove(&p->ents[r->dst].in, slot);
}

static kg_relation *rel_unlink(partition *p, uint32_t slot)
{
	kg_relation *rec = p->rels[slot].rec;
	ptrdiff_t i = idmap_find(&p->rel_ids, rec->id, kg_hash_str(rec->id));
	if (i >= 0)
		idmap_remove_at(&p->rel_ids, (size_t)i);
	rel_unlink_adjacency(p, slot);
	p->rels[slot].rec = NULL;
	p->live_rels--;
	return rec;
}

/* Rollback of a delete: room in the id map is certain (the key was there);
 * adjacency growth may fail, which is reported by the caller. */
static int rel_relink(partition *p, uint32_t slot, kg_relation *rec)
{
	p->rels[slot].rec = rec;
	idmap_put(&p->rel_ids, rec->id, rec, kg_hash_str(rec->id), slot);
	p->live_rels++;
	return rel_link(p, slot);
}

/* Frees everything a partition holds (the partition itself stays). */
static void partition_reset(partition *p)
{
	for (size_t i = 0; i < p->n_ents; i++) {
		free(p->ents[i].rec);
		free(p->ents[i].out.v);
		free(p->ents[i].in.v);
	}
	for (size_t i = 0; i < p->n_rels; i++)
		free(p->rels[i].rec);
	free(p->ents);
	free(p->rels);
	idmap_clear(&p->ent_ids);
	idmap_clear(&p->rel_ids);
	p->ents = NULL;
	p->rels = NULL;
	p->n_ents = p->cap_ents = p->live_ents = 0;
	p->n_rels = p->cap_rels = p->live_rels = 0;
	p->generation++;
	for (size_t i = 0; i < p->n_indexes; i++)
		index_clear(&p->indexes[i]);
}

/*
 * Drops deleted slots once they outnumber the live ones, renumbering the
 * rest (order kept). Never while a transaction is open: its undo log holds
 * slot numbers. Allocation failure just leaves the partition as it was.
 */
static void partition_compact(mem_backend *mb, partition *p)
{
	if (mb->active_txn)
		return;
	size_t dead_e = p->n_ents - p->live_ents, dead_r = p->n_rels - p->live_rels;
	if (!((dead_e > 256 && dead_e > p->live_ents) || (dead_r > 256 && dead_r > p->live_rels)))
		return;
	uint32_t *emap = malloc((p->n_ents + 1) * sizeof(*emap));
	uint32_t *rmap = malloc((p->n_rels + 1) * sizeof(*rmap));
	idmap eids = { 0 }, rids = { 0 };
	if (!emap || !rmap || idmap_reserve(&eids, p->live_ents) < 0 || idmap_reserve(&rids, p->live_rels) < 0)
		goto cleanup;
	size_t ne = 0, nr = 0;
	for (size_t i = 0; i < p->n_ents; i++) {
		if (!p->ents[i].rec) {
			free(p->ents[i].out.v);
			free(p->ents[i].in.v);
			continue;
		}
		emap[i] = (uint32_t)ne;
		p->ents[ne++] = p->ents[i];
	}
	for (size_t i = 0; i < p->n_rels; i++) {
		if (!p->rels[i].rec)
			continue;
		rmap[i] = (uint32_t)nr;
		rel_slot r = p->rels[i];
		r.src = emap[r.src];
		r.dst = emap[r.dst];
		p->rels[nr++] = r;
	}
	p->n_ents = ne;
	p->n_rels = nr;
	for (size_t i = 0; i < ne; i++) {
		ent_slot *e = &p->ents[i];
		for (uint32_t k = 0; k < e->out.n; k++)
			e->out.v[k] = rmap[e->out.v[k]];
		for (uint32_t k = 0; k < e->in.n; k++)
			e->in.v[k] = rmap[e->in.v[k]];
		ent_map_put(&eids, e->rec, (uint32_t)i);
	}
	for (size_t i = 0; i < nr; i++)
		idmap_put(&rids, p->rels[i].rec->id, p->rels[i].rec, kg_hash_str(p->rels[i].rec->id), (uint32_t)i);
	idmap_clear(&p->ent_ids);
	idmap_clear(&p->rel_ids);
	p->ent_ids = eids;
	p->rel_ids = rids;
	eids = rids = (idmap){ 0 };
	p->generation++;
	for (size_t i = 0; i < p->n_indexes; i++)
		index_rebuild(p, &p->indexes[i]);
cleanup:
	idmap_clear(&eids);
	idmap_clear(&rids);
	free(emap);
	free(rmap);
}

/* ------------------------------------------------------------------ */
/* Building stored records                                              */
/* ------------------------------------------------------------------ */

static kg_entity *make_entity(const kg_entity *in, const char *tenant, int64_t created_at)
{
	kg_entity tmp = *in;
	tmp.tenant_id = tenant;
	if (created_at)
		tmp.created_at = created_at;
	return kg_entity_dup(&tmp);
}

static kg_relation *make_relation(const kg_relation *in, const char *tenant, int64_t created_at)
{
	kg_relation tmp = *in;
	tmp.tenant_id = tenant;
	if (created_at)
		tmp.created_at = created_at;
	return kg_relation_dup(&tmp);
}

static int budget_check(mem_backend *mb, kg_call *c, size_t need, const char *what)
{
	if (!mb->budget || mb->bytes + need <= mb->budget)
		return 0;
	return kg_call_error(c, KG_EBUDGET,
	                     "memory budget reached: %s needs %zu bytes, %zu of the %zu-byte budget are used; "
	                     "nothing was written. Raise the budget (memory:?budget=...), delete data, or use "
	                     "the SQLite backend for larger graphs",
	                     what, need, mb->bytes, mb->budget);
}

/* ------------------------------------------------------------------ */
/* Entities                                                             */
/* ------------------------------------------------------------------ */

/* The caller holds the write lock. */
static int add_entities_locked(mem_backend *mb, kg_call *c, const kg_entity *ents, size_t n, unsigned flags,
                               size_t *added)
{
	int skip = (flags & KG_BULK_SKIP_EXISTING) != 0;
	kg_entity **recs = NULL;
	size_t n_recs = 0;
	int rc = 0;
	*added = 0;
	partition *p = find_partition(mb, c->tenant);
	/* Check everything before changing anything. */
	size_t need = 0;
	for (size_t i = 0; i < n; i++) {
		if (find_ent(p, ents[i].id)) {
			if (skip)
				continue;
			rc = kg_call_error(c, KG_EEXISTS,
			                   "entity '%s' already exists%s%s; nothing of the batch was added "
			                   "(use kg_update_entity / kg_upsert_entity to change it, or KG_BULK_SKIP_EXISTING)",
			                   ents[i].id, c->tenant ? " in tenant " : "", c->tenant ? c->tenant : "");
			goto cleanup;
		}
		need += entity_cost(&ents[i]);
	}
	if ((rc = budget_check(mb, c, need, n == 1 ? "the entity" : "the batch")) < 0)
		goto cleanup;
	if (!p && !(p = get_partition(mb, c->tenant))) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory creating tenant '%s'", c->tenant);
		goto cleanup;
	}
	recs = malloc(n * sizeof(*recs));
	if (!recs || ents_reserve(p, n) < 0 || undo_reserve(mb, c, n) < 0) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory adding %zu entities; nothing was added", n);
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		if (!(recs[i] = make_entity(&ents[i], p->tenant, 0))) {
			rc = kg_call_error(c, KG_ENOMEM, "out of memory copying entity '%s'; nothing was added", ents[i].id);
			goto cleanup;
		}
		n_recs++;
	}
	for (size_t i = 0; i < n; i++) {
		if (skip && find_ent(p, recs[i]->id)) { /* stored, or earlier in this batch */
			free(recs[i]);
			recs[i] = NULL;
			continue;
		}
		uint32_t slot = ent_append(p, recs[i]);
		recs[i] = NULL;
		indexes_update(p, NULL, p->ents[slot].rec, slot); /* failure marks the index dirty */
		mb->bytes += entity_cost(p->ents[slot].rec);
		undo_push(c, UNDO_ENT_ADD, p, slot, NULL, 0, 0);
		(*added)++;
	}
cleanup:
	for (size_t i = 0; i < n_recs; i++)
		free(recs[i]);
	free(recs);
	return rc;
}

static int mem_add_entities(kg_backend *b, kg_call *c, const kg_entity *ents, size_t n, unsigned flags,
                            size_t *added)
{
	mem_backend *mb = mb_of(b);
	*added = 0;
	int rc = wr_lock(mb, c);
	if (rc < 0)
		return rc;
	rc = add_entities_locked(mb, c, ents, n, flags, added);
	wr_unlock(mb);
	return rc;
}

/* A stored record's copy in one memcpy: its block holds every string, so
 * the copy's pointers are the old ones moved by the same offset. The hot
 * path of kg_get_entity. */
static kg_entity *entity_clone(const idmap_entry *x)
{
	const kg_entity *src = x->rec;
	if (!x->size)
		return kg_entity_dup(src);
	kg_entity *e = malloc(x->size);
	if (!e)
		return NULL;
	memcpy(e, src, x->size);
	e->id = RELOCATE(src->id, src, e);
	e->entity_type = RELOCATE(src->entity_type, src, e);
	e->properties = RELOCATE(src->properties, src, e);
	e->embedding = RELOCATE(src->embedding, src, e);
	e->source = RELOCATE(src->source, src, e);
	e->tenant_id = RELOCATE(src->tenant_id, src, e);
	return e;
}

static int mem_get_entity(kg_backend *b, kg_call *c, const char *id, kg_entity **out)
{
	mem_backend *mb = mb_of(b);
	int rc = 0;
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	ptrdiff_t i = p ? idmap_find(&p->ent_ids, id, kg_hash_str(id)) : -1;
	if (i < 0)
		rc = kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s%s", id, c->tenant ? " in tenant " : "",
		                   c->tenant ? c->tenant : "");
	else if (!(*out = entity_clone(&p->ent_ids.e[i])))
		rc = kg_call_error(c, KG_ENOMEM, "out of memory copying entity '%s'", id);
	rd_unlock(mb);
	return rc;
}

static int mem_update_entity(kg_backend *b, kg_call *c, const kg_entity *e, unsigned flags)
{
	mem_backend *mb = mb_of(b);
	int rc = wr_lock(mb, c);
	if (rc < 0)
		return rc;
	partition *p = find_partition(mb, c->tenant);
	ent_slot *s = find_ent(p, e->id);
	if (!s) {
		size_t added;
		if (flags & KG_UPSERT)
			rc = add_entities_locked(mb, c, e, 1, 0, &added);
		else
			rc = kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s%s; add it first (or use kg_upsert_entity)",
			                   e->id, c->tenant ? " in tenant " : "", c->tenant ? c->tenant : "");
		goto cleanup;
	}
	kg_entity *rec = NULL;
	size_t old_cost = entity_cost(s->rec), new_cost = entity_cost(e);
	if (new_cost > old_cost && (rc = budget_check(mb, c, new_cost - old_cost, "the update")) < 0)
		goto cleanup;
	if (undo_reserve(mb, c, 1) < 0 || !(rec = make_entity(e, p->tenant, s->rec->created_at))) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory updating entity '%s'; it is unchanged", e->id);
		goto cleanup;
	}
	uint32_t slot = ent_slot_no(p, s);
	kg_entity *old = s->rec;
	ent_set_record(p, slot, rec);
	mb->bytes = mb->bytes - old_cost + new_cost;
	if (!undo_push(c, UNDO_ENT_REPLACE, p, slot, old, 0, 0))
		free(old);
cleanup:
	wr_unlock(mb);
	return rc;
}

/* Deletes one relation (its slot); the caller holds the write lock and has
 * reserved an undo entry. */
static void delete_relation_slot(mem_backend *mb, kg_call *c, partition *p, uint32_t slot)
{
	mb->bytes -= relation_cost(p->rels[slot].rec);
	kg_relation *old = rel_unlink(p, slot);
	if (!undo_push(c, UNDO_REL_DELETE, p, slot, old, 0, 0))
		free(old);
}

static void delete_entity_slot(mem_backend *mb, kg_call *c, partition *p, uint32_t slot)
{
	ent_slot *s = &p->ents[slot];
	/* Relations first, so a rollback restores the entity before them. */
	while (s->out.n)
		delete_relation_slot(mb, c, p, s->out.v[s->out.n - 1]);
	while (s->in.n)
		delete_relation_slot(mb, c, p, s->in.v[s->in.n - 1]);
	mb->bytes -= entity_cost(s->rec);
	kg_entity *old = ent_unlink(p, slot);
	if (!undo_push(c, UNDO_ENT_DELETE, p, slot, old, 0, 0))
		free(old);
}

static int mem_delete_entity(kg_backend *b, kg_call *c, const char *id)
{
	mem_backend *mb = mb_of(b);
	int rc = wr_lock(mb, c);
	if (rc < 0)
		return rc;
	partition *p = find_partition(mb, c->tenant);
	ent_slot *s = find_ent(p, id);
	if (!s)
		rc = kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s%s; nothing was deleted", id,
		                   c->tenant ? " in tenant " : "", c->tenant ? c->tenant : "");
	else if (undo_reserve(mb, c, 1 + (size_t)s->out.n + s->in.n) < 0)
		rc = KG_ENOMEM;
	else {
		delete_entity_slot(mb, c, p, ent_slot_no(p, s));
		partition_compact(mb, p);
	}
	wr_unlock(mb);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Relations                                                            */
/* ------------------------------------------------------------------ */

static int missing_endpoint(kg_call *c, const kg_relation *r, const char *which, const char *id)
{
	return kg_call_error(c, KG_ENOTFOUND,
	                     "relation '%s': %s entity '%s' not found%s%s; add the entity first (both endpoints "
	                     "must exist in the same tenant)",
	                     r->id, which, id, c->tenant ? " in tenant " : "", c->tenant ? c->tenant : "");
}

/* The caller holds the write lock. */
static int add_relations_locked(mem_backend *mb, kg_call *c, const kg_relation *rels, size_t n, unsigned flags,
                                size_t *added)
{
	int skip = (flags & KG_BULK_SKIP_EXISTING) != 0;
	kg_relation **recs = NULL;
	uint32_t *ends = NULL;
	size_t n_recs = 0, first = 0;
	int rc = 0;
	*added = 0;
	partition *p = find_partition(mb, c->tenant);
	size_t need = 0;
	ends = malloc(2 * n * sizeof(*ends));
	if (!ends) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory adding %zu relations", n);
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		ent_slot *src = find_ent(p, rels[i].source_id), *dst = find_ent(p, rels[i].target_id);
		if (!src) {
			rc = missing_endpoint(c, &rels[i], "source", rels[i].source_id);
			goto cleanup;
		}
		if (!dst) {
			rc = missing_endpoint(c, &rels[i], "target", rels[i].target_id);
			goto cleanup;
		}
		ends[2 * i] = ent_slot_no(p, src);
		ends[2 * i + 1] = ent_slot_no(p, dst);
		if (find_rel(p, rels[i].id)) {
			if (skip)
				continue;
			rc = kg_call_error(c, KG_EEXISTS,
			                   "relation '%s' already exists; nothing of the batch was added "
			                   "(use kg_update_relation / kg_upsert_relation, or KG_BULK_SKIP_EXISTING)",
			                   rels[i].id);
			goto cleanup;
		}
		need += relation_cost(&rels[i]);
	}
	if ((rc = budget_check(mb, c, need, n == 1 ? "the relation" : "the batch")) < 0)
		goto cleanup;
	recs = calloc(n, sizeof(*recs));
	if (!recs || rels_reserve(p, n) < 0 || undo_reserve(mb, c, n) < 0) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory adding %zu relations; nothing was added", n);
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++, n_recs++) {
		if (!(recs[i] = make_relation(&rels[i], p->tenant, 0))) {
			rc = kg_call_error(c, KG_ENOMEM, "out of memory copying relation '%s'; nothing was added", rels[i].id);
			goto cleanup;
		}
	}
	first = p->n_rels;
	for (size_t i = 0; i < n; i++) {
		if (skip && find_rel(p, recs[i]->id))
			continue;
		uint32_t slot = (uint32_t)p->n_rels++;
		p->rels[slot] = (rel_slot){ .seq = p->next_seq++, .rec = recs[i], .src = ends[2 * i], .dst = ends[2 * i + 1] };
		idmap_put(&p->rel_ids, recs[i]->id, recs[i], kg_hash_str(recs[i]->id), slot);
		p->live_rels++;
		if (rel_link(p, slot) < 0) {
			/* Take back this one and the ones before it. */
			ptrdiff_t k = idmap_find(&p->rel_ids, recs[i]->id, kg_hash_str(recs[i]->id));
			idmap_remove_at(&p->rel_ids, (size_t)k);
			p->live_rels--;
			p->n_rels--;
			while (p->n_rels > first) {
				uint32_t u = (uint32_t)(p->n_rels - 1);
				mb->bytes -= relation_cost(p->rels[u].rec);
				free(rel_unlink(p, u));
				p->n_rels--;
			}
			if (c->txn)
				((mem_txn *)c->txn)->n -= *added;
			*added = 0;
			rc = kg_call_error(c, KG_ENOMEM, "out of memory linking relation '%s'; nothing was added", recs[i]->id);
			goto cleanup;
		}
		mb->bytes += relation_cost(recs[i]);
		undo_push(c, UNDO_REL_ADD, p, slot, NULL, 0, 0);
		recs[i] = NULL;
		(*added)++;
	}
cleanup:
	for (size_t i = 0; i < n_recs; i++)
		free(recs[i]);
	free(recs);
	free(ends);
	return rc;
}

static int mem_add_relations(kg_backend *b, kg_call *c, const kg_relation *rels, size_t n, unsigned flags,
                             size_t *added)
{
	mem_backend *mb = mb_of(b);
	*added = 0;
	int rc = wr_lock(mb, c);
	if (rc < 0)
		return rc;
	rc = add_relations_locked(mb, c, rels, n, flags, added);
	wr_unlock(mb);
	return rc;
}

static int mem_get_relation(kg_backend *b, kg_call *c, const char *id, kg_relation **out)
{
	mem_backend *mb = mb_of(b);
	rd_lock(mb);
	rel_slot *r = find_rel(find_partition(mb, c->tenant), id);
	int rc = 0;
	if (!r)
		rc = kg_call_error(c, KG_ENOTFOUND, "relation '%s' not found%s%s", id, c->tenant ? " in tenant " : "",
		                   c->tenant ? c->tenant : "");
	else if (!(*out = kg_relation_dup(r->rec)))
		rc = kg_call_error(c, KG_ENOMEM, "out of memory copying relation '%s'", id);
	rd_unlock(mb);
	return rc;
}

static int mem_update_relation(kg_backend *b, kg_call *c, const kg_relation *r, unsigned flags)
{
	mem_backend *mb = mb_of(b);
	int rc = wr_lock(mb, c);
	if (rc < 0)
		return rc;
	partition *p = find_partition(mb, c->tenant);
	rel_slot *s = find_rel(p, r->id);
	kg_relation *rec = NULL;
	if (!s) {
		size_t added;
		if (flags & KG_UPSERT)
			rc = add_relations_locked(mb, c, r, 1, 0, &added);
		else
			rc = kg_call_error(c, KG_ENOTFOUND, "relation '%s' not found; add it first (or use kg_upsert_relation)",
			                   r->id);
		goto cleanup;
	}
	ent_slot *src = find_ent(p, r->source_id), *dst = find_ent(p, r->target_id);
	if (!src || !dst) {
		rc = missing_endpoint(c, r, src ? "target" : "source", src ? r->target_id : r->source_id);
		goto cleanup;
	}
	size_t old_cost = relation_cost(s->rec), new_cost = relation_cost(r);
	if (new_cost > old_cost && (rc = budget_check(mb, c, new_cost - old_cost, "the update")) < 0)
		goto cleanup;
	if (undo_reserve(mb, c, 1) < 0 || !(rec = make_relation(r, p->tenant, s->rec->created_at))) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory updating relation '%s'; it is unchanged", r->id);
		goto cleanup;
	}
	uint32_t slot = rel_slot_no(p, s);
	uint32_t old_src = s->src, old_dst = s->dst;
	uint32_t new_src = ent_slot_no(p, src), new_dst = ent_slot_no(p, dst);
	if (new_src != old_src || new_dst != old_dst) {
		rel_unlink_adjacency(p, slot);
		s->src = new_src;
		s->dst = new_dst;
		if (rel_link(p, slot) < 0) {
			s->src = old_src;
			s->dst = old_dst;
			rel_link(p, slot); /* the old places had room a moment ago */
			free(rec);
			rc = kg_call_error(c, KG_ENOMEM, "out of memory moving relation '%s'; it is unchanged", r->id);
			goto cleanup;
		}
	}
	kg_relation *old = s->rec;
	ptrdiff_t k = idmap_find(&p->rel_ids, old->id, kg_hash_str(old->id));
	p->rel_ids.e[k].key = rec->id;
	p->rel_ids.e[k].rec = rec;
	s->rec = rec;
	mb->bytes = mb->bytes - old_cost + new_cost;
	if (!undo_push(c, UNDO_REL_REPLACE, p, slot, old, old_src, old_dst))
		free(old);
cleanup:
	wr_unlock(mb);
	return rc;
}

static int mem_delete_relation(kg_backend *b, kg_call *c, const char *id)
{
	mem_backend *mb = mb_of(b);
	int rc = wr_lock(mb, c);
	if (rc < 0)
		return rc;
	partition *p = find_partition(mb, c->tenant);
	rel_slot *s = find_rel(p, id);
	if (!s)
		rc = kg_call_error(c, KG_ENOTFOUND, "relation '%s' not found%s%s; nothing was deleted", id,
		                   c->tenant ? " in tenant " : "", c->tenant ? c->tenant : "");
	else if ((rc = undo_reserve(mb, c, 1)) == 0) {
		delete_relation_slot(mb, c, p, rel_slot_no(p, s));
		partition_compact(mb, p);
	}
	wr_unlock(mb);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Relations of an entity, neighbors                                    */
/* ------------------------------------------------------------------ */

static int not_found_entity(kg_call *c, const char *id)
{
	return kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s%s", id, c->tenant ? " in tenant " : "",
	                     c->tenant ? c->tenant : "");
}

static int type_ok(const char *want, const char *type) { return !want || strcmp(want, type) == 0; }

static int mem_relations_of(kg_backend *b, kg_call *c, const char *id, const char *relation_type, kg_direction dir,
                            kg_relation_list **out)
{
	mem_backend *mb = mb_of(b);
	int rc = 0;
	kg_relation_list *l = NULL;
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	ent_slot *e = find_ent(p, id);
	if (!e) {
		rc = not_found_entity(c, id);
		goto cleanup;
	}
	if (!(l = kg_relation_list_new()))
		goto oom;
	const u32vec none = { 0 };
	const u32vec *o = dir & KG_OUT ? &e->out : &none, *in = dir & KG_IN ? &e->in : &none;
	/* Merge the two sorted lists: insertion order, a self-loop once. */
	for (uint32_t i = 0, j = 0; i < o->n || j < in->n;) {
		uint32_t slot;
		if (j >= in->n || (i < o->n && o->v[i] <= in->v[j])) {
			slot = o->v[i++];
			if (j < in->n && in->v[j] == slot)
				j++;
		} else {
			slot = in->v[j++];
		}
		const kg_relation *r = p->rels[slot].rec;
		if (!type_ok(relation_type, r->relation_type))
			continue;
		kg_relation *copy = kg_relation_dup(r);
		if (!copy || kg_relation_list_push(l, copy) < 0)
			goto oom;
	}
	*out = l;
	l = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory listing the relations of '%s'", id);
cleanup:
	rd_unlock(mb);
	kg_relation_list_free(l);
	return rc;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static int mem_neighbors(kg_backend *b, kg_call *c, const char *id, const char *relation_type, kg_direction dir,
                         kg_entity_list **out)
{
	mem_backend *mb = mb_of(b);
	int rc = 0;
	kg_entity_list *l = NULL;
	uint32_t *found = NULL;
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	ent_slot *e = find_ent(p, id);
	if (!e) {
		rc = not_found_entity(c, id);
		goto cleanup;
	}
	size_t n = 0, cap = (size_t)(dir & KG_OUT ? e->out.n : 0) + (dir & KG_IN ? e->in.n : 0);
	if (!(l = kg_entity_list_new()) || (cap && !(found = malloc(cap * sizeof(*found)))))
		goto oom;
	if (dir & KG_OUT)
		for (uint32_t i = 0; i < e->out.n; i++)
			if (type_ok(relation_type, p->rels[e->out.v[i]].rec->relation_type))
				found[n++] = p->rels[e->out.v[i]].dst;
	if (dir & KG_IN)
		for (uint32_t i = 0; i < e->in.n; i++)
			if (type_ok(relation_type, p->rels[e->in.v[i]].rec->relation_type))
				found[n++] = p->rels[e->in.v[i]].src;
	if (n)
		qsort(found, n, sizeof(*found), u32_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i && found[i] == found[i - 1])
			continue;
		kg_entity *copy = kg_entity_dup(p->ents[found[i]].rec);
		if (!copy || kg_entity_list_push(l, copy) < 0)
			goto oom;
	}
	*out = l;
	l = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory listing the neighbors of '%s'", id);
cleanup:
	rd_unlock(mb);
	free(found);
	kg_entity_list_free(l);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Traversal and paths                                                  */
/* ------------------------------------------------------------------ */

/* Adds the entities and relations of a path (as slots) to a path list,
 * each entity once (`where` maps entity slot -> index in the list). */
typedef struct path_builder {
	kg_path_list *l;
	slotmap ent_index, rel_index;
} path_builder;

static int pb_init(path_builder *pb)
{
	memset(pb, 0, sizeof(*pb));
	pb->l = kg_path_list_new();
	int a = slotmap_init(&pb->ent_index, 16), r = slotmap_init(&pb->rel_index, 16);
	return pb->l && a == 0 && r == 0 ? 0 : KG_ENOMEM;
}

static void pb_free(path_builder *pb)
{
	kg_path_list_free(pb->l);
	slotmap_free(&pb->ent_index);
	slotmap_free(&pb->rel_index);
}

static int pb_add(path_builder *pb, partition *p, const uint32_t *nodes, const uint32_t *edges, size_t n_edges)
{
	size_t nidx[64], eidx[64];
	for (size_t i = 0; i <= n_edges; i++) {
		int32_t *have = slotmap_get(&pb->ent_index, nodes[i]);
		if (have) {
			nidx[i] = (size_t)*have;
			continue;
		}
		kg_entity *copy = kg_entity_dup(p->ents[nodes[i]].rec);
		if (!copy || kg_path_list_add_entity(pb->l, copy, &nidx[i]) < 0 ||
		    slotmap_set(&pb->ent_index, nodes[i], (int32_t)nidx[i]) < 0)
			return KG_ENOMEM;
	}
	for (size_t i = 0; i < n_edges; i++) {
		int32_t *have = slotmap_get(&pb->rel_index, edges[i]);
		if (have) {
			eidx[i] = (size_t)*have;
			continue;
		}
		kg_relation *copy = kg_relation_dup(p->rels[edges[i]].rec);
		if (!copy || kg_path_list_add_relation(pb->l, copy, &eidx[i]) < 0 ||
		    slotmap_set(&pb->rel_index, edges[i], (int32_t)eidx[i]) < 0)
			return KG_ENOMEM;
	}
	return kg_path_list_add_path(pb->l, nidx, n_edges + 1, eidx, 1.0 / (1.0 + (double)n_edges));
}

/* Longest path the builders handle; deeper requests are capped (a simple
 * path in a graph this engine holds in memory rarely needs more). */
#define MAX_PATH_EDGES 62

static int mem_traverse(kg_backend *b, kg_call *c, const char *start, const char *relation_type, int max_depth,
                        size_t max_results, kg_path_list **out)
{
	mem_backend *mb = mb_of(b);
	int rc = 0;
	path_builder pb;
	slotmap parent = { 0 }; /* entity slot -> relation slot it was reached by (-1: start) */
	uint32_t *queue = NULL;
	size_t qn = 0, qcap = 0;
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	ent_slot *s = find_ent(p, start);
	if (pb_init(&pb) < 0 || slotmap_init(&parent, 64) < 0)
		goto oom;
	if (!s) {
		rc = not_found_entity(c, start);
		goto cleanup;
	}
	if (max_depth > MAX_PATH_EDGES)
		max_depth = MAX_PATH_EDGES;
	uint32_t s0 = ent_slot_no(p, s);
	if (slotmap_set(&parent, s0, -1) < 0)
		goto oom;
	qcap = 64;
	if (!(queue = malloc(qcap * sizeof(*queue))))
		goto oom;
	queue[qn++] = s0;
	size_t head = 0, level_end = 1, results = 0;
	int depth = 0;
	while (head < qn && depth < max_depth && (!max_results || results < max_results)) {
		uint32_t at = queue[head++];
		const u32vec *o = &p->ents[at].out;
		for (uint32_t i = 0; i < o->n && (!max_results || results < max_results); i++) {
			const rel_slot *r = &p->rels[o->v[i]];
			if (!type_ok(relation_type, r->rec->relation_type) || slotmap_get(&parent, r->dst))
				continue;
			if (slotmap_set(&parent, r->dst, (int32_t)o->v[i]) < 0)
				goto oom;
			if (qn == qcap) {
				uint32_t *q = realloc(queue, qcap * 2 * sizeof(*q));
				if (!q)
					goto oom;
				queue = q;
				qcap *= 2;
			}
			queue[qn++] = r->dst;
			/* The path back to the start, then reversed. */
			uint32_t nodes[MAX_PATH_EDGES + 1], edges[MAX_PATH_EDGES];
			size_t len = (size_t)depth + 1;
			uint32_t node = r->dst;
			for (size_t k = len; k > 0; k--) {
				int32_t via = *slotmap_get(&parent, node);
				nodes[k] = node;
				edges[k - 1] = (uint32_t)via;
				node = p->rels[via].src;
			}
			nodes[0] = s0;
			if (pb_add(&pb, p, nodes, edges, len) < 0)
				goto oom;
			results++;
		}
		if (head == level_end) {
			depth++;
			level_end = qn;
		}
	}
	*out = pb.l;
	pb.l = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory traversing from '%s'", start);
cleanup:
	rd_unlock(mb);
	pb_free(&pb);
	slotmap_free(&parent);
	free(queue);
	return rc;
}

/* State of the depth-first walk for paths of one exact length. */
typedef struct path_walk {
	partition *p;
	const slotmap *dist; /* entity slot -> hops to the target (absent: unreachable) */
	uint32_t target;
	size_t want_len, max_paths;
	uint32_t nodes[MAX_PATH_EDGES + 1], edges[MAX_PATH_EDGES];
	path_builder *pb;
} path_walk;

static int on_path(const path_walk *w, size_t depth, uint32_t node)
{
	for (size_t i = 0; i <= depth; i++)
		if (w->nodes[i] == node)
			return 1;
	return 0;
}

/* Returns 1 when enough paths are found, 0 to go on, < 0 on error. */
static int walk(path_walk *w, size_t depth)
{
	uint32_t at = w->nodes[depth];
	const u32vec *o = &w->p->ents[at].out;
	size_t left = w->want_len - depth - 1; /* hops after the next one */
	for (uint32_t i = 0; i < o->n; i++) {
		uint32_t next = w->p->rels[o->v[i]].dst;
		if (left == 0) {
			if (next != w->target)
				continue;
		} else {
			const int32_t *d = slotmap_get(w->dist, next);
			if (!d || (size_t)*d > left || next == w->target || on_path(w, depth, next))
				continue;
		}
		w->nodes[depth + 1] = next;
		w->edges[depth] = o->v[i];
		if (left == 0) {
			if (pb_add(w->pb, w->p, w->nodes, w->edges, w->want_len) < 0)
				return KG_ENOMEM;
			if (w->max_paths && w->pb->l->count >= w->max_paths)
				return 1;
			continue;
		}
		int rc = walk(w, depth + 1);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * Simple paths, shortest first: a backward BFS from the target gives each
 * entity's distance to it (within max_depth), then for each length L a
 * depth-first walk from the source only enters entities that can still
 * reach the target in the hops left. Stops as soon as max_paths are found.
 */
static int mem_find_paths(kg_backend *b, kg_call *c, const char *source, const char *target, int max_depth,
                          size_t max_paths, kg_path_list **out)
{
	mem_backend *mb = mb_of(b);
	int rc = 0;
	path_builder pb;
	slotmap dist = { 0 };
	uint32_t *queue = NULL;
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	ent_slot *s = find_ent(p, source), *t = find_ent(p, target);
	if (pb_init(&pb) < 0 || slotmap_init(&dist, 64) < 0)
		goto oom;
	if (!s || !t) {
		rc = not_found_entity(c, s ? target : source);
		goto cleanup;
	}
	if (max_depth > MAX_PATH_EDGES)
		max_depth = MAX_PATH_EDGES;
	uint32_t src = ent_slot_no(p, s), dst = ent_slot_no(p, t);
	if (src == dst) {
		uint32_t one[1] = { src };
		if (pb_add(&pb, p, one, NULL, 0) < 0)
			goto oom;
	} else if (max_depth > 0) {
		/* Backward BFS from the target, up to max_depth - 1 hops (the source
		 * itself need not be reached by it: it only starts the walk). */
		size_t qn = 0, qcap = 64, head = 0;
		if (!(queue = malloc(qcap * sizeof(*queue))) || slotmap_set(&dist, dst, 0) < 0)
			goto oom;
		queue[qn++] = dst;
		int source_dist = -1;
		while (head < qn) {
			uint32_t at = queue[head++];
			int32_t d = *slotmap_get(&dist, at);
			const u32vec *in = &p->ents[at].in;
			for (uint32_t i = 0; i < in->n; i++) {
				uint32_t prev = p->rels[in->v[i]].src;
				if (prev == src && source_dist < 0)
					source_dist = d + 1;
				if (d + 1 >= max_depth || slotmap_get(&dist, prev))
					continue;
				if (slotmap_set(&dist, prev, d + 1) < 0)
					goto oom;
				if (qn == qcap) {
					uint32_t *q = realloc(queue, qcap * 2 * sizeof(*q));
					if (!q)
						goto oom;
					queue = q;
					qcap *= 2;
				}
				queue[qn++] = prev;
			}
		}
		if (source_dist > 0) {
			path_walk w = { .p = p, .dist = &dist, .target = dst, .max_paths = max_paths, .pb = &pb };
			w.nodes[0] = src;
			for (int len = source_dist; len <= max_depth; len++) {
				w.want_len = (size_t)len;
				int wr = walk(&w, 0);
				if (wr < 0)
					goto oom;
				if (wr == 1)
					break;
			}
		}
	}
	*out = pb.l;
	pb.l = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory finding paths from '%s' to '%s'", source, target);
cleanup:
	rd_unlock(mb);
	pb_free(&pb);
	slotmap_free(&dist);
	free(queue);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Listing, iterators, search                                           */
/* ------------------------------------------------------------------ */

static int mem_list_entities(kg_backend *b, kg_call *c, const char *entity_type, size_t limit, size_t offset,
                             kg_entity_list **out)
{
	mem_backend *mb = mb_of(b);
	int rc = 0;
	kg_entity_list *l = kg_entity_list_new();
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	if (!l)
		goto oom;
	for (size_t i = 0, seen = 0; p && i < p->n_ents && (!limit || l->count < limit); i++) {
		const kg_entity *e = p->ents[i].rec;
		if (!e || !type_ok(entity_type, e->entity_type) || seen++ < offset)
			continue;
		kg_entity *copy = kg_entity_dup(e);
		if (!copy || kg_entity_list_push(l, copy) < 0)
			goto oom;
	}
	*out = l;
	l = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory listing entities");
cleanup:
	rd_unlock(mb);
	kg_entity_list_free(l);
	return rc;
}

/* A cursor remembers the sequence number it reached, so writes, deletes
 * and compaction between calls never make it skip or repeat a record. */
typedef struct mem_iter {
	kg_iter base;
	mem_backend *mb;
	char *tenant, *type;
	int relations;
	uint64_t last_seq; /* 0 = before the first */
	size_t next_slot;
	uint64_t generation;
	int started;
	void *current;
} mem_iter;

static uint64_t slot_seq(const partition *p, int relations, size_t i)
{
	return relations ? p->rels[i].seq : p->ents[i].seq;
}

static int mem_iter_next(kg_iter *base, kg_call *c, const void **item)
{
	mem_iter *it = (mem_iter *)base;
	mem_backend *mb = it->mb;
	int rc = 0;
	free(it->current);
	it->current = NULL;
	rd_lock(mb);
	partition *p = find_partition(mb, it->tenant);
	if (!p)
		goto cleanup;
	size_t n = it->relations ? p->n_rels : p->n_ents;
	if (it->started && it->generation != p->generation) {
		/* Slots were renumbered: find the first with a later sequence. */
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (slot_seq(p, it->relations, mid) <= it->last_seq)
				lo = mid + 1;
			else
				hi = mid;
		}
		it->next_slot = lo;
	}
	it->generation = p->generation;
	it->started = 1;
	for (size_t i = it->next_slot; i < n; i++) {
		const char *type;
		if (it->relations) {
			const kg_relation *r = p->rels[i].rec;
			if (!r)
				continue;
			type = r->relation_type;
		} else {
			const kg_entity *e = p->ents[i].rec;
			if (!e)
				continue;
			type = e->entity_type;
		}
		if (!type_ok(it->type, type))
			continue;
		it->current = it->relations ? (void *)kg_relation_dup(p->rels[i].rec) : (void *)kg_entity_dup(p->ents[i].rec);
		if (!it->current) {
			rc = kg_call_error(c, KG_ENOMEM, "out of memory copying a record while iterating");
			goto cleanup;
		}
		it->last_seq = slot_seq(p, it->relations, i);
		it->next_slot = i + 1;
		*item = it->current;
		rc = 1;
		goto cleanup;
	}
	it->next_slot = n;
cleanup:
	rd_unlock(mb);
	return rc;
}

static void mem_iter_free(kg_iter *base)
{
	mem_iter *it = (mem_iter *)base;
	free(it->current);
	free(it->tenant);
	free(it->type);
	free(it);
}

static int iter_new(kg_backend *b, kg_call *c, const char *type, int relations, kg_iter **out)
{
	mem_iter *it = calloc(1, sizeof(*it));
	if (!it || (c->tenant && !(it->tenant = strdup(c->tenant))) || (type && !(it->type = strdup(type)))) {
		if (it)
			mem_iter_free(&it->base);
		return kg_call_error(c, KG_ENOMEM, "out of memory creating an iterator");
	}
	it->base.next = mem_iter_next;
	it->base.free = mem_iter_free;
	it->mb = mb_of(b);
	it->relations = relations;
	*out = &it->base;
	return 0;
}

static int mem_iter_entities(kg_backend *b, kg_call *c, const char *entity_type, kg_iter **out)
{
	return iter_new(b, c, entity_type, 0, out);
}

static int mem_iter_relations(kg_backend *b, kg_call *c, const char *relation_type, kg_iter **out)
{
	return iter_new(b, c, relation_type, 1, out);
}

typedef struct scored_slot {
	double score;
	uint32_t slot;
} scored_slot;

/* Better first: higher score, then earlier insertion. */
static int scored_better(const scored_slot *a, const scored_slot *b)
{
	return a->score > b->score || (a->score == b->score && a->slot < b->slot);
}

static int scored_cmp(const void *x, const void *y)
{
	const scored_slot *a = x, *b = y;
	return scored_better(a, b) ? -1 : scored_better(b, a) ? 1 : 0;
}

/* Keeps the k best in a min-heap (worst at the top). */
static void heap_offer(scored_slot *h, size_t *n, size_t k, scored_slot x)
{
	if (*n < k) {
		size_t i = (*n)++;
		while (i && scored_better(&h[(i - 1) / 2], &x)) {
			h[i] = h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		h[i] = x;
		return;
	}
	if (!scored_better(&x, &h[0]))
		return;
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, worst = i;
		const scored_slot *w = &x;
		if (l < *n && scored_better(w, &h[l])) {
			worst = l;
			w = &h[l];
		}
		if (r < *n && scored_better(w, &h[r]))
			worst = r;
		if (worst == i)
			break;
		h[i] = h[worst];
		i = worst;
	}
	h[i] = x;
}

static int emit_scored(partition *p, scored_slot *h, size_t n, kg_entity_list **out)
{
	if (n)
		qsort(h, n, sizeof(*h), scored_cmp);
	kg_entity_list *l = kg_entity_list_new();
	if (!l)
		return KG_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		kg_entity *copy = kg_entity_dup(p->ents[h[i].slot].rec);
		if (!copy || kg_entity_list_push_scored(l, copy, h[i].score) < 0) {
			kg_entity_list_free(l);
			return KG_ENOMEM;
		}
	}
	if (!l->scores && !(l->scores = malloc(sizeof(double)))) { /* empty results still carry scores */
		kg_entity_list_free(l);
		return KG_ENOMEM;
	}
	*out = l;
	return 0;
}

static int mem_vector_search(kg_backend *b, kg_call *c, const float *query, size_t dim, const char *entity_type,
                             size_t k, double threshold, kg_entity_list **out)
{
	mem_backend *mb = mb_of(b);
	int rc = 0;
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	size_t n = 0, cap = k < 4096 ? k : 4096;
	scored_slot *heap = malloc(cap * sizeof(*heap));
	if (!heap)
		goto oom;
	for (size_t i = 0; p && i < p->n_ents; i++) {
		const kg_entity *e = p->ents[i].rec;
		if (!e || !e->embedding || !type_ok(entity_type, e->entity_type))
			continue;
		if (e->embedding_dim != dim) {
			rc = kg_call_error(c, KG_EINVAL,
			                   "query dimension %zu does not match the embedding dimension %zu of entity '%s'; "
			                   "search with a vector of the same model",
			                   dim, e->embedding_dim, e->id);
			goto cleanup;
		}
		double score = kg_cosine(query, e->embedding, dim);
		if (!(score >= threshold))
			continue;
		if (n == cap && cap < k) {
			size_t ncap = cap * 2 < k ? cap * 2 : k;
			scored_slot *h = realloc(heap, ncap * sizeof(*h));
			if (!h)
				goto oom;
			heap = h;
			cap = ncap;
		}
		heap_offer(heap, &n, cap, (scored_slot){ score, (uint32_t)i });
	}
	if (emit_scored(p, heap, n, out) < 0)
		goto oom;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory in vector search");
cleanup:
	rd_unlock(mb);
	free(heap);
	return rc;
}

static int mem_text_search(kg_backend *b, kg_call *c, const char *query, const char *entity_type, size_t k,
                           double threshold, kg_text_method method, kg_entity_list **out)
{
	mem_backend *mb = mb_of(b);
	kg_text_scorer *ts = NULL;
	uint32_t *docs = NULL;
	scored_slot *heap = NULL;
	int rc = kg_text_scorer_new(query, method, &ts);
	if (rc < 0)
		return kg_call_error(c, rc, rc == KG_EINVAL ? "text query '%s' has no words to search for (letters or digits)"
		                                            : "out of memory preparing the text query '%s'",
		                     query);
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	size_t n_docs = 0, n = 0;
	if (p && p->live_ents && !(docs = malloc(p->live_ents * sizeof(*docs))))
		goto oom;
	for (size_t i = 0; p && i < p->n_ents; i++) {
		const kg_entity *e = p->ents[i].rec;
		if (!e || !type_ok(entity_type, e->entity_type))
			continue;
		size_t idx;
		if ((rc = kg_text_scorer_add(ts, e, &idx)) < 0)
			goto oom;
		docs[idx] = (uint32_t)i;
		n_docs++;
	}
	size_t cap = k < n_docs ? k : n_docs;
	if (!(heap = malloc((cap ? cap : 1) * sizeof(*heap))))
		goto oom;
	for (size_t d = 0; d < n_docs; d++) {
		double score = kg_text_scorer_score(ts, d);
		if (score > 0.0 && score >= threshold)
			heap_offer(heap, &n, cap, (scored_slot){ score, docs[d] });
	}
	if (emit_scored(p, heap, n, out) < 0)
		goto oom;
	rc = 0;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory in text search");
cleanup:
	rd_unlock(mb);
	kg_text_scorer_free(ts);
	free(docs);
	free(heap);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Property index                                                       */
/* ------------------------------------------------------------------ */

static int add_index_to(partition *p, const char *name)
{
	prop_index *ix = realloc(p->indexes, (p->n_indexes + 1) * sizeof(*ix));
	if (!ix)
		return KG_ENOMEM;
	p->indexes = ix;
	ix = &p->indexes[p->n_indexes];
	memset(ix, 0, sizeof(*ix));
	if (!(ix->name = strdup(name)))
		return KG_ENOMEM;
	p->n_indexes++;
	return index_rebuild(p, ix);
}

static int mem_add_indexed_property(kg_backend *b, kg_call *c, const char *name)
{
	mem_backend *mb = mb_of(b);
	int rc = wr_lock(mb, c);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < mb->n_index_names; i++)
		if (strcmp(mb->index_names[i], name) == 0)
			goto cleanup; /* already indexed */
	char **names = realloc(mb->index_names, (mb->n_index_names + 1) * sizeof(*names));
	if (!names)
		goto oom;
	mb->index_names = names;
	if (!(names[mb->n_index_names] = strdup(name)))
		goto oom;
	mb->n_index_names++;
	/* Every partition indexes it, so tenants behave alike. */
	if (add_index_to(&mb->global, name) < 0)
		goto oom;
	for (size_t i = 0; i < mb->n_tenants; i++)
		if (add_index_to(mb->tenants[i], name) < 0)
			goto oom;
	goto cleanup;
oom:
	/* An index left incomplete is rebuilt by the next lookup, so answers stay right. */
	rc = kg_call_error(c, KG_ENOMEM, "out of memory building the index on property '%s'", name);
cleanup:
	wr_unlock(mb);
	return rc;
}

static int mem_lookup_by_property(kg_backend *b, kg_call *c, const char *name, const char *json_value,
                                  kg_entity_list **out)
{
	mem_backend *mb = mb_of(b);
	json_error_t jerr;
	json_t *want = json_loads(json_value, JSON_DECODE_ANY, &jerr);
	if (!want)
		return kg_call_error(c, KG_EINVAL, "lookup value %s is not valid JSON (%s); quote strings, e.g. \"\\\"Alice\\\"\"",
		                     json_value, jerr.text);
	char *key = canonical_json(want);
	json_decref(want);
	if (!key)
		return kg_call_error(c, KG_ENOMEM, "out of memory in property lookup");
	int rc = 0;
	kg_entity_list *l = NULL;
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	prop_index *ix = NULL;
	for (size_t i = 0; p && i < p->n_indexes; i++)
		if (strcmp(p->indexes[i].name, name) == 0)
			ix = &p->indexes[i];
	if (!ix || ix->dirty) {
		rd_unlock(mb);
		free(key);
		return kg_generic_lookup_by_property(b, c, name, json_value, out);
	}
	if (!(l = kg_entity_list_new()))
		goto oom;
	pidx_entry *x = pidx_find(ix, key, kg_hash_str(key));
	for (uint32_t i = 0; x && i < x->slots.n; i++) {
		kg_entity *copy = kg_entity_dup(p->ents[x->slots.v[i]].rec);
		if (!copy || kg_entity_list_push(l, copy) < 0)
			goto oom;
	}
	*out = l;
	l = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory in property lookup");
cleanup:
	rd_unlock(mb);
	free(key);
	kg_entity_list_free(l);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Whole store                                                          */
/* ------------------------------------------------------------------ */

/* Counts per type with a small map keyed by the type strings of the records. */
typedef struct type_tally {
	const char **types;
	size_t *counts;
	size_t mask, n;
} type_tally;

static int tally_add(type_tally *t, const char *type)
{
	if ((t->n + 1) * 2 > (t->types ? t->mask + 1 : 0)) {
		size_t cap = t->types ? (t->mask + 1) * 2 : 16;
		type_tally bigger = { calloc(cap, sizeof(char *)), calloc(cap, sizeof(size_t)), cap - 1, 0 };
		if (!bigger.types || !bigger.counts) {
			free(bigger.types);
			free(bigger.counts);
			return KG_ENOMEM;
		}
		for (size_t i = 0; t->types && i <= t->mask; i++) {
			if (!t->types[i])
				continue;
			size_t j = kg_hash_str(t->types[i]) & bigger.mask;
			while (bigger.types[j])
				j = (j + 1) & bigger.mask;
			bigger.types[j] = t->types[i];
			bigger.counts[j] = t->counts[i];
			bigger.n++;
		}
		free(t->types);
		free(t->counts);
		*t = bigger;
	}
	size_t j = kg_hash_str(type) & t->mask;
	while (t->types[j] && strcmp(t->types[j], type) != 0)
		j = (j + 1) & t->mask;
	if (!t->types[j]) {
		t->types[j] = type;
		t->n++;
	}
	t->counts[j]++;
	return 0;
}

static int mem_stats(kg_backend *b, kg_call *c, kg_stats **out)
{
	mem_backend *mb = mb_of(b);
	type_tally te = { 0 }, tr = { 0 };
	kg_stats_builder *sb = kg_stats_builder_new();
	int rc = 0;
	rd_lock(mb);
	partition *p = find_partition(mb, c->tenant);
	if (!sb)
		goto oom;
	for (size_t i = 0; p && i < p->n_ents; i++)
		if (p->ents[i].rec && tally_add(&te, p->ents[i].rec->entity_type) < 0)
			goto oom;
	for (size_t i = 0; p && i < p->n_rels; i++)
		if (p->rels[i].rec && tally_add(&tr, p->rels[i].rec->relation_type) < 0)
			goto oom;
	for (size_t i = 0; te.types && i <= te.mask; i++)
		if (te.types[i] && kg_stats_builder_add(sb, 0, te.types[i], te.counts[i]) < 0)
			goto oom;
	for (size_t i = 0; tr.types && i <= tr.mask; i++)
		if (tr.types[i] && kg_stats_builder_add(sb, 1, tr.types[i], tr.counts[i]) < 0)
			goto oom;
	rc = kg_stats_builder_finish(sb, b->name, out);
	sb = NULL;
	if (rc < 0)
		goto oom;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory computing stats");
cleanup:
	rd_unlock(mb);
	if (sb) { /* finishing is the only way to free a builder */
		kg_stats *unused = NULL;
		if (kg_stats_builder_finish(sb, b->name, &unused) == 0)
			kg_stats_free(unused);
	}
	free(te.types);
	free(te.counts);
	free(tr.types);
	free(tr.counts);
	return rc;
}

static int mem_clear(kg_backend *b, kg_call *c)
{
	mem_backend *mb = mb_of(b);
	int rc = wr_lock(mb, c);
	if (rc < 0)
		return rc;
	partition *p = find_partition(mb, c->tenant);
	if (!p)
		goto cleanup;
	if (c->txn) {
		/* Inside a transaction every delete goes through the undo log. */
		if ((rc = undo_reserve(mb, c, p->live_ents + p->live_rels)) < 0)
			goto cleanup;
		for (size_t i = 0; i < p->n_ents; i++)
			if (p->ents[i].rec)
				delete_entity_slot(mb, c, p, (uint32_t)i);
		goto cleanup;
	}
	for (size_t i = 0; i < p->n_ents; i++)
		if (p->ents[i].rec)
			mb->bytes -= entity_cost(p->ents[i].rec);
	for (size_t i = 0; i < p->n_rels; i++)
		if (p->rels[i].rec)
			mb->bytes -= relation_cost(p->rels[i].rec);
	partition_reset(p);
cleanup:
	wr_unlock(mb);
	return rc;
}

static int mem_list_tenants(kg_backend *b, kg_call *c, char ***out, size_t *n)
{
	mem_backend *mb = mb_of(b);
	int rc = 0;
	rd_lock(mb);
	size_t count = 0, bytes = 0;
	for (size_t i = 0; i < mb->n_tenants; i++) {
		if (mb->tenants[i]->live_ents || mb->tenants[i]->live_rels) {
			count++;
			bytes += strlen(mb->tenants[i]->tenant) + 1;
		}
	}
	char **list = malloc(count * sizeof(char *) + bytes + 1);
	if (!list) {
		rc = kg_call_error(c, KG_ENOMEM, "out of memory listing tenants");
		goto cleanup;
	}
	char *cursor = (char *)(list + count);
	size_t k = 0;
	for (size_t i = 0; i < mb->n_tenants; i++) {
		partition *p = mb->tenants[i];
		if (!p->live_ents && !p->live_rels)
			continue;
		size_t len = strlen(p->tenant) + 1;
		memcpy(cursor, p->tenant, len);
		list[k++] = cursor;
		cursor += len;
	}
	*out = list;
	*n = count;
cleanup:
	rd_unlock(mb);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

static int mem_txn_begin(kg_backend *b, kg_call *c, void **txn)
{
	mem_backend *mb = mb_of(b);
	mem_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return kg_call_error(c, KG_ENOMEM, "out of memory starting a transaction");
	kg_call probe = *c;
	probe.txn = NULL;
	int rc = wr_lock(mb, &probe); /* waits for another open transaction */
	if (rc < 0) { /* probe shares c's message buffer */
		free(t);
		return rc;
	}
	mb->active_txn = t;
	wr_unlock(mb);
	*txn = t;
	return 0;
}

static void undo_one(mem_backend *mb, undo_rec *u)
{
	partition *p = u->p;
	switch (u->kind) {
	case UNDO_ENT_ADD:
		mb->bytes -= entity_cost(p->ents[u->slot].rec);
		free(ent_unlink(p, u->slot));
		break;
	case UNDO_ENT_REPLACE: {
		kg_entity *now = p->ents[u->slot].rec;
		mb->bytes = mb->bytes - entity_cost(now) + entity_cost(u->old);
		ent_set_record(p, u->slot, u->old);
		free(now);
		break;
	}
	case UNDO_ENT_DELETE:
		mb->bytes += entity_cost(u->old);
		ent_relink(p, u->slot, u->old);
		break;
	case UNDO_REL_ADD:
		mb->bytes -= relation_cost(p->rels[u->slot].rec);
		free(rel_unlink(p, u->slot));
		break;
	case UNDO_REL_REPLACE: {
		rel_slot *s = &p->rels[u->slot];
		kg_relation *now = s->rec;
		ptrdiff_t k = idmap_find(&p->rel_ids, now->id, kg_hash_str(now->id));
		p->rel_ids.e[k].key = ((kg_relation *)u->old)->id;
		p->rel_ids.e[k].rec = u->old;
		s->rec = u->old;
		if (s->src != u->old_src || s->dst != u->old_dst) {
			rel_unlink_adjacency(p, u->slot);
			s->src = u->old_src;
			s->dst = u->old_dst;
			rel_link(p, u->slot);
		}
		mb->bytes = mb->bytes - relation_cost(now) + relation_cost(s->rec);
		free(now);
		break;
	}
	case UNDO_REL_DELETE:
		mb->bytes += relation_cost(u->old);
		rel_relink(p, u->slot, u->old);
		break;
	}
	u->old = NULL;
}

static int txn_end(kg_backend *b, kg_call *c, void *txn, int commit)
{
	mem_backend *mb = mb_of(b);
	mem_txn *t = txn;
	pthread_mutex_lock(&mb->wlock);
	br_wrlock(&mb->rw);
	if (!commit)
		for (size_t i = t->n; i-- > 0;)
			undo_one(mb, &t->log[i]);
	for (size_t i = 0; i < t->n; i++)
		free(t->log[i].old); /* what a commit made unreachable */
	mb->active_txn = NULL;
	/* After a rollback too: the slots of undone adds are dead, and a
	 * begin/add/rollback loop must not grow the store. */
	partition_compact(mb, &mb->global);
	for (size_t i = 0; i < mb->n_tenants; i++)
		partition_compact(mb, mb->tenants[i]);
	br_wrunlock(&mb->rw);
	pthread_cond_broadcast(&mb->wcond);
	pthread_mutex_unlock(&mb->wlock);
	free(t->log);
	free(t);
	(void)c;
	return 0;
}

static int mem_txn_commit(kg_backend *b, kg_call *c, void *txn) { return txn_end(b, c, txn, 1); }
static int mem_txn_rollback(kg_backend *b, kg_call *c, void *txn) { return txn_end(b, c, txn, 0); }

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */
/* ------------------------------------------------------------------ */

static void partition_free(partition *p)
{
	partition_reset(p);
	for (size_t i = 0; i < p->n_indexes; i++)
		free(p->indexes[i].name);
	free(p->indexes);
	free(p->tenant);
}

static void mem_free(kg_backend *b)
{
	mem_backend *mb = mb_of(b);
	partition_free(&mb->global);
	for (size_t i = 0; i < mb->n_tenants; i++) {
		partition_free(mb->tenants[i]);
		free(mb->tenants[i]);
	}
	free(mb->tenants);
	for (size_t i = 0; i < mb->n_index_names; i++)
		free(mb->index_names[i]);
	free(mb->index_names);
	br_destroy(&mb->rw);
	pthread_mutex_destroy(&mb->wlock);
	pthread_cond_destroy(&mb->wcond);
	free(mb);
}

int kg_memory_backend_new(const kg_options *o, kg_backend **out, char *err, size_t errcap)
{
	*out = NULL;
	/* The reader lock's slots are cache-line aligned, so the struct is too. */
	size_t size = (sizeof(mem_backend) + 63) / 64 * 64;
	mem_backend *mb = aligned_alloc(64, size);
	if (mb)
		memset(mb, 0, size);
	if (!mb || br_init(&mb->rw) != 0) {
		free(mb);
		snprintf(err, errcap, "out of memory creating the memory store");
		return KG_ENOMEM;
	}
	pthread_mutex_init(&mb->wlock, NULL);
	pthread_cond_init(&mb->wcond, NULL);
	mb->budget = o ? o->memory_budget : 0;
	mb->lock_timeout = o && o->timeout > 0 ? o->timeout : 5.0;
	kg_backend *b = &mb->base;
	b->version = KG_BACKEND_VERSION;
	b->name = "memory";
	b->caps = KG_CAP_TRANSACTIONS | KG_CAP_NATIVE_PATHS | KG_CAP_PROPERTY_INDEX;
	b->add_entities = mem_add_entities;
	b->get_entity = mem_get_entity;
	b->update_entity = mem_update_entity;
	b->delete_entity = mem_delete_entity;
	b->add_relations = mem_add_relations;
	b->get_relation = mem_get_relation;
	b->update_relation = mem_update_relation;
	b->delete_relation = mem_delete_relation;
	b->relations_of = mem_relations_of;
	b->iter_entities = mem_iter_entities;
	b->iter_relations = mem_iter_relations;
	b->stats = mem_stats;
	b->clear = mem_clear;
	b->list_tenants = mem_list_tenants;
	b->txn_begin = mem_txn_begin;
	b->txn_commit = mem_txn_commit;
	b->txn_rollback = mem_txn_rollback;
	b->neighbors = mem_neighbors;
	b->traverse = mem_traverse;
	b->find_paths = mem_find_paths;
	b->list_entities = mem_list_entities;
	b->vector_search = mem_vector_search;
	b->text_search = mem_text_search;
	b->add_indexed_property = mem_add_indexed_property;
	b->lookup_by_property = mem_lookup_by_property;
	b->free = mem_free;
	*out = b;
	return 0;
}
