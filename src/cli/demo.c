/*
 * demo.c - `kgstore demo`, the main job: loads WordNet 3.0 (Debian's
 * wordnet-base) into a store - a SQLite file unless -s says otherwise -
 * and answers the questions a person would ask of it, with timings.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_print_path_human(FILE *f, const kg_path *p);

static const char DEMO_HELP[] =
	"usage: kgstore [-s URI] demo [--wordnet DIR] [--reload]\n\n"
	"Loads WordNet 3.0 (synsets as entities named like dog.n.01, pointers as\n"
	"typed relations: HYPERNYM, PART_HOLONYM, ANTONYM...) into the store\n"
	"(default: sqlite:wordnet.db) unless it is already there, then asks it:\n"
	"how is a dog related to a cat, what is a computer part of, which synsets\n"
	"match \"feline\", and prints each answer with its time.\n\n"
	"  --wordnet DIR   WordNet's database files (default /usr/share/wordnet,\n"
	"                  from Debian's wordnet-base package)\n"
	"  --reload        clear the store and load again\n";

typedef struct demo_opts {
	const char *dir;
	int reload;
} demo_opts;

static int demo_opt(int ch, const char *arg, void *ctx)
{
	demo_opts *o = ctx;
	if (ch == 'w')
		o->dir = arg;
	else if (ch == 'r')
		o->reload = 1;
	else
		return CLI_USAGE;
	return 0;
}

static void print_took(int64_t us)
{
	if (us < 1000)
		printf("   (%lld us)\n\n", (long long)us);
	else
		printf("   (%.2f ms)\n\n", (double)us / 1000.0);
}

/* A synset's words and the start of its gloss, for readable answers. */
static void print_words(const kg_entity *e)
{
	json_t *props = json_loads(e->properties, 0, NULL);
	json_t *words = json_object_get(props, "words");
	const char *gloss = json_string_value(json_object_get(props, "gloss"));
	printf("   %-28s ", e->id);
	for (size_t i = 0; i < json_array_size(words); i++)
		printf("%s%s", i ? ", " : "", json_string_value(json_array_get(words, i)));
	if (gloss)
		printf(": %.60s%s", gloss, strlen(gloss) > 60 ? "..." : "");
	putchar('\n');
	json_decref(props);
}

static int ask_paths(kg_store *s, const char *a, const char *b, int depth)
{
	printf("How is %s related to %s?  find_paths(%s, %s, max_depth=%d, max_paths=5)\n", a, b, a, b, depth);
	kg_path_list *l = NULL;
	int64_t t0 = kg_now_us();
	int rc = kg_find_paths(s, a, b, depth, 5, &l);
	int64_t took = kg_now_us() - t0;
	if (rc != KG_OK)
		return rc;
	for (size_t i = 0; i < l->count; i++) {
		printf("   ");
		cli_print_path_human(stdout, &l->items[i]);
	}
	if (!l->count)
		printf("   no path of at most %d relations\n", depth);
	print_took(took);
	kg_path_list_free(l);
	return KG_OK;
}

static int ask_relations(kg_store *s, const char *question, const char *id, const char *type)
{
	printf("%s  relations_of(%s, %s, out)\n", question, id, type);
	kg_relation_list *l = NULL;
	int64_t t0 = kg_now_us();
	int rc = kg_relations_of(s, id, type, KG_OUT, &l);
	int64_t took = kg_now_us() - t0;
	if (rc != KG_OK)
		return rc;
	/* The other ends, fetched together (one call, not one per relation). */
	const char **ids = calloc(l->count ? l->count : 1, sizeof(*ids));
	kg_entity_list *ends = NULL;
	if (!ids)
		rc = KG_ENOMEM;
	for (size_t i = 0; ids && i < l->count; i++)
		ids[i] = l->items[i]->target_id;
	if (rc == KG_OK)
		rc = kg_get_entities(s, ids, l->count, &ends);
	for (size_t i = 0; rc == KG_OK && i < ends->count; i++)
		print_words(ends->items[i]);
	if (rc == KG_OK && !l->count)
		printf("   none\n");
	if (rc == KG_OK)
		print_took(took);
	kg_entity_list_free(ends);
	free(ids);
	kg_relation_list_free(l);
	return rc;
}

static int ask_kind_of(kg_store *s, const char *id)
{
	printf("What kind of thing is %s?  traverse(%s, HYPERNYM, max_depth=12)\n", id, id);
	kg_path_list *l = NULL;
	int64_t t0 = kg_now_us();
	int rc = kg_traverse(s, id, "HYPERNYM", 12, 0, &l);
	int64_t took = kg_now_us() - t0;
	if (rc != KG_OK)
		return rc;
	/* The longest path is the chain up to the root ("entity.n.01"). */
	const kg_path *longest = NULL;
	for (size_t i = 0; i < l->count; i++)
		if (!longest || l->items[i].n_edges > longest->n_edges)
			longest = &l->items[i];
	if (longest) {
		printf("   ");
		cli_print_path_human(stdout, longest);
	}
	printf("   (%zu ancestors in all)", l->count);
	print_took(took);
	kg_path_list_free(l);
	return KG_OK;
}

static int ask_text(kg_store *s, const char *text)
{
	printf("Which synsets match \"%s\"?  text_search(\"%s\", k=8, BM25)\n", text, text);
	kg_entity_list *l = NULL;
	int64_t t0 = kg_now_us();
	int rc = kg_text_search(s, text, NULL, 8, 0.0, KG_TEXT_BM25, &l);
	int64_t took = kg_now_us() - t0;
	if (rc != KG_OK)
		return rc;
	for (size_t i = 0; i < l->count; i++) {
		printf("%.3f", l->scores[i]);
		print_words(l->items[i]);
	}
	print_took(took);
	kg_entity_list_free(l);
	return KG_OK;
}

static int ask_get(kg_store *s, const char *id)
{
	printf("What is %s?  get_entity(%s)\n", id, id);
	kg_entity *e = NULL;
	int64_t t0 = kg_now_us();
	int rc = kg_get_entity(s, id, &e);
	int64_t took = kg_now_us() - t0;
	if (rc != KG_OK)
		return rc;
	printf("   %s (%s) %s", e->id, e->entity_type, e->properties);
	print_took(took);
	kg_entity_free(e);
	return KG_OK;
}

int cli_cmd_demo(int argc, char **argv)
{
	static const struct option own[] = { { "wordnet", required_argument, 0, 'w' },
		                             { "reload", no_argument, 0, 'r' },
		                             { 0, 0, 0, 0 } };
	demo_opts o = { "/usr/share/wordnet", 0 };
	int rc = cli_getopt(argc, argv, "demo", DEMO_HELP, own, "w:", demo_opt, &o);
	if (rc >= 0)
		return rc;
	if (!g_cli.store_uri && !getenv("KGSTORE_URI"))
		g_cli.store_uri = "sqlite:wordnet.db";
	kg_store *base, *s;
	if ((rc = cli_open("demo", &base, &s)) != CLI_OK)
		return rc;

	kg_entity *probe = NULL;
	int have = kg_get_entity(s, "dog.n.01", &probe) == KG_OK;
	kg_entity_free(probe);
	if (have && o.reload) {
		if ((rc = kg_clear(s)) != KG_OK)
			goto fail;
		have = 0;
	}
	if (!have) {
		kg_stats *st = NULL;
		if ((rc = kg_get_stats(s, &st)) != KG_OK)
			goto fail;
		size_t n = st->entity_count;
		kg_stats_free(st);
		if (n) {
			fprintf(stderr, "kgstore demo: the store already holds %zu entities and no WordNet; give an "
			                "empty store with -s (or --reload to clear this one)\n", n);
			cli_close(base, s);
			return CLI_INVALID;
		}
		printf("Loading WordNet 3.0 from %s into %s ...\n", o.dir, kg_backend_name(s));
		fflush(stdout);
		cli_progress p;
		cli_progress_start(&p, "loading", 0);
		wn_load_stats ws;
		char err[512] = "";
		int64_t t0 = kg_now_us();
		rc = wn_load(s, o.dir, &p, &ws, err, sizeof err);
		if (rc != KG_OK) {
			fprintf(stderr, "kgstore demo: loading WordNet failed: %s\n", err);
			cli_close(base, s);
			return cli_exit_code(rc);
		}
		double secs = (double)(kg_now_us() - t0) / 1e6;
		printf("Loaded %zu synsets and %zu relations in %.2f s (reading files %.2f s, storing %.2f s: "
		       "%.0f rows/s)\n\n",
		       ws.synsets, ws.relations, secs, ws.parse_s, ws.load_s,
		       cli_rate(ws.synsets + ws.relations, ws.load_s));
	} else {
		printf("WordNet is already in the store (--reload loads it again).\n\n");
	}

	if ((rc = ask_get(s, "dog.n.01")) != KG_OK ||
	    (rc = ask_paths(s, "dog.n.01", "cat.n.01", 5)) != KG_OK ||
	    (rc = ask_relations(s, "What is a computer part of?", "computer.n.01", "PART_HOLONYM")) != KG_OK ||
	    (rc = ask_relations(s, "What are the parts of a computer?", "computer.n.01", "PART_MERONYM")) != KG_OK ||
	    (rc = ask_kind_of(s, "computer.n.01")) != KG_OK || (rc = ask_text(s, "feline")) != KG_OK ||
	    (rc = ask_relations(s, "What is the opposite of good?", "good.a.01", "ANTONYM")) != KG_OK)
		goto fail;
	printf("Ask more: kgstore -s %s paths SRC DST | neighbors ID | search TEXT | get ID\n",
	       g_cli.store_uri ? g_cli.store_uri : "URI");
	cli_close(base, s);
	return CLI_OK;
fail:
	rc = cli_fail("demo", s, rc, "querying WordNet");
	cli_close(base, s);
	return rc;
}
