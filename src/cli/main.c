/*
 * main.c - the `kgstore` command: global options, then one subcommand.
 * Each subcommand is one function in the table below; they all go through
 * the public API, so they work on every backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "kgstore.h"

typedef struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} subcommand;

static const subcommand COMMANDS[] = {
	{ "demo", cli_cmd_demo, "load WordNet 3.0 and ask it questions, with timings" },
	{ "init", cli_cmd_init, "create the store's tables if absent" },
	{ "get", cli_cmd_get, "print an entity" },
	{ "relation", cli_cmd_relation, "print a relation" },
	{ "neighbors", cli_cmd_neighbors, "entities linked to an entity" },
	{ "paths", cli_cmd_paths, "paths between two entities, shortest first" },
	{ "list", cli_cmd_list, "entities in insertion order, paginated" },
	{ "search", cli_cmd_search, "text search (BM25, Jaccard, cosine, Levenshtein) or vector search" },
	{ "stats", cli_cmd_stats, "counts by type, tenants" },
	{ "import", cli_cmd_import, "read JSONL, JSONL.gz, JSON or CSV files into the store" },
	{ "export", cli_cmd_export, "write the store as JSONL, JSONL.gz or JSON (the original's format)" },
	{ "migrate", cli_cmd_migrate, "copy a graph between two stores (or a file), then verify" },
	{ "verify", cli_cmd_verify, "compare two stores' contents by counts and checksums" },
	{ "degrade", cli_cmd_degrade, "graceful-degradation journal: status, replay by hand" },
	{ "check", cli_cmd_check, "integrity: duplicate ids, dangling relations" },
	{ "bench", kg_bench_main, "time the seed's workload on each backend (shared/bench/WORKLOAD.md)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kgstore [-s|--store URI] [--tenant ID] [--json] [-q] COMMAND [ARGS...]\n\n"
	           "A knowledge-graph store: in-memory, SQLite or PostgreSQL.\n\n"
	           "Commands:\n");
	for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
		fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
	fprintf(f, "\nStore URIs: memory:, sqlite:PATH, sqlite::memory:, postgresql://user@host:port/db\n"
	           "(default: $KGSTORE_URI, else the seed's environment when ENVIRONMENT is set,\n"
	           "else sqlite:knowledge_graph.db). --json prints the original's JSON objects;\n"
	           "progress shows on a terminal only (-q: never).\n"
	           "`kgstore COMMAND --help` tells more.\n\n"
	           "Exit codes: 0 ok, 1 usage, 2 not found, 3 invalid input, 4 busy / connection / pool,\n"
	           "5 I/O or corrupt input, 10 internal error.\n");
}

int main(int argc, char **argv)
{
	int i = 1;
	/* Global options come before the command; later commands read them
	 * from the environment variables set here. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("kgstore %s\n", KGSTORE_VERSION_STRING);
			return 0;
		}
		if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--store")) && i + 1 < argc) {
			g_cli.store_uri = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "--tenant") && i + 1 < argc) {
			g_cli.tenant = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "--json")) {
			g_cli.json = 1;
			continue;
		}
		if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
			g_cli.quiet = 1;
			continue;
		}
		fprintf(stderr, "kgstore: unknown option '%s'\n\n", argv[i]);
		usage(stderr);
		return 1;
	}
	if (i >= argc) {
		usage(stderr);
		return 1;
	}
	for (size_t k = 0; k < sizeof(COMMANDS) / sizeof(COMMANDS[0]); k++)
		if (!strcmp(argv[i], COMMANDS[k].name))
			return COMMANDS[k].run(argc - i, argv + i);
	fprintf(stderr, "kgstore: unknown command '%s' (see kgstore --help)\n", argv[i]);
	return 1;
}
