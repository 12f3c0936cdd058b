/*
 * graph.c - traverse and find_paths, each one recursive query.
 *
 * Both give exactly the core's generic answers (generic_graph.c):
 *
 * traverse: breadth-first, one level per step of the recursion. A level is
 * one row holding arrays (the level's entities in discovery order, each
 * with its parent's position and the relation that found it) plus every
 * entity seen so far, so an entity is found once, at its least depth,
 * through the earliest parent and the earliest relation (insertion order):
 * the order a queue-based BFS discovers them in.
 *
 * find_paths: a backward search from the target gives each entity's
 * distance to it; the forward search from the source then enters only
 * entities that can still reach the target in the hops left, never
 * revisits an entity of its own path and stops at the target. Paths are
 * ordered by length, then by the insertion order of their relations step
 * by step, which is the order the generic depth-first walk finds them in;
 * the first max_paths are kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* $1 tenant, $2 start, $3 relation type or NULL, $4 max depth, $5 max results or NULL.
 * Rows: depth, position in the level (1-based), parent position, entity, relation. */
static const char SQL_TRAVERSE[] =
	"WITH RECURSIVE bfs(depth, ids, par, eids, visited, total) AS ("
	" SELECT 0, ARRAY[$2::text], ARRAY[0]::int8[], ARRAY[NULL::text], ARRAY[$2::text], 0::int8"
	" WHERE EXISTS (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $2)"
	" UNION ALL"
	" SELECT b.depth + 1, n.ids, n.par, n.eids, b.visited || n.ids, b.total + cardinality(n.ids)"
	" FROM bfs b CROSS JOIN LATERAL ("
	"  SELECT array_agg(x.target_id ORDER BY x.ord, x.seq) AS ids,"
	"   array_agg(x.ord ORDER BY x.ord, x.seq) AS par, array_agg(x.id ORDER BY x.ord, x.seq) AS eids"
	"  FROM (SELECT DISTINCT ON (r.target_id) r.target_id, f.ord, r.seq, r.id"
	"   FROM unnest(b.ids) WITH ORDINALITY f(nid, ord)"
	"   JOIN {R} r ON r.tenant_id = $1 AND r.source_id = f.nid"
	"   WHERE r.target_id <> ALL (b.visited) AND ($3::text IS NULL OR r.relation_type = $3)"
	"   ORDER BY r.target_id, f.ord, r.seq) x) n"
	" WHERE b.depth < $4::int4 AND n.ids IS NOT NULL AND ($5::int8 IS NULL OR b.total < $5::int8)),"
	" nodes AS (SELECT b.depth, f.pos, f.par, f.id, f.eid FROM bfs b,"
	"  unnest(b.ids, b.par, b.eids) WITH ORDINALITY f(id, par, eid, pos)"
	"  ORDER BY b.depth, f.pos LIMIT CASE WHEN $5::int8 IS NULL THEN NULL ELSE $5::int8 + 1 END)"
	" SELECT p.depth, p.pos, p.par, " PG_ENT_COLS_E ", " PG_REL_COLS_R " FROM nodes p"
	" LEFT JOIN {E} e ON e.tenant_id = $1 AND e.id = p.id"
	" LEFT JOIN {R} r ON r.tenant_id = $1 AND r.id = p.eid"
	" ORDER BY p.depth, p.pos";

enum { T_DEPTH, T_POS, T_PAR, T_ENT };
#define T_REL (T_ENT + PG_ENT_NCOLS)

int pg_traverse(kg_backend *b, kg_call *c, const char *start, const char *relation_type, int max_depth,
                size_t max_results, kg_path_list **out)
{
	pg_backend *pb = (pg_backend *)b;
	pg_use u;
	const pg_tables *t;
	char sql[3072];
	size_t *ent_idx = NULL, *rel_idx = NULL, *parent_row = NULL, *path_n = NULL, *path_e = NULL;
	kg_path_list *pl = NULL;
	PGresult *r = NULL;
	int rc = pg_use_begin(pb, c, 0, &u);
	if (rc < 0)
		return rc;
	if ((rc = pg_tables_for(pb, c, &u, &t)) < 0)
		goto cleanup;
	pg_params p = { 0 };
	pg_param_text(&p, c->tenant ? c->tenant : "");
	pg_param_text(&p, start);
	pg_param_text(&p, relation_type);
	pg_param_int4(&p, max_depth);
	if (max_results)
		pg_param_int8(&p, max_results > INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)max_results);
	else
		pg_param_bytes(&p, NULL, 0);
	pg_sql(t, SQL_TRAVERSE, sql, sizeof(sql));
	if (!(r = pg_run(&u, c, sql, &p, &rc, "traverse")))
		goto cleanup;
	int rows = PQntuples(r);
	if (rows == 0) {
		char tb[300];
		rc = kg_call_error(c, KG_ENOTFOUND, "entity '%s' not found%s", start, pg_in_tenant(c, tb, sizeof(tb)));
		goto cleanup;
	}
	ent_idx = malloc((size_t)rows * sizeof(size_t));
	rel_idx = malloc((size_t)rows * sizeof(size_t));
	parent_row = malloc((size_t)rows * sizeof(size_t));
	path_n = malloc(((size_t)max_depth + 2) * sizeof(size_t));
	path_e = malloc(((size_t)max_depth + 2) * sizeof(size_t));
	if (!ent_idx || !rel_idx || !parent_row || !path_n || !path_e || !(pl = kg_path_list_new()))
		goto oom;
	/* Rows come level by level, positions 1..m in each: the row of a
	 * parent is its level's first row plus its position - 1. */
	size_t level_start = 0, prev_level_start = 0;
	int level = 0;
	for (int i = 0; i < rows; i++) {
		int depth = (int)pg_get_int8(r, i, T_DEPTH);
		if (depth != level) {
			prev_level_start = level_start;
			level_start = (size_t)i;
			level = depth;
		}
		if (PQgetisnull(r, i, T_ENT)) {
			rc = kg_call_error(c, KG_ENOTFOUND,
			                   "traverse: relation '%s' leads to an entity that does not exist (a row written "
			                   "without kgstore's checks); delete or fix that relation",
			                   PQgetisnull(r, i, T_REL) ? "?" : PQgetvalue(r, i, T_REL));
			goto cleanup;
		}
		kg_entity *e = pg_row_entity(r, i, T_ENT, c->tenant);
		if (!e || kg_path_list_add_entity(pl, e, &ent_idx[i]) < 0)
			goto oom;
		if (depth == 0) {
			parent_row[i] = SIZE_MAX;
			continue;
		}
		parent_row[i] = prev_level_start + (size_t)pg_get_int8(r, i, T_PAR) - 1;
		kg_relation *x = pg_row_relation(r, i, T_REL, c->tenant);
		if (!x || kg_path_list_add_relation(pl, x, &rel_idx[i]) < 0)
			goto oom;
		/* The path: walk the parents back to the start. */
		size_t len = (size_t)depth, row = (size_t)i;
		for (size_t k = len; k > 0; k--) {
			path_n[k] = ent_idx[row];
			path_e[k - 1] = rel_idx[row];
			row = parent_row[row];
		}
		path_n[0] = ent_idx[0];
		if (kg_path_list_add_path(pl, path_n, len + 1, path_e, 1.0 / (1.0 + (double)len)) < 0)
			goto oom;
		if (max_results && pl->count >= max_results)
			break;
	}
	*out = pl;
	pl = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "traverse: out of memory");
cleanup:
	kg_path_list_free(pl);
	free(ent_idx);
	free(rel_idx);
	free(parent_row);
	free(path_n);
	free(path_e);
	PQclear(r);
	pg_use_end(&u);
	return rc;
}

/* $1 tenant, $2 source, $3 target, $4 max depth, $5 max paths or NULL.
 * First row: path number 0, `step` = 2 * source exists + target exists.
 * Then per path (numbered from 1) and step: the entity and the relation
 * that led to it (NULL at step 1). */
static const char SQL_FIND_PATHS[] =
	"WITH RECURSIVE back(id, d) AS ("
	" SELECT $3::text, 0"
	" UNION"
	" SELECT r.source_id, b.d + 1 FROM back b JOIN {R} r ON r.tenant_id = $1 AND r.target_id = b.id"
	" WHERE b.d + 1 < $4::int4),"
	" dist AS (SELECT id, min(d) AS d FROM back GROUP BY id),"
	" ok AS (SELECT EXISTS (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $2) AS s,"
	"  EXISTS (SELECT 1 FROM {E} WHERE tenant_id = $1 AND id = $3) AS t),"
	" paths(node, depth, nodes, eseq, eids) AS ("
	" SELECT $2::text, 0, ARRAY[$2::text], ARRAY[]::int8[], ARRAY[]::text[] FROM ok WHERE ok.s AND ok.t"
	" UNION ALL"
	" SELECT r.target_id, p.depth + 1, p.nodes || r.target_id, p.eseq || r.seq, p.eids || r.id"
	" FROM paths p JOIN {R} r ON r.tenant_id = $1 AND r.source_id = p.node"
	" JOIN dist x ON x.id = r.target_id"
	" WHERE p.node <> $3 AND p.depth < $4::int4 AND x.d <= $4::int4 - p.depth - 1"
	" AND r.target_id <> ALL (p.nodes)),"
	" hits AS (SELECT row_number() OVER (ORDER BY depth, eseq) AS pno, nodes, eids FROM paths"
	"  WHERE node = $3 ORDER BY depth, eseq LIMIT $5::int8)"
	" SELECT 0::int8, (ok.s::int * 2 + ok.t::int)::int8,"
	" NULL::text, NULL::text, NULL::jsonb, NULL::bytea, NULL::timestamp, NULL::timestamp, NULL::text,"
	" NULL::text, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::float8, NULL::timestamp,"
	" NULL::timestamp, NULL::text FROM ok"
	" UNION ALL"
	" SELECT * FROM (SELECT h.pno, s.i::int8, " PG_ENT_COLS_E ", " PG_REL_COLS_R
	" FROM hits h CROSS JOIN LATERAL generate_subscripts(h.nodes, 1) s(i)"
	" LEFT JOIN {E} e ON e.tenant_id = $1 AND e.id = h.nodes[s.i]"
	" LEFT JOIN {R} r ON r.tenant_id = $1 AND r.id = h.eids[s.i - 1]"
	" ORDER BY h.pno, s.i) steps";

enum { F_PNO, F_STEP, F_ENT };
#define F_REL (F_ENT + PG_ENT_NCOLS)

/* Entity ids already in the list -> index (paths share entities). */
typedef struct idx_map {
	char **keys;
	size_t *vals;
	size_t cap, count;
} idx_map;

/* 1 with *val set when key is there, else 0. */
static int map_get(const idx_map *m, const char *key, size_t *val)
{
	if (!m->cap)
		return 0;
	for (size_t j = kg_hash_str(key) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		if (!strcmp(m->keys[j], key)) {
			*val = m->vals[j];
			return 1;
		}
	}
	return 0;
}

/* Adds an absent key; 0 or KG_ENOMEM. */
static int map_put(idx_map *m, const char *key, size_t val)
{
	if ((m->count + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		idx_map n = { calloc(cap, sizeof(char *)), calloc(cap, sizeof(size_t)), cap, m->count };
		if (!n.keys || !n.vals) {
			free(n.keys);
			free(n.vals);
			return KG_ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->keys[i])
				continue;
			size_t j = kg_hash_str(m->keys[i]) & (cap - 1);
			while (n.keys[j])
				j = (j + 1) & (cap - 1);
			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
		}
		free(m->keys);
		free(m->vals);
		*m = n;
	}
	size_t j = kg_hash_str(key) & (m->cap - 1);
	while (m->keys[j])
		j = (j + 1) & (m->cap - 1);
	if (!(m->keys[j] = strdup(key)))
		return KG_ENOMEM;
	m->vals[j] = val;
	m->count++;
	return 0;
}

static void map_free(idx_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
}

int pg_find_paths(kg_backend *b, kg_call *c, const char *source, const char *target, int max_depth,
                  size_t max_paths, kg_path_list **out)
{
	pg_backend *pb = (pg_backend *)b;
	pg_use u;
	const pg_tables *t;
	char sql[4096], tb[300];
	size_t *path_n = NULL, *path_e = NULL;
	kg_path_list *pl = NULL;
	idx_map ents = { 0 }, rels = { 0 };
	PGresult *r = NULL;
	int rc = pg_use_begin(pb, c, 0, &u);
	if (rc < 0)
		return rc;
	if ((rc = pg_tables_for(pb, c, &u, &t)) < 0)
		goto cleanup;
	pg_params p = { 0 };
	pg_param_text(&p, c->tenant ? c->tenant : "");
	pg_param_text(&p, source);
	pg_param_text(&p, target);
	pg_param_int4(&p, max_depth);
	if (max_paths)
		pg_param_int8(&p, max_paths > INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)max_paths);
	else
		pg_param_bytes(&p, NULL, 0);
	pg_sql(t, SQL_FIND_PATHS, sql, sizeof(sql));
	if (!(r = pg_run(&u, c, sql, &p, &rc, "find_paths")))
		goto cleanup;
	int rows = PQntuples(r);
	int flags = rows ? (int)pg_get_int8(r, 0, F_STEP) : 0;
	const char *where = pg_in_tenant(c, tb, sizeof(tb));
	if (!(flags & 2)) {
		rc = kg_call_error(c, KG_ENOTFOUND, "find_paths: source entity '%s' not found%s", source, where);
		goto cleanup;
	}
	if (!(flags & 1)) {
		rc = kg_call_error(c, KG_ENOTFOUND, "find_paths: target entity '%s' not found%s", target, where);
		goto cleanup;
	}
	path_n = malloc(((size_t)max_depth + 2) * sizeof(size_t));
	path_e = malloc(((size_t)max_depth + 2) * sizeof(size_t));
	if (!path_n || !path_e || !(pl = kg_path_list_new()))
		goto oom;
	for (int i = 1; i < rows;) {
		int64_t pno = pg_get_int8(r, i, F_PNO);
		size_t len = 0;
		for (; i < rows && pg_get_int8(r, i, F_PNO) == pno; i++) {
			if (len > (size_t)max_depth) { /* the buffers hold max_depth + 1 nodes */
				rc = kg_call_error(c, KG_EINTERNAL, "find_paths: the server returned a path longer than "
				                                    "max_depth %d; please report this", max_depth);
				goto cleanup;
			}
			if (PQgetisnull(r, i, F_ENT)) {
				rc = kg_call_error(c, KG_ENOTFOUND,
				                   "find_paths: a relation leads to an entity that does not exist (a row "
				                   "written without kgstore's checks); delete or fix that relation");
				goto cleanup;
			}
			size_t idx;
			const char *id = PQgetvalue(r, i, F_ENT);
			if (!map_get(&ents, id, &idx)) {
				kg_entity *e = pg_row_entity(r, i, F_ENT, c->tenant);
				if (!e || kg_path_list_add_entity(pl, e, &idx) < 0 || map_put(&ents, id, idx) < 0)
					goto oom;
			}
			path_n[len] = idx;
			if (len > 0) {
				const char *rid = PQgetvalue(r, i, F_REL);
				if (!map_get(&rels, rid, &path_e[len - 1])) {
					kg_relation *x = pg_row_relation(r, i, F_REL, c->tenant);
					if (!x || kg_path_list_add_relation(pl, x, &path_e[len - 1]) < 0 ||
					    map_put(&rels, rid, path_e[len - 1]) < 0)
						goto oom;
				}
			}
			len++;
		}
		if (len && kg_path_list_add_path(pl, path_n, len, path_e, 1.0 / (double)len) < 0)
			goto oom;
	}
	*out = pl;
	pl = NULL;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "find_paths: out of memory");
cleanup:
	map_free(&ents);
	map_free(&rels);
	kg_path_list_free(pl);
	free(path_n);
	free(path_e);
	PQclear(r);
	pg_use_end(&u);
	return rc;
}
