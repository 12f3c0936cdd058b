/*
 * main.c - the `kgstore` command: global options, then one subcommand.
 * Each subcommand is one function in the table below; they all go through
 * the public API, so they work on every backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kgstore.h"

typedef struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} subcommand;

static const subcommand COMMANDS[] = {
	{ "bench", kg_bench_main, "time the seed's workload on each backend (shared/bench/WORKLOAD.md)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kgstore [-s|--store URI] [--tenant ID] COMMAND [ARGS...]\n\n"
	           "A knowledge-graph store: in-memory, SQLite or PostgreSQL.\n\n"
	           "Commands:\n");
	for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
		fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
	fprintf(f, "\nStore URIs: memory:, sqlite:PATH, sqlite::memory:, postgresql://user@host:port/db\n"
	           "(default: the environment as kg_open_env reads it, else sqlite:knowledge_graph.db).\n"
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
		if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--store") || !strcmp(argv[i], "--tenant")) &&
		    i + 1 < argc) {
			setenv(!strcmp(argv[i], "--tenant") ? "KGSTORE_TENANT" : "KGSTORE_URI", argv[i + 1], 1);
			i++;
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
