/*
 * generic_graph.c - the core's graph algorithms, written once over the
 * required backend operations (get_entity, relations_of, iter_entities).
 * A backend that can do better (an adjacency array, a recursive CTE)
 * overrides them; these define the answers every override must give.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgstore/backend.h"

/* ------------------------------------------------------------------ */
/* A string -> index map (keys borrowed from records the caller keeps)  */
/* ------------------------------------------------------------------ */

typedef struct strmap {
	const char **keys;
	size_t *vals;
	size_t mask, count;
} strmap;

static size_t *strmap_get(const strmap *m, const char *key)
{
	if (!m->keys)
		return NULL;
	for (size_t i = kg_hash_str(key) & m->mask;; i = (i + 1) & m->mask) {
		if (!m->keys[i])
			return NULL;
		if (strcmp(m->keys[i], key) == 0)
			return &m->vals[i];
	}
}

/* Adds key (absent) -> val; 0 or KG_ENOMEM. */
static int strmap_put(strmap *m, const char *key, size_t val)
{
	size_t cap = m->keys ? m->mask + 1 : 0;
	if ((m->count + 1) * 2 > cap) {
		size_t ncap = cap ? cap * 2 : 32;
		strmap bigger = { calloc(ncap, sizeof(char *)), malloc(ncap * sizeof(size_t)), ncap - 1, 0 };
		if (!bigger.keys || !bigger.vals) {
			free(bigger.keys);
			free(bigger.vals);
			return KG_ENOMEM;
		}
		for (size_t i = 0; i < cap; i++)
			if (m->keys[i])
				strmap_put(&bigger, m->keys[i], m->vals[i]);
		free(m->keys);
		free(m->vals);
		*m = bigger;
	}
	size_t i = kg_hash_str(key) & m->mask;
	while (m->keys[i])
		i = (i + 1) & m->mask;
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
	return 0;
}

static void strmap_free(strmap *m)
{
	free(m->keys);
	free(m->vals);
}

static int oom(kg_call *c, const char *what)
{
	return kg_call_error(c, KG_ENOMEM, "out of memory in %s", what);
}

/* ------------------------------------------------------------------ */
/* Neighbors                                                            */
/* ------------------------------------------------------------------ */

int kg_generic_neighbors(kg_backend *b, kg_call *c, const char *id, const char *relation_type, kg_direction dir,
                         kg_entity_list **out)
{
	kg_relation_list *rels = NULL;
	kg_entity_list *l = NULL;
	strmap seen = { 0 };
	int rc = b->relations_of(b, c, id, relation_type, dir, &rels);
	if (rc < 0)
		return rc;
	if (!(l = kg_entity_list_new())) {
		rc = oom(c, "neighbors");
		goto cleanup;
	}
	for (size_t i = 0; i < rels->count; i++) {
		const kg_relation *r = rels->items[i];
		/* The far end; for a self-loop that is the entity itself. */
		const char *other = strcmp(r->source_id, id) == 0 && (dir & KG_OUT) ? r->target_id : r->source_id;
		if (strmap_get(&seen, other))
			continue;
		if (strmap_put(&seen, other, 0) < 0) {
			rc = oom(c, "neighbors");
			goto cleanup;
		}
		kg_entity *e = NULL;
		rc = b->get_entity(b, c, other, &e);
		if (rc == KG_ENOTFOUND) { /* deleted since relations_of: not a neighbor any more */
			rc = 0;
			continue;
		}
		if (rc < 0)
			goto cleanup;
		if (kg_entity_list_push(l, e) < 0) {
			rc = oom(c, "neighbors");
			goto cleanup;
		}
	}
	*out = l;
	l = NULL;
cleanup:
	strmap_free(&seen);
	kg_relation_list_free(rels);
	kg_entity_list_free(l);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Traversal and paths: a local graph of the entities a search touches  */
/* ------------------------------------------------------------------ */

typedef struct gnode {
	size_t entity;            /* index in the path list (SIZE_MAX: not added yet) */
	kg_relation_list *out;    /* outgoing relations, fetched once */
	long dist;                /* hops to the target (find_paths), -1 unknown */
	size_t parent_node, parent_edge; /* traverse: how BFS reached it */
} gnode;

typedef struct graph_cache {
	kg_backend *b;
	kg_call *c;
	const char *relation_type;
	kg_path_list *pl;
	strmap index; /* entity id -> node */
	gnode *nodes;
	char **ids;   /* owned copies of the node ids (map keys point here) */
	size_t n, cap;
	strmap rel_index; /* relation id -> index in pl (keys owned by pl's records) */
} graph_cache;

static int gc_init(graph_cache *g, kg_backend *b, kg_call *c, const char *relation_type)
{
	memset(g, 0, sizeof(*g));
	g->b = b;
	g->c = c;
	g->relation_type = relation_type;
	g->pl = kg_path_list_new();
	return g->pl ? 0 : oom(c, "path search");
}

static void gc_free(graph_cache *g)
{
	for (size_t i = 0; i < g->n; i++) {
		kg_relation_list_free(g->nodes[i].out);
		free(g->ids[i]);
	}
	free(g->nodes);
	free(g->ids);
	strmap_free(&g->index);
	strmap_free(&g->rel_index);
	kg_path_list_free(g->pl);
}

/* The node of an entity id, created on first sight. */
static int gc_node(graph_cache *g, const char *id, size_t *node)
{
	size_t *have = strmap_get(&g->index, id);
	if (have) {
		*node = *have;
		return 0;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 32;
		gnode *nodes = realloc(g->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return oom(g->c, "path search");
		g->nodes = nodes;
		char **ids = realloc(g->ids, cap * sizeof(*ids));
		if (!ids)
			return oom(g->c, "path search");
		g->ids = ids;
		g->cap = cap;
	}
	char *copy = strdup(id);
	if (!copy)
		return oom(g->c, "path search");
	if (strmap_put(&g->index, copy, g->n) < 0) {
		free(copy);
		return oom(g->c, "path search");
	}
	g->ids[g->n] = copy;
	g->nodes[g->n] = (gnode){ SIZE_MAX, NULL, -1, SIZE_MAX, SIZE_MAX };
	*node = g->n++;
	return 0;
}

static int gc_out(graph_cache *g, size_t node, kg_relation_list **out)
{
	if (!g->nodes[node].out) {
		kg_relation_list *l = NULL;
		int rc = g->b->relations_of(g->b, g->c, g->ids[node], g->relation_type, KG_OUT, &l);
		if (rc < 0)
			return rc;
		g->nodes[node].out = l;
	}
	*out = g->nodes[node].out;
	return 0;
}

/* The index of a node's entity in the path list, fetched on first use. */
static int gc_entity(graph_cache *g, size_t node, size_t *idx)
{
	if (g->nodes[node].entity == SIZE_MAX) {
		kg_entity *e = NULL;
		int rc = g->b->get_entity(g->b, g->c, g->ids[node], &e);
		if (rc < 0)
			return rc;
		if (kg_path_list_add_entity(g->pl, e, &g->nodes[node].entity) < 0)
			return oom(g->c, "path search");
	}
	*idx = g->nodes[node].entity;
	return 0;
}

static int gc_relation(graph_cache *g, const kg_relation *r, size_t *idx)
{
	size_t *have = strmap_get(&g->rel_index, r->id);
	if (have) {
		*idx = *have;
		return 0;
	}
	kg_relation *copy = kg_relation_dup(r);
	if (!copy || kg_path_list_add_relation(g->pl, copy, idx) < 0)
		return oom(g->c, "path search");
	/* The key points into the path list's own copy, which lives as long. */
	if (strmap_put(&g->rel_index, copy->id, *idx) < 0)
		return oom(g->c, "path search");
	return 0;
}

/* Adds a path given as node numbers and relations. */
static int gc_add_path(graph_cache *g, const size_t *nodes, const kg_relation *const *edges, size_t n_edges)
{
	size_t stack_n[64], stack_e[64];
	size_t *nidx = stack_n, *eidx = stack_e;
	int rc = 0;
	if (n_edges >= 64) {
		nidx = malloc((n_edges + 1) * sizeof(*nidx));
		eidx = malloc((n_edges + 1) * sizeof(*eidx));
		if (!nidx || !eidx) {
			rc = oom(g->c, "path search");
			goto cleanup;
		}
	}
	for (size_t i = 0; i <= n_edges; i++)
		if ((rc = gc_entity(g, nodes[i], &nidx[i])) < 0)
			goto cleanup;
	for (size_t i = 0; i < n_edges; i++)
		if ((rc = gc_relation(g, edges[i], &eidx[i])) < 0)
			goto cleanup;
	if (kg_path_list_add_path(g->pl, nidx, n_edges + 1, eidx, 1.0 / (1.0 + (double)n_edges)) < 0)
		rc = oom(g->c, "path search");
cleanup:
	if (nidx != stack_n)
		free(nidx);
	if (eidx != stack_e)
		free(eidx);
	return rc;
}

static int entity_must_exist(kg_backend *b, kg_call *c, const char *id)
{
	kg_entity *e = NULL;
	int rc = b->get_entity(b, c, id, &e);
	kg_entity_free(e);
	return rc;
}

int kg_generic_traverse(kg_backend *b, kg_call *c, const char *start, const char *relation_type, int max_depth,
                        size_t max_results, kg_path_list **out)
{
	graph_cache g;
	size_t *queue = NULL, *path_nodes = NULL;
	const kg_relation **path_edges = NULL;
	int rc = gc_init(&g, b, c, relation_type);
	if (rc < 0)
		goto cleanup;
	if ((rc = entity_must_exist(b, c, start)) < 0)
		goto cleanup;
	size_t s0, qn = 0, qcap = 32, head = 0, results = 0;
	if ((rc = gc_node(&g, start, &s0)) < 0)
		goto cleanup;
	/* depth per node kept in dist; the BFS parent in parent_node/edge. */
	g.nodes[s0].dist = 0;
	queue = malloc(qcap * sizeof(*queue));
	path_nodes = malloc(((size_t)max_depth + 1) * sizeof(*path_nodes));
	path_edges = malloc(((size_t)max_depth + 1) * sizeof(*path_edges));
	if (!queue || !path_nodes || !path_edges) {
		rc = oom(c, "traverse");
		goto cleanup;
	}
	queue[qn++] = s0;
	while (head < qn && (!max_results || results < max_results)) {
		size_t at = queue[head++];
		if (g.nodes[at].dist >= max_depth)
			continue;
		kg_relation_list *o;
		if ((rc = gc_out(&g, at, &o)) < 0)
			goto cleanup;
		for (size_t i = 0; i < o->count && (!max_results || results < max_results); i++) {
			size_t next;
			size_t before = g.n;
			if ((rc = gc_node(&g, o->items[i]->target_id, &next)) < 0)
				goto cleanup;
			if (next < before)
				continue; /* seen already (the start included) */
			g.nodes[next].dist = g.nodes[at].dist + 1;
			g.nodes[next].parent_node = at;
			g.nodes[next].parent_edge = i;
			if (qn == qcap) {
				size_t *q = realloc(queue, qcap * 2 * sizeof(*q));
				if (!q) {
					rc = oom(c, "traverse");
					goto cleanup;
				}
				queue = q;
				qcap *= 2;
			}
			queue[qn++] = next;
			size_t len = (size_t)g.nodes[next].dist;
			for (size_t k = len, node = next; k > 0; k--) {
				size_t par = g.nodes[node].parent_node;
				path_nodes[k] = node;
				path_edges[k - 1] = g.nodes[par].out->items[g.nodes[node].parent_edge];
				node = par;
			}
			path_nodes[0] = s0;
			if ((rc = gc_add_path(&g, path_nodes, path_edges, len)) < 0)
				goto cleanup;
			results++;
		}
	}
	*out = g.pl;
	g.pl = NULL;
cleanup:
	gc_free(&g);
	free(queue);
	free(path_nodes);
	free(path_edges);
	return rc;
}

typedef struct walk_state {
	graph_cache *g;
	size_t target, want, max_paths;
	size_t *nodes;
	const kg_relation **edges;
} walk_state;

/* Depth-first walk for paths of exactly `want` edges: 1 = enough, 0 = go on. */
static int walk(walk_state *w, size_t depth)
{
	kg_relation_list *o;
	int rc = gc_out(w->g, w->nodes[depth], &o);
	if (rc < 0)
		return rc;
	size_t left = w->want - depth - 1;
	for (size_t i = 0; i < o->count; i++) {
		size_t *have = strmap_get(&w->g->index, o->items[i]->target_id);
		if (!have)
			continue; /* not within reach of the target */
		size_t next = *have;
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
		w->edges[depth] = o->items[i];
		if (left == 0) {
			if ((rc = gc_add_path(w->g, w->nodes, w->edges, w->want)) < 0)
				return rc;
			if (w->max_paths && w->g->pl->count >= w->max_paths)
				return 1;
			continue;
		}
		if ((rc = walk(w, depth + 1)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Shortest first: a backward BFS from the target (incoming relations) gives
 * each entity's distance to it within max_depth; then, for each length, a
 * depth-first walk from the source enters only entities that can still
 * reach the target in the hops left, so it stops at once with enough paths.
 */
int kg_generic_find_paths(kg_backend *b, kg_call *c, const char *source, const char *target, int max_depth,
                          size_t max_paths, kg_path_list **out)
{
	graph_cache g;
	size_t *queue = NULL;
	walk_state w = { 0 };
	kg_relation_list *in = NULL;
	int rc = gc_init(&g, b, c, NULL);
	if (rc < 0)
		goto cleanup;
	if ((rc = entity_must_exist(b, c, source)) < 0 || (rc = entity_must_exist(b, c, target)) < 0)
		goto cleanup;
	size_t src, dst;
	if ((rc = gc_node(&g, target, &dst)) < 0 || (rc = gc_node(&g, source, &src)) < 0)
		goto cleanup;
	if (src == dst) {
		if ((rc = gc_add_path(&g, &src, NULL, 0)) < 0)
			goto cleanup;
	} else if (max_depth > 0) {
		size_t qn = 0, qcap = 32, head = 0;
		long source_dist = -1;
		if (!(queue = malloc(qcap * sizeof(*queue)))) {
			rc = oom(c, "find_paths");
			goto cleanup;
		}
		g.nodes[dst].dist = 0;
		queue[qn++] = dst;
		while (head < qn) {
			size_t at = queue[head++];
			long d = g.nodes[at].dist;
			if ((rc = b->relations_of(b, c, g.ids[at], NULL, KG_IN, &in)) < 0)
				goto cleanup;
			for (size_t i = 0; i < in->count; i++) {
				const char *prev_id = in->items[i]->source_id;
				if (strcmp(prev_id, source) == 0 && source_dist < 0)
					source_dist = d + 1;
				if (d + 1 >= max_depth)
					continue;
				size_t prev;
				if ((rc = gc_node(&g, prev_id, &prev)) < 0)
					goto cleanup;
				if (g.nodes[prev].dist >= 0)
					continue;
				g.nodes[prev].dist = d + 1;
				if (qn == qcap) {
					size_t *q = realloc(queue, qcap * 2 * sizeof(*q));
					if (!q) {
						rc = oom(c, "find_paths");
						goto cleanup;
					}
					queue = q;
					qcap *= 2;
				}
				queue[qn++] = prev;
			}
			kg_relation_list_free(in);
			in = NULL;
		}
		if (source_dist > 0) {
			w.g = &g;
			w.target = dst;
			w.max_paths = max_paths;
			w.nodes = malloc(((size_t)max_depth + 1) * sizeof(*w.nodes));
			w.edges = malloc(((size_t)max_depth + 1) * sizeof(*w.edges));
			if (!w.nodes || !w.edges) {
				rc = oom(c, "find_paths");
				goto cleanup;
			}
			w.nodes[0] = src;
			for (long len = source_dist; len <= max_depth; len++) {
				w.want = (size_t)len;
				int wr = walk(&w, 0);
				if (wr < 0) {
					rc = wr;
					goto cleanup;
				}
				if (wr == 1)
					break;
			}
		}
	}
	*out = g.pl;
	g.pl = NULL;
cleanup:
	kg_relation_list_free(in);
	gc_free(&g);
	free(queue);
	free(w.nodes);
	free(w.edges);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Subgraph and listing                                                 */
/* ------------------------------------------------------------------ */

int kg_generic_get_entities(kg_backend *b, kg_call *c, const char *const *ids, size_t n, kg_entity_list **out)
{
	kg_entity_list *l = kg_entity_list_new();
	strmap seen = { 0 };
	int rc = l ? 0 : oom(c, "get_entities");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (strmap_get(&seen, ids[i]))
			continue;
		kg_entity *e = NULL;
		rc = b->get_entity(b, c, ids[i], &e);
		if (rc == KG_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc == 0 && (kg_entity_list_push(l, e) < 0 || strmap_put(&seen, ids[i], 0) < 0))
			rc = oom(c, "get_entities");
	}
	strmap_free(&seen);
	if (rc < 0) {
		kg_entity_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int kg_generic_subgraph(kg_backend *b, kg_call *c, const char *const *ids, size_t n, kg_subgraph **out)
{
	kg_subgraph *g = calloc(1, sizeof(*g));
	strmap members = { 0 };
	kg_relation_list *rels = NULL;
	int rc = 0;
	if (!g || !(g->relations = kg_relation_list_new())) {
		rc = oom(c, "subgraph");
		goto cleanup;
	}
	rc = b->version >= 2 && b->get_entities ? b->get_entities(b, c, ids, n, &g->entities)
	                                        : kg_generic_get_entities(b, c, ids, n, &g->entities);
	if (rc < 0)
		goto cleanup;
	for (size_t i = 0; i < g->entities->count; i++)
		if (strmap_put(&members, g->entities->items[i]->id, 0) < 0) {
			rc = oom(c, "subgraph");
			goto cleanup;
		}
	rc = 0;
	/* Outgoing relations only, so each relation is met once. */
	for (size_t i = 0; i < g->entities->count; i++) {
		if ((rc = b->relations_of(b, c, g->entities->items[i]->id, NULL, KG_OUT, &rels)) < 0)
			goto cleanup;
		for (size_t k = 0; k < rels->count; k++) {
			if (!strmap_get(&members, rels->items[k]->target_id))
				continue;
			if (kg_relation_list_push(g->relations, rels->items[k]) < 0) {
				rels->items[k] = NULL; /* push freed it */
				rc = oom(c, "subgraph");
				goto cleanup;
			}
			rels->items[k] = NULL; /* now owned by the subgraph */
		}
		kg_relation_list_free(rels);
		rels = NULL;
	}
	*out = g;
	g = NULL;
cleanup:
	kg_relation_list_free(rels);
	strmap_free(&members);
	kg_subgraph_free(g);
	return rc;
}

int kg_generic_list_entities(kg_backend *b, kg_call *c, const char *entity_type, size_t limit, size_t offset,
                             kg_entity_list **out)
{
	kg_iter *it = NULL;
	kg_entity_list *l = kg_entity_list_new();
	int rc = l ? b->iter_entities(b, c, entity_type, &it) : oom(c, "listing");
	if (rc < 0)
		goto cleanup;
	const void *item;
	size_t skipped = 0;
	while ((!limit || l->count < limit) && (rc = it->next(it, c, &item)) == 1) {
		if (skipped < offset) {
			skipped++;
			continue;
		}
		kg_entity *copy = kg_entity_dup(item);
		if (!copy || kg_entity_list_push(l, copy) < 0) {
			rc = oom(c, "listing");
			goto cleanup;
		}
	}
	if (rc < 0)
		goto cleanup;
	rc = 0;
	*out = l;
	l = NULL;
cleanup:
	if (it)
		it->free(it);
	kg_entity_list_free(l);
	return rc;
}
