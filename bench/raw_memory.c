/*
 * raw_memory.c - the in-memory jobs done bare, the yardstick for the memory
 * backend: records copied into arrays, an open-addressing hash over the
 * ids, the relations as CSR (out and in), paths by a backward BFS for
 * distances plus a pruned depth-first walk, and brute-force cosine over
 * one contiguous float array. No validation, no copies handed out, no
 * locks except during the mixed run: the floor a store could reach.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

_Thread_local char bench_raw_err[512];

void bench_raw_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(bench_raw_err, sizeof(bench_raw_err), fmt, ap);
	va_end(ap);
}

typedef struct ment {
	char *id, *type, *props;
} ment;

typedef struct mrel {
	char *id, *type, *props;
	double weight;
	uint32_t src, dst;
} mrel;

typedef struct mdb {
	ment *ents;
	size_t n, cap;
	mrel *rels;
	size_t m;
	uint32_t *slots; /* entity index + 1, 0 = empty */
	size_t nslots;   /* power of two */
	uint32_t *out_off, *out_edge, *in_off, *in_edge; /* CSR: edge indexes */
	float *vecs, *norms;
	size_t dim;
	int locked;
	pthread_rwlock_t lock;
} mdb;

typedef struct mreader {
	mdb *db;
	int8_t *dist;     /* hops to the target, -1 = farther than the depth */
	uint32_t *stamp;  /* neighbor de-duplication */
	uint32_t epoch;
	uint32_t *touched, *queue, *path;
	size_t ntouched;
	uint32_t *top;
	float *topscore;
} mreader;

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ^ (h >> 29);
}

static char *dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static int64_t lookup(const mdb *db, const char *id)
{
	size_t mask = db->nslots - 1, i = hash_id(id) & mask;
	for (;; i = (i + 1) & mask) {
		uint32_t v = db->slots[i];
		if (!v)
			return -1;
		if (!strcmp(db->ents[v - 1].id, id))
			return v - 1;
	}
}

static int rehash(mdb *db, size_t want)
{
	size_t ns = 1024;
	while (ns < want * 2)
		ns *= 2;
	if (ns <= db->nslots)
		return 0;
	uint32_t *s = calloc(ns, sizeof(*s));
	if (!s) {
		bench_raw_fail("raw memory: out of memory for %zu hash slots", ns);
		return -1;
	}
	for (size_t e = 0; e < db->n; e++) {
		size_t i = hash_id(db->ents[e].id) & (ns - 1);
		while (s[i])
			i = (i + 1) & (ns - 1);
		s[i] = (uint32_t)e + 1;
	}
	free(db->slots);
	db->slots = s;
	db->nslots = ns;
	return 0;
}

static void *mem_open(const bench_cfg *cfg)
{
	(void)cfg;
	mdb *db = calloc(1, sizeof(*db));
	if (!db || rehash(db, 512) < 0) {
		free(db);
		bench_raw_fail("raw memory: out of memory");
		return NULL;
	}
	pthread_rwlock_init(&db->lock, NULL);
	return db;
}

static void mem_close(void *p)
{
	mdb *db = p;
	if (!db)
		return;
	for (size_t i = 0; i < db->n; i++) {
		free(db->ents[i].id);
		free(db->ents[i].type);
		free(db->ents[i].props);
	}
	for (size_t i = 0; i < db->m; i++) {
		free(db->rels[i].id);
		free(db->rels[i].type);
		free(db->rels[i].props);
	}
	free(db->ents);
	free(db->rels);
	free(db->slots);
	free(db->out_off);
	free(db->out_edge);
	free(db->in_off);
	free(db->in_edge);
	free(db->vecs);
	free(db->norms);
	pthread_rwlock_destroy(&db->lock);
	free(db);
}

/* Appends one entity (copies its strings and embedding) and indexes it. */
static int insert(mdb *db, const kg_entity *e)
{
	if (db->n + 1 > db->cap) {
		size_t cap = db->cap ? db->cap * 2 : 1024;
		ment *p = realloc(db->ents, cap * sizeof(*p));
		if (!p)
			goto oom;
		db->ents = p;
		db->cap = cap;
		if (db->dim) {
			float *v = realloc(db->vecs, cap * db->dim * sizeof(float)), *nm;
			if (!v)
				goto oom;
			db->vecs = v;
			if (!(nm = realloc(db->norms, cap * sizeof(float))))
				goto oom;
			db->norms = nm;
		}
	}
	if ((db->n + 1) * 2 > db->nslots && rehash(db, db->n + 1) < 0)
		return -1;
	if (lookup(db, e->id) >= 0) {
		bench_raw_fail("raw memory: duplicate id %s", e->id);
		return -1;
	}
	ment *m = &db->ents[db->n];
	m->id = dup(e->id);
	m->type = dup(e->entity_type);
	m->props = dup(e->properties ? e->properties : "{}");
	if (!m->id || !m->type || !m->props) {
		free(m->id);
		free(m->type);
		free(m->props);
		goto oom;
	}
	if (db->dim) {
		float *v = db->vecs + db->n * db->dim;
		if (e->embedding && e->embedding_dim == db->dim)
			memcpy(v, e->embedding, db->dim * sizeof(float));
		else
			memset(v, 0, db->dim * sizeof(float));
		db->norms[db->n] = bench_norm(v, db->dim);
	}
	size_t i = hash_id(e->id) & (db->nslots - 1);
	while (db->slots[i])
		i = (i + 1) & (db->nslots - 1);
	db->slots[i] = (uint32_t)db->n + 1;
	db->n++;
	return 0;
oom:
	bench_raw_fail("raw memory: out of memory");
	return -1;
}

static int mem_add_one(void *p, const kg_entity *e)
{
	mdb *db = p;
	if (db->locked)
		pthread_rwlock_wrlock(&db->lock);
	int rc = insert(db, e);
	if (db->locked)
		pthread_rwlock_unlock(&db->lock);
	return rc;
}

static int mem_load_entities(void *p, const kg_entity *e, size_t n)
{
	mdb *db = p;
	if (!db->n && n && e[0].embedding_dim)
		db->dim = e[0].embedding_dim;
	if (rehash(db, db->n + n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (insert(db, &e[i]) < 0)
			return -1;
	return 0;
}

/* Builds one CSR: off[v]..off[v+1] index edge[] with the relation indexes
 * whose key endpoint is v, in insertion order. */
static int build_csr(mdb *db, int by_src, uint32_t **offp, uint32_t **edgep)
{
	uint32_t *off = calloc(db->n + 1, sizeof(*off)), *edge = malloc((db->m ? db->m : 1) * sizeof(*edge));
	if (!off || !edge) {
		free(off);
		free(edge);
		bench_raw_fail("raw memory: out of memory for the adjacency");
		return -1;
	}
	for (size_t j = 0; j < db->m; j++)
		off[(by_src ? db->rels[j].src : db->rels[j].dst) + 1]++;
	for (size_t v = 0; v < db->n; v++)
		off[v + 1] += off[v];
	for (size_t j = 0; j < db->m; j++) {
		uint32_t v = by_src ? db->rels[j].src : db->rels[j].dst;
		edge[off[v]++] = (uint32_t)j;
	}
	for (size_t v = db->n; v > 0; v--) /* shift back: off[v] was advanced to off[v+1] */
		off[v] = off[v - 1];
	off[0] = 0;
	free(*offp);
	free(*edgep);
	*offp = off;
	*edgep = edge;
	return 0;
}

static int mem_load_relations(void *p, const kg_relation *r, size_t m)
{
	mdb *db = p;
	mrel *rels = realloc(db->rels, (db->m + m + 1) * sizeof(*rels));
	if (!rels) {
		bench_raw_fail("raw memory: out of memory");
		return -1;
	}
	db->rels = rels;
	for (size_t j = 0; j < m; j++) {
		int64_t s = lookup(db, r[j].source_id), t = lookup(db, r[j].target_id);
		if (s < 0 || t < 0) {
			bench_raw_fail("raw memory: relation %s has a missing endpoint", r[j].id);
			return -1;
		}
		mrel *x = &db->rels[db->m];
		x->id = dup(r[j].id);
		x->type = dup(r[j].relation_type);
		x->props = dup(r[j].properties ? r[j].properties : "{}");
		x->weight = r[j].weight;
		x->src = (uint32_t)s;
		x->dst = (uint32_t)t;
		db->m++;
		if (!x->id || !x->type || !x->props) {
			bench_raw_fail("raw memory: out of memory");
			return -1;
		}
	}
	if (build_csr(db, 1, &db->out_off, &db->out_edge) < 0 || build_csr(db, 0, &db->in_off, &db->in_edge) < 0)
		return -1;
	return 0;
}

static void *mem_reader(void *p)
{
	mdb *db = p;
	mreader *r = calloc(1, sizeof(*r));
	size_t n = db->n ? db->n : 1;
	if (!r)
		goto oom;
	r->db = db;
	r->dist = malloc(n);
	r->stamp = calloc(n, sizeof(uint32_t));
	r->touched = malloc(n * sizeof(uint32_t));
	r->queue = malloc(n * sizeof(uint32_t));
	r->path = malloc((BENCH_PATH_DEPTH + 2) * sizeof(uint32_t));
	r->top = malloc((BENCH_VEC_K + 1) * sizeof(uint32_t));
	r->topscore = malloc((BENCH_VEC_K + 1) * sizeof(float));
	if (!r->dist || !r->stamp || !r->touched || !r->queue || !r->path || !r->top || !r->topscore)
		goto oom;
	memset(r->dist, -1, n);
	return r;
oom:
	if (r) {
		free(r->dist);
		free(r->stamp);
		free(r->touched);
		free(r->queue);
		free(r->path);
		free(r->top);
		free(r->topscore);
		free(r);
	}
	bench_raw_fail("raw memory: out of memory for a reader");
	return NULL;
}

static void mem_reader_close(void *p)
{
	mreader *r = p;
	if (!r)
		return;
	free(r->dist);
	free(r->stamp);
	free(r->touched);
	free(r->queue);
	free(r->path);
	free(r->top);
	free(r->topscore);
	free(r);
}

static int mem_get(void *p, const char *id)
{
	mreader *r = p;
	mdb *db = r->db;
	if (db->locked)
		pthread_rwlock_rdlock(&db->lock);
	int64_t i = lookup(db, id);
	/* Touch the record, as a reader of it would. */
	int found = i >= 0 && db->ents[i].props[0] == '{';
	if (db->locked)
		pthread_rwlock_unlock(&db->lock);
	return found;
}

static int mem_neighbors(void *p, const char *id)
{
	mreader *r = p;
	mdb *db = r->db;
	int64_t v = lookup(db, id);
	if (v < 0)
		return 0;
	if (++r->epoch == 0) { /* wrapped: clear the stamps */
		memset(r->stamp, 0, db->n * sizeof(uint32_t));
		r->epoch = 1;
	}
	int count = 0;
	for (uint32_t k = db->out_off[v]; k < db->out_off[v + 1]; k++) {
		uint32_t t = db->rels[db->out_edge[k]].dst;
		if (r->stamp[t] != r->epoch) {
			r->stamp[t] = r->epoch;
			count++;
		}
	}
	return count;
}

/* Walks simple paths of exactly `len` edges from the path's last node,
 * entering only nodes that can still reach the target in the hops left. */
static void walk(mreader *r, uint32_t dst, int depth, int len, int *found)
{
	mdb *db = r->db;
	uint32_t v = r->path[depth];
	if (depth == len) {
		if (v == dst)
			(*found)++;
		return;
	}
	for (uint32_t k = db->out_off[v]; k < db->out_off[v + 1] && *found < BENCH_MAX_PATHS; k++) {
		uint32_t t = db->rels[db->out_edge[k]].dst;
		int8_t d = r->dist[t];
		if (d < 0 || d > len - depth - 1)
			continue;
		int on_path = 0;
		for (int i = 0; i <= depth; i++)
			on_path |= r->path[i] == t;
		if (on_path)
			continue;
		r->path[depth + 1] = t;
		walk(r, dst, depth + 1, len, found);
	}
}

static int mem_paths(void *p, const char *src_id, const char *dst_id)
{
	mreader *r = p;
	mdb *db = r->db;
	int64_t s = lookup(db, src_id), t = lookup(db, dst_id);
	if (s < 0 || t < 0)
		return 0;
	if (s == t)
		return 1;
	/* Backward BFS from the target over the in-CSR: distances up to the depth. */
	size_t head = 0, tail = 0;
	r->ntouched = 0;
	r->dist[t] = 0;
	r->touched[r->ntouched++] = (uint32_t)t;
	r->queue[tail++] = (uint32_t)t;
	while (head < tail) {
		uint32_t v = r->queue[head++];
		if (r->dist[v] >= BENCH_PATH_DEPTH)
			continue;
		for (uint32_t k = db->in_off[v]; k < db->in_off[v + 1]; k++) {
			uint32_t u = db->rels[db->in_edge[k]].src;
			if (r->dist[u] < 0) {
				r->dist[u] = (int8_t)(r->dist[v] + 1);
				r->touched[r->ntouched++] = u;
				r->queue[tail++] = u;
			}
		}
	}
	int found = 0;
	if (r->dist[s] >= 0) {
		r->path[0] = (uint32_t)s;
		for (int len = r->dist[s]; len <= BENCH_PATH_DEPTH && found < BENCH_MAX_PATHS; len++)
			walk(r, (uint32_t)t, 0, len, &found);
	}
	for (size_t i = 0; i < r->ntouched; i++)
		r->dist[r->touched[i]] = -1;
	return found;
}

float bench_norm(const float *v, size_t dim)
{
	float acc = 0;
	for (size_t d = 0; d < dim; d++)
		acc += v[d] * v[d];
	return sqrtf(acc);
}

/* Dot product in 8 independent lanes, so the compiler vectorises it
 * without -ffast-math. */
static float dot(const float *a, const float *b, size_t dim)
{
	float lane[8] = { 0 };
	size_t d = 0;
	for (; d + 8 <= dim; d += 8)
		for (int l = 0; l < 8; l++)
			lane[l] += a[d + l] * b[d + l];
	float s = 0;
	for (; d < dim; d++)
		s += a[d] * b[d];
	for (int l = 0; l < 8; l++)
		s += lane[l];
	return s;
}

size_t bench_cosine_topk(const float *rows, const float *norms, size_t n, size_t dim, const float *q, size_t k,
                         uint32_t *top, float *topscore)
{
	float qn = bench_norm(q, dim);
	size_t have = 0;
	for (size_t i = 0; i < n; i++) {
		float nn = norms ? norms[i] : bench_norm(rows + i * dim, dim);
		if (nn == 0 || qn == 0)
			continue;
		float s = dot(rows + i * dim, q, dim) / (nn * qn);
		if (have == k && s <= topscore[k - 1])
			continue;
		/* Insertion into the sorted top-k (k is small). */
		size_t j = have < k ? have++ : k - 1;
		while (j > 0 && topscore[j - 1] < s) {
			topscore[j] = topscore[j - 1];
			top[j] = top[j - 1];
			j--;
		}
		topscore[j] = s;
		top[j] = (uint32_t)i;
	}
	return have;
}

static int mem_vector(void *p, const float *q, size_t dim, size_t k)
{
	mreader *r = p;
	mdb *db = r->db;
	if (dim != db->dim || k > BENCH_VEC_K) {
		bench_raw_fail("raw memory: vector of dimension %zu over rows of %zu", dim, db->dim);
		return -1;
	}
	return (int)bench_cosine_topk(db->vecs, db->norms, db->n, dim, q, k, r->top, r->topscore);
}

static void mem_concurrent(void *p, int on)
{
	((mdb *)p)->locked = on;
}

const raw_engine bench_raw_memory = {
	.backend = "memory",
	.open = mem_open,
	.close = mem_close,
	.add_one = mem_add_one,
	.load_entities = mem_load_entities,
	.load_relations = mem_load_relations,
	.reader = mem_reader,
	.reader_close = mem_reader_close,
	.get = mem_get,
	.neighbors = mem_neighbors,
	.paths = mem_paths,
	.vector = mem_vector,
	.concurrent = mem_concurrent,
};
