/* state.h - the whole content of a namespace as text, field by field, so
 * that a test can say "nothing changed" (or "this is what changed") with
 * one comparison. Include after harness.h; needs jansson. */
#ifndef KG_TEST_STATE_H
#define KG_TEST_STATE_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgstore.h"

/* JSON text in one canonical form (keys sorted, compact), since a backend
 * may normalise what it stores (JSONB). */
static inline void put_json(FILE *f, const char *text)
{
	json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	char *c = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	fprintf(f, "%s", c ? c : text ? text : "(null)");
	free(c);
	json_decref(j);
}

static inline void put_str(FILE *f, const char *s) { fprintf(f, "[%s]", s ? s : "(null)"); }

/* Everything a namespace holds, as text: every entity and relation in
 * insertion order with every field (floats exactly, in hex), then the
 * stats. Two states compare field by field with strcmp. Freed by free(). */
static inline char *ns_state(kg_store *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	kg_entity_iter *ei = NULL;
	const kg_entity *e;
	int rc = kg_entity_iter_new(s, NULL, &ei);
	while (rc == 0 && (rc = kg_entity_iter_next(ei, &e)) == 1) {
		fprintf(f, "E ");
		put_str(f, e->id);
		put_str(f, e->entity_type);
		put_json(f, e->properties);
		fprintf(f, " emb %zu:", e->embedding_dim);
		for (size_t i = 0; e->embedding && i < e->embedding_dim; i++)
			fprintf(f, " %a", (double)e->embedding[i]);
		fprintf(f, " t %lld %lld src ", (long long)e->created_at, (long long)e->updated_at);
		put_str(f, e->source);
		put_str(f, e->tenant_id);
		fputc('\n', f);
	}
	kg_entity_iter_free(ei);
	if (rc < 0)
		fprintf(f, "entity iterator failed: %d\n", rc);
	kg_relation_iter *ri = NULL;
	const kg_relation *r;
	rc = kg_relation_iter_new(s, NULL, &ri);
	while (rc == 0 && (rc = kg_relation_iter_next(ri, &r)) == 1) {
		fprintf(f, "R ");
		put_str(f, r->id);
		put_str(f, r->relation_type);
		put_str(f, r->source_id);
		put_str(f, r->target_id);
		put_json(f, r->properties);
		fprintf(f, " w %a t %lld %lld src ", r->weight, (long long)r->created_at, (long long)r->updated_at);
		put_str(f, r->source);
		put_str(f, r->tenant_id);
		fputc('\n', f);
	}
	kg_relation_iter_free(ri);
	if (rc < 0)
		fprintf(f, "relation iterator failed: %d\n", rc);
	kg_stats *st = NULL;
	if (kg_get_stats(s, &st) == 0) {
		fprintf(f, "stats %zu %zu", st->entity_count, st->relation_count);
		for (size_t i = 0; i < st->n_entity_types; i++)
			fprintf(f, " %s=%zu", st->entity_types[i].type, st->entity_types[i].count);
		fprintf(f, " |");
		for (size_t i = 0; i < st->n_relation_types; i++)
			fprintf(f, " %s=%zu", st->relation_types[i].type, st->relation_types[i].count);
		fputc('\n', f);
	} else {
		fprintf(f, "stats failed\n");
	}
	kg_stats_free(st);
	fclose(f);
	return buf;
}

/* 1 if the two states are the same; else prints the first line that
 * differs and returns 0. */
static inline int state_same(const char *got, const char *want)
{
	if (got && want && strcmp(got, want) == 0)
		return 1;
	if (!got || !want) {
		fprintf(stderr, "  state: %s\n", got ? "no expected state" : "no state");
		return 0;
	}
	const char *a = got, *b = want;
	while (*a && *a == *b) {
		const char *na = strchr(a, '\n'), *nb = strchr(b, '\n');
		if (!na || !nb || na - a != nb - b || strncmp(a, b, (size_t)(na - a)) != 0)
			break;
		a = na + 1;
		b = nb + 1;
	}
	fprintf(stderr, "  state differs at\n    got:  %.*s\n    want: %.*s\n", (int)strcspn(a, "\n"), a,
	        (int)strcspn(b, "\n"), b);
	return 0;
}

#endif
