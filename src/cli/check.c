/*
 * check.c - `kgstore check`: reads every entity and relation of every
 * tenant through the public API and reports what a store should never
 * hold: two entities (or relations) with one id in a tenant, relations
 * whose endpoints do not exist. Files written by other programs (the
 * original system, hand-written SQL) are where these come from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kgstore/backend.h" /* kg_hash_str */

/* A set of strings: open addressing, grows at 50% load. */
typedef struct strset {
	char **slots;
	size_t cap, count;
} strset;

/* 1 if s was added, 0 if it was there, -1 out of memory. */
static int strset_add(strset *set, const char *s)
{
	if (set->count * 2 >= set->cap) {
		size_t ncap = set->cap ? set->cap * 2 : 1024;
		char **ns = calloc(ncap, sizeof *ns);
		if (!ns)
			return -1;
		for (size_t i = 0; i < set->cap; i++) {
			if (!set->slots[i])
				continue;
			size_t j = kg_hash_str(set->slots[i]) & (ncap - 1);
			while (ns[j])
				j = (j + 1) & (ncap - 1);
			ns[j] = set->slots[i];
		}
		free(set->slots);
		set->slots = ns;
		set->cap = ncap;
	}
	size_t j = kg_hash_str(s) & (set->cap - 1);
	for (; set->slots[j]; j = (j + 1) & (set->cap - 1))
		if (!strcmp(set->slots[j], s))
			return 0;
	if (!(set->slots[j] = strdup(s)))
		return -1;
	set->count++;
	return 1;
}

static int strset_has(const strset *set, const char *s)
{
	if (!set->cap)
		return 0;
	for (size_t j = kg_hash_str(s) & (set->cap - 1); set->slots[j]; j = (j + 1) & (set->cap - 1))
		if (!strcmp(set->slots[j], s))
			return 1;
	return 0;
}

static void strset_free(strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
	memset(set, 0, sizeof *set);
}

typedef struct check_counts {
	size_t entities, relations, dup_entities, dup_relations, dangling;
} check_counts;

/* Shows at most this many examples of each problem. */
#define CHECK_EXAMPLES 10

static int check_tenant(kg_store *s, const char *tenant, check_counts *c, cli_progress *p)
{
	strset ids = { 0 }, rel_ids = { 0 };
	kg_entity_iter *eit = NULL;
	kg_relation_iter *rit = NULL;
	const char *where = tenant ? tenant : "global";
	int rc = kg_entity_iter_new(s, NULL, &eit);
	const kg_entity *e;
	while (rc == KG_OK && (rc = kg_entity_iter_next(eit, &e)) == 1) {
		rc = KG_OK;
		int added = strset_add(&ids, e->id);
		if (added < 0) {
			rc = KG_ENOMEM;
			break;
		}
		if (!added && c->dup_entities++ < CHECK_EXAMPLES)
			printf("duplicate entity id %s in tenant %s\n", e->id, where);
		if (++c->entities % 4096 == 0)
			cli_progress_update(p, c->entities + c->relations);
	}
	if (rc == KG_OK)
		rc = kg_relation_iter_new(s, NULL, &rit);
	const kg_relation *r;
	while (rc == KG_OK && (rc = kg_relation_iter_next(rit, &r)) == 1) {
		rc = KG_OK;
		int added = strset_add(&rel_ids, r->id);
		if (added < 0) {
			rc = KG_ENOMEM;
			break;
		}
		if (!added && c->dup_relations++ < CHECK_EXAMPLES)
			printf("duplicate relation id %s in tenant %s\n", r->id, where);
		int has_src = strset_has(&ids, r->source_id), has_dst = strset_has(&ids, r->target_id);
		if ((!has_src || !has_dst) && c->dangling++ < CHECK_EXAMPLES)
			printf("dangling relation %s in tenant %s: %s %s -> %s %s\n", r->id, where, r->source_id,
			       has_src ? "" : "(missing)", r->target_id, has_dst ? "" : "(missing)");
		if (++c->relations % 4096 == 0)
			cli_progress_update(p, c->entities + c->relations);
	}
	kg_entity_iter_free(eit);
	kg_relation_iter_free(rit);
	strset_free(&ids);
	strset_free(&rel_ids);
	return rc;
}

static const char CHECK_HELP[] =
	"usage: kgstore [-s URI] check [--json]\n\n"
	"Reads every tenant of the store and reports its schema version, duplicate\n"
	"entity or relation ids and relations whose endpoints are missing. Exit code 0 when the store is\n"
	"sound, 5 when problems were found.\n";

int cli_cmd_check(int argc, char **argv)
{
	int rc = cli_getopt(argc, argv, "check", CHECK_HELP, NULL, "", NULL, NULL);
	if (rc >= 0)
		return rc;
	kg_store *base, *view;
	if ((rc = cli_open("check", &base, &view)) != CLI_OK)
		return rc;
	char **tenants = NULL;
	size_t nt = 0;
	if ((rc = kg_list_tenants(base, &tenants, &nt)) != KG_OK) {
		rc = cli_fail("check", base, rc, "listing tenants");
		cli_close(base, view);
		return rc;
	}
	int version = 0;
	rc = kg_schema_version(base, &version);
	if (rc != KG_OK) {
		rc = cli_fail("check", base, rc, "reading the schema version");
		free(tenants);
		cli_close(base, view);
		return rc;
	}
	check_counts c = { 0 };
	cli_progress p;
	cli_progress_start(&p, "checking", 0);
	rc = check_tenant(base, NULL, &c, &p);
	for (size_t i = 0; rc == KG_OK && i < nt; i++) {
		kg_store *t = NULL;
		rc = kg_tenant(base, tenants[i], &t);
		if (rc == KG_OK)
			rc = check_tenant(t, tenants[i], &c, &p);
		if (rc != KG_OK)
			rc = cli_fail("check", t ? t : base, rc, tenants[i]);
		kg_close(t);
	}
	cli_progress_done(&p, c.entities + c.relations);
	if (rc < 0)
		rc = cli_fail("check", base, rc, "reading the store");
	if (rc == KG_OK) {
		int bad = c.dup_entities || c.dup_relations || c.dangling;
		if (g_cli.json)
			printf("{\"backend\": \"%s\", \"schema_version\": %d, \"tenants\": %zu, \"entities\": %zu, \"relations\": %zu, "
			       "\"duplicate_entity_ids\": %zu, \"duplicate_relation_ids\": %zu, "
			       "\"dangling_relations\": %zu, \"ok\": %s}\n",
			       kg_backend_name(base), version, nt, c.entities, c.relations, c.dup_entities,
			       c.dup_relations, c.dangling, bad ? "false" : "true");
		else
			printf("%s store, schema version %d%s: %zu tenants besides the global namespace, %zu entities, "
			       "%zu relations\n"
			       "duplicate entity ids: %zu, duplicate relation ids: %zu, dangling relations: %zu: %s\n",
			       kg_backend_name(base), version, version == KG_SCHEMA_VERSION ? " (current)" : " (NOT this kgstore's)",
			       nt, c.entities, c.relations, c.dup_entities, c.dup_relations, c.dangling,
			       bad ? "PROBLEMS FOUND" : "ok");
		rc = bad ? CLI_IO : CLI_OK;
	}
	free(tenants);
	cli_close(base, view);
	return rc;
}
