/*
 * query.c - the subcommands that read a store: init, get, relation,
 * neighbors, paths, list, search, stats, check. Human output by default,
 * the original's JSON objects with --json.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* One-line summary of an entity's properties for human output. */
static void print_props_short(FILE *f, const char *props, int width)
{
	const char *p = props ? props : "{}";
	int len = (int)strlen(p);
	if (len <= width)
		fputs(p, f);
	else
		fprintf(f, "%.*s...", width - 3, p);
}

static void print_entity_line(const kg_entity *e)
{
	printf("%-28s %-14s ", e->id, e->entity_type);
	print_props_short(stdout, e->properties, 90);
	putchar('\n');
}

static void print_entity_list_json(const kg_entity_list *l)
{
	fputs("[", stdout);
	for (size_t i = 0; i < l->count; i++) {
		fputs(i ? ",\n " : "", stdout);
		cli_print_entity(stdout, l->items[i], l->scores ? l->scores[i] : 0, l->scores != NULL);
	}
	fputs("]\n", stdout);
}

/* ---------------------------------------------------------------- init */

static const char INIT_HELP[] =
	"usage: kgstore [-s URI] init\n\n"
	"Creates the store's tables (the original system's schema) if they are absent\n"
	"and prints what was opened. Opening an existing store changes nothing.\n";

int cli_cmd_init(int argc, char **argv)
{
	int rc = cli_getopt(argc, argv, "init", INIT_HELP, NULL, "", NULL, NULL);
	if (rc >= 0)
		return rc;
	kg_store *base, *s;
	if ((rc = cli_open("init", &base, &s)) != CLI_OK)
		return rc;
	kg_stats *st = NULL;
	if ((rc = kg_get_stats(s, &st)) != KG_OK) {
		rc = cli_fail("init", s, rc, "reading the store");
		cli_close(base, s);
		return rc;
	}
	if (g_cli.json)
		printf("{\"backend\": \"%s\", \"entity_count\": %zu, \"relation_count\": %zu}\n", st->backend,
		       st->entity_count, st->relation_count);
	else
		printf("ready: %s store with %zu entities and %zu relations\n", st->backend, st->entity_count,
		       st->relation_count);
	kg_stats_free(st);
	cli_close(base, s);
	return CLI_OK;
}

/* ---------------------------------------------------------- get, relation */

static const char GET_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] get ID [--json]\n\n"
	"Prints the entity ID (exit code 2 if there is none).\n";
static const char RELATION_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] relation ID [--json]\n\n"
	"Prints the relation ID (exit code 2 if there is none).\n";

static void print_time_field(const char *label, int64_t us)
{
	char buf[32];
	kg_format_time(us, buf);
	printf("  %-11s %s\n", label, buf);
}

int cli_cmd_get(int argc, char **argv)
{
	int rc = cli_getopt(argc, argv, "get", GET_HELP, NULL, "", NULL, NULL);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc) {
		fputs(GET_HELP, stderr);
		return CLI_USAGE;
	}
	kg_store *base, *s;
	if ((rc = cli_open("get", &base, &s)) != CLI_OK)
		return rc;
	kg_entity *e = NULL;
	rc = kg_get_entity(s, argv[optind], &e);
	if (rc != KG_OK) {
		rc = cli_fail("get", s, rc, argv[optind]);
		cli_close(base, s);
		return rc;
	}
	if (g_cli.json) {
		cli_print_entity(stdout, e, 0, 0);
		putchar('\n');
	} else {
		printf("%s (%s)\n", e->id, e->entity_type);
		printf("  %-11s %s\n", "properties", e->properties);
		if (e->embedding)
			printf("  %-11s %zu floats\n", "embedding", e->embedding_dim);
		if (e->source)
			printf("  %-11s %s\n", "source", e->source);
		if (e->tenant_id)
			printf("  %-11s %s\n", "tenant", e->tenant_id);
		print_time_field("created", e->created_at);
		print_time_field("updated", e->updated_at);
	}
	kg_entity_free(e);
	cli_close(base, s);
	return CLI_OK;
}

int cli_cmd_relation(int argc, char **argv)
{
	int rc = cli_getopt(argc, argv, "relation", RELATION_HELP, NULL, "", NULL, NULL);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc) {
		fputs(RELATION_HELP, stderr);
		return CLI_USAGE;
	}
	kg_store *base, *s;
	if ((rc = cli_open("relation", &base, &s)) != CLI_OK)
		return rc;
	kg_relation *r = NULL;
	rc = kg_get_relation(s, argv[optind], &r);
	if (rc != KG_OK) {
		rc = cli_fail("relation", s, rc, argv[optind]);
		cli_close(base, s);
		return rc;
	}
	if (g_cli.json) {
		cli_print_relation(stdout, r);
		putchar('\n');
	} else {
		printf("%s: %s -%s-> %s (weight %g)\n", r->id, r->source_id, r->relation_type, r->target_id, r->weight);
		printf("  %-11s %s\n", "properties", r->properties);
		if (r->source)
			printf("  %-11s %s\n", "source", r->source);
		print_time_field("created", r->created_at);
	}
	kg_relation_free(r);
	cli_close(base, s);
	return CLI_OK;
}

/* ------------------------------------------------------------ neighbors */

static const char NEIGHBORS_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] neighbors ID [--type T] [--direction out|in|both] [--json]\n\n"
	"Entities linked to ID by a relation (of type T), each once. Direction: out\n"
	"(default: relations leaving ID), in, or both. Human output also lists the\n"
	"relations; --json prints the entities as a JSON array.\n";

typedef struct nb_opts {
	const char *type;
	kg_direction dir;
} nb_opts;

static int nb_opt(int ch, const char *arg, void *ctx)
{
	nb_opts *o = ctx;
	if (ch == 't') {
		o->type = arg;
		return 0;
	}
	if (ch == 'd') {
		if (!strcmp(arg, "out"))
			o->dir = KG_OUT;
		else if (!strcmp(arg, "in"))
			o->dir = KG_IN;
		else if (!strcmp(arg, "both"))
			o->dir = KG_BOTH;
		else {
			fprintf(stderr, "kgstore neighbors: --direction is out, in or both, not '%s'\n", arg);
			return CLI_USAGE;
		}
		return 0;
	}
	return CLI_USAGE;
}

int cli_cmd_neighbors(int argc, char **argv)
{
	static const struct option own[] = { { "type", required_argument, 0, 't' },
		                             { "direction", required_argument, 0, 'd' },
		                             { 0, 0, 0, 0 } };
	nb_opts o = { NULL, KG_OUT };
	int rc = cli_getopt(argc, argv, "neighbors", NEIGHBORS_HELP, own, "t:d:", nb_opt, &o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc) {
		fputs(NEIGHBORS_HELP, stderr);
		return CLI_USAGE;
	}
	const char *id = argv[optind];
	kg_store *base, *s;
	if ((rc = cli_open("neighbors", &base, &s)) != CLI_OK)
		return rc;
	if (g_cli.json) {
		kg_entity_list *l = NULL;
		rc = kg_neighbors(s, id, o.type, o.dir, &l);
		if (rc == KG_OK)
			print_entity_list_json(l);
		kg_entity_list_free(l);
	} else {
		/* A person wants to see how each neighbor is linked. */
		kg_relation_list *l = NULL;
		rc = kg_relations_of(s, id, o.type, o.dir, &l);
		if (rc == KG_OK) {
			for (size_t i = 0; i < l->count; i++) {
				const kg_relation *r = l->items[i];
				int out = !strcmp(r->source_id, id);
				printf("%s%s%s %s\n", out ? "-" : "<-", r->relation_type, out ? "->" : "-",
				       out ? r->target_id : r->source_id);
			}
			printf("(%zu relations)\n", l->count);
		}
		kg_relation_list_free(l);
	}
	if (rc != KG_OK)
		rc = cli_fail("neighbors", s, rc, id);
	cli_close(base, s);
	return rc;
}

/* ---------------------------------------------------------------- paths */

static const char PATHS_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] paths SRC DST [--max-depth N] [--max-paths K] [--json]\n\n"
	"Simple paths from SRC to DST along relations in their direction, shortest\n"
	"first: at most N edges (default 5), at most K paths (default 10).\n"
	"--json prints [{\"nodes\": [...], \"edges\": [...], \"score\": s}, ...].\n";

typedef struct path_opts {
	long long depth, max;
} path_opts;

static int path_opt(int ch, const char *arg, void *ctx)
{
	path_opts *o = ctx;
	if (ch == 'd' && (o->depth = cli_parse_count("paths", "--max-depth", arg, 64)) >= 0)
		return 0;
	if (ch == 'k' && (o->max = cli_parse_count("paths", "--max-paths", arg, 1000000)) >= 0)
		return 0;
	return CLI_USAGE;
}

void cli_print_path_json(FILE *f, const kg_path *p)
{
	fputs("{\"nodes\": [", f);
	for (size_t j = 0; j < p->n_nodes; j++) {
		fputs(j ? ", " : "", f);
		cli_print_entity(f, p->nodes[j], 0, 0);
	}
	fputs("], \"edges\": [", f);
	for (size_t j = 0; j < p->n_edges; j++) {
		fputs(j ? ", " : "", f);
		cli_print_relation(f, p->edges[j]);
	}
	fprintf(f, "], \"score\": %.6g}", p->score);
}

void cli_print_path_human(FILE *f, const kg_path *p)
{
	fputs(p->nodes[0]->id, f);
	for (size_t j = 0; j < p->n_edges; j++)
		fprintf(f, " -%s-> %s", p->edges[j]->relation_type, p->nodes[j + 1]->id);
	fputc('\n', f);
}

int cli_cmd_paths(int argc, char **argv)
{
	static const struct option own[] = { { "max-depth", required_argument, 0, 'd' },
		                             { "max-paths", required_argument, 0, 'k' },
		                             { 0, 0, 0, 0 } };
	path_opts o = { 5, 10 };
	int rc = cli_getopt(argc, argv, "paths", PATHS_HELP, own, "d:k:", path_opt, &o);
	if (rc >= 0)
		return rc;
	if (optind + 2 != argc) {
		fputs(PATHS_HELP, stderr);
		return CLI_USAGE;
	}
	kg_store *base, *s;
	if ((rc = cli_open("paths", &base, &s)) != CLI_OK)
		return rc;
	kg_path_list *l = NULL;
	rc = kg_find_paths(s, argv[optind], argv[optind + 1], (int)o.depth, (size_t)o.max, &l);
	if (rc == KG_OK) {
		if (g_cli.json) {
			fputs("[", stdout);
			for (size_t i = 0; i < l->count; i++) {
				fputs(i ? ",\n " : "", stdout);
				cli_print_path_json(stdout, &l->items[i]);
			}
			fputs("]\n", stdout);
		} else {
			for (size_t i = 0; i < l->count; i++)
				cli_print_path_human(stdout, &l->items[i]);
			printf("(%zu paths of at most %lld edges)\n", l->count, o.depth);
		}
	} else {
		char what[256];
		snprintf(what, sizeof what, "paths from %s to %s", argv[optind], argv[optind + 1]);
		rc = cli_fail("paths", s, rc, what);
	}
	kg_path_list_free(l);
	cli_close(base, s);
	return rc;
}

/* ----------------------------------------------------------------- list */

static const char LIST_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] list [--type T] [--limit N] [--offset M] [--json]\n\n"
	"Entities (of type T) in insertion order: skip M, show at most N (default 100;\n"
	"0 = all, streamed).\n";

typedef struct list_opts {
	const char *type;
	long long limit, offset;
} list_opts;

static int list_opt(int ch, const char *arg, void *ctx)
{
	list_opts *o = ctx;
	if (ch == 't') {
		o->type = arg;
		return 0;
	}
	if (ch == 'n' && (o->limit = cli_parse_count("list", "--limit", arg, 1LL << 40)) >= 0)
		return 0;
	if (ch == 'o' && (o->offset = cli_parse_count("list", "--offset", arg, 1LL << 40)) >= 0)
		return 0;
	return CLI_USAGE;
}

int cli_cmd_list(int argc, char **argv)
{
	static const struct option own[] = { { "type", required_argument, 0, 't' },
		                             { "limit", required_argument, 0, 'n' },
		                             { "offset", required_argument, 0, 'o' },
		                             { 0, 0, 0, 0 } };
	list_opts o = { NULL, 100, 0 };
	int rc = cli_getopt(argc, argv, "list", LIST_HELP, own, "t:n:o:", list_opt, &o);
	if (rc >= 0)
		return rc;
	if (optind != argc) {
		fputs(LIST_HELP, stderr);
		return CLI_USAGE;
	}
	kg_store *base, *s;
	if ((rc = cli_open("list", &base, &s)) != CLI_OK)
		return rc;
	if (o.limit == 0) {
		/* Everything: stream from a cursor, one JSON object per line. */
		kg_entity_iter *it = NULL;
		rc = kg_entity_iter_new(s, o.type, &it);
		const kg_entity *e;
		long long skip = o.offset;
		while (rc == KG_OK && (rc = kg_entity_iter_next(it, &e)) == 1) {
			rc = KG_OK;
			if (skip > 0) {
				skip--;
				continue;
			}
			if (g_cli.json) {
				cli_print_entity(stdout, e, 0, 0);
				putchar('\n');
			} else {
				print_entity_line(e);
			}
		}
		kg_entity_iter_free(it);
	} else {
		kg_entity_list *l = NULL;
		rc = kg_list_entities(s, o.type, (size_t)o.limit, (size_t)o.offset, &l);
		if (rc == KG_OK) {
			if (g_cli.json)
				print_entity_list_json(l);
			else
				for (size_t i = 0; i < l->count; i++)
					print_entity_line(l->items[i]);
		}
		kg_entity_list_free(l);
	}
	if (rc != KG_OK)
		rc = cli_fail("list", s, rc, "listing entities");
	cli_close(base, s);
	return rc;
}

/* --------------------------------------------------------------- search */

static const char SEARCH_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] search TEXT [--method bm25|jaccard|cosine|levenshtein]\n"
	"                                          [--type T] [-k N] [--threshold X] [--json]\n"
	"       kgstore [-s URI] [--tenant T] search --vector F1,F2,... [--type T] [-k N] [--threshold X]\n"
	"       kgstore [-s URI] [--tenant T] search --like ID [--type T] [-k N] [--threshold X]\n\n"
	"Text search over ids, types and string properties (default BM25), or vector\n"
	"search by cosine similarity to the given floats or to entity ID's embedding.\n"
	"Best first, at most N results (default 10), scores >= X (default 0).\n";

typedef struct search_opts {
	const char *type, *vector, *like;
	kg_text_method method;
	long long k;
	double threshold;
} search_opts;

static int search_opt(int ch, const char *arg, void *ctx)
{
	search_opts *o = ctx;
	char *end;
	switch (ch) {
	case 't': o->type = arg; return 0;
	case 'v': o->vector = arg; return 0;
	case 'l': o->like = arg; return 0;
	case 'k': return (o->k = cli_parse_count("search", "-k", arg, 1000000)) >= 0 ? 0 : CLI_USAGE;
	case 'x':
		o->threshold = strtod(arg, &end);
		if (*end || end == arg) {
			fprintf(stderr, "kgstore search: --threshold wants a number, not '%s'\n", arg);
			return CLI_USAGE;
		}
		return 0;
	case 'm':
		if (!strcmp(arg, "bm25"))
			o->method = KG_TEXT_BM25;
		else if (!strcmp(arg, "jaccard"))
			o->method = KG_TEXT_JACCARD;
		else if (!strcmp(arg, "cosine"))
			o->method = KG_TEXT_COSINE;
		else if (!strcmp(arg, "levenshtein"))
			o->method = KG_TEXT_LEVENSHTEIN;
		else {
			fprintf(stderr, "kgstore search: --method is bm25, jaccard, cosine or levenshtein, not '%s'\n", arg);
			return CLI_USAGE;
		}
		return 0;
	default: return CLI_USAGE;
	}
}

/* Parses "f1,f2,..." into a new array (*out, freed by the caller). */
static int parse_floats(const char *text, float **out, size_t *dim)
{
	size_t cap = 16, n = 0;
	float *v = malloc(cap * sizeof *v);
	const char *p = text;
	while (v && *p) {
		char *end;
		double d = strtod(p, &end);
		if (end == p)
			break;
		if (n == cap) {
			float *nv = realloc(v, (cap *= 2) * sizeof *v);
			if (!nv)
				break;
			v = nv;
		}
		v[n++] = (float)d;
		p = end;
		while (*p == ',' || *p == ' ')
			p++;
	}
	if (!v || *p || n == 0) {
		free(v);
		return -1;
	}
	*out = v;
	*dim = n;
	return 0;
}

int cli_cmd_search(int argc, char **argv)
{
	static const struct option own[] = {
		{ "type", required_argument, 0, 't' },      { "vector", required_argument, 0, 'v' },
		{ "like", required_argument, 0, 'l' },      { "method", required_argument, 0, 'm' },
		{ "threshold", required_argument, 0, 'x' }, { "k", required_argument, 0, 'k' },
		{ 0, 0, 0, 0 }
	};
	search_opts o = { .method = KG_TEXT_BM25, .k = 10 };
	int rc = cli_getopt(argc, argv, "search", SEARCH_HELP, own, "t:v:l:m:x:k:", search_opt, &o);
	if (rc >= 0)
		return rc;
	int vector = o.vector || o.like;
	if ((vector && optind != argc) || (!vector && optind + 1 != argc) || (o.vector && o.like)) {
		fputs(SEARCH_HELP, stderr);
		return CLI_USAGE;
	}
	float *q = NULL;
	size_t dim = 0;
	if (o.vector && parse_floats(o.vector, &q, &dim) != 0) {
		fprintf(stderr, "kgstore search: --vector wants numbers separated by commas, like 0.1,0.2,0.3\n");
		return CLI_USAGE;
	}
	kg_store *base, *s;
	if ((rc = cli_open("search", &base, &s)) != CLI_OK) {
		free(q);
		return rc;
	}
	kg_entity_list *l = NULL;
	int64_t t0 = kg_now_us();
	if (o.like) {
		kg_entity *e = NULL;
		rc = kg_get_entity(s, o.like, &e);
		if (rc == KG_OK && !e->embedding) {
			fprintf(stderr, "kgstore search: entity %s has no embedding to search with\n", o.like);
			kg_entity_free(e);
			cli_close(base, s);
			return CLI_INVALID;
		}
		if (rc == KG_OK)
			rc = kg_vector_search(s, e->embedding, e->embedding_dim, o.type, (size_t)o.k, o.threshold, &l);
		kg_entity_free(e);
	} else if (o.vector) {
		rc = kg_vector_search(s, q, dim, o.type, (size_t)o.k, o.threshold, &l);
	} else {
		rc = kg_text_search(s, argv[optind], o.type, (size_t)o.k, o.threshold, o.method, &l);
	}
	int64_t took = kg_now_us() - t0;
	if (rc == KG_OK) {
		if (g_cli.json) {
			print_entity_list_json(l);
		} else {
			for (size_t i = 0; i < l->count; i++) {
				printf("%.4f  ", l->scores ? l->scores[i] : 0.0);
				print_entity_line(l->items[i]);
			}
			printf("(%zu results in %.1f ms)\n", l->count, (double)took / 1000.0);
		}
	} else {
		rc = cli_fail("search", s, rc, o.like ? o.like : "search");
	}
	kg_entity_list_free(l);
	free(q);
	cli_close(base, s);
	return rc;
}

/* ---------------------------------------------------------------- stats */

static const char STATS_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] stats [--json]\n\n"
	"Counts of entities and relations, by type, in the tenant (default: the\n"
	"global namespace), and the tenants that hold data.\n";

static void print_type_counts_json(const kg_type_count *t, size_t n)
{
	putchar('{');
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ", " : "", stdout);
		cli_json_string(stdout, t[i].type);
		printf(": %zu", t[i].count);
	}
	putchar('}');
}

int cli_cmd_stats(int argc, char **argv)
{
	int rc = cli_getopt(argc, argv, "stats", STATS_HELP, NULL, "", NULL, NULL);
	if (rc >= 0)
		return rc;
	kg_store *base, *s;
	if ((rc = cli_open("stats", &base, &s)) != CLI_OK)
		return rc;
	kg_stats *st = NULL;
	char **tenants = NULL;
	size_t nt = 0;
	rc = kg_get_stats(s, &st);
	if (rc == KG_OK)
		rc = kg_list_tenants(base, &tenants, &nt);
	if (rc != KG_OK) {
		rc = cli_fail("stats", s, rc, "reading the store's counts");
		kg_stats_free(st);
		cli_close(base, s);
		return rc;
	}
	if (g_cli.json) {
		printf("{\"backend\": \"%s\", \"tenant_id\": ", st->backend);
		cli_json_string(stdout, g_cli.tenant);
		printf(", \"entity_count\": %zu, \"relation_count\": %zu, \"entity_types\": ", st->entity_count,
		       st->relation_count);
		print_type_counts_json(st->entity_types, st->n_entity_types);
		fputs(", \"relation_types\": ", stdout);
		print_type_counts_json(st->relation_types, st->n_relation_types);
		fputs(", \"tenants\": [", stdout);
		for (size_t i = 0; i < nt; i++) {
			fputs(i ? ", " : "", stdout);
			cli_json_string(stdout, tenants[i]);
		}
		fputs("]}\n", stdout);
	} else {
		printf("%s store, %s: %zu entities, %zu relations\n", st->backend,
		       g_cli.tenant ? g_cli.tenant : "global namespace", st->entity_count, st->relation_count);
		for (size_t i = 0; i < st->n_entity_types; i++)
			printf("  entity   %-28s %zu\n", st->entity_types[i].type, st->entity_types[i].count);
		for (size_t i = 0; i < st->n_relation_types; i++)
			printf("  relation %-28s %zu\n", st->relation_types[i].type, st->relation_types[i].count);
		if (nt) {
			printf("tenants with data (%zu):", nt);
			for (size_t i = 0; i < nt && i < 20; i++)
				printf(" %s", tenants[i]);
			printf("%s\n", nt > 20 ? " ..." : "");
		}
	}
	free(tenants);
	kg_stats_free(st);
	cli_close(base, s);
	return CLI_OK;
}
