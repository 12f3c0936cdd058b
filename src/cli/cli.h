/*
 * cli.h - what the `kgstore` subcommands share: opening the store the
 * global options name, turning a status into an exit code and a message,
 * a progress bar that shows only on a terminal, and JSON output.
 */
#ifndef KG_CLI_H
#define KG_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "kgstore.h"

/* Exit codes by error class (documented in `kgstore --help` and the man page). */
enum {
	CLI_OK = 0,
	CLI_USAGE = 1,
	CLI_NOTFOUND = 2,
	CLI_INVALID = 3,    /* invalid input, duplicate id */
	CLI_UNAVAILABLE = 4,/* busy, connection lost, pool exhausted */
	CLI_IO = 5,         /* I/O error, corrupt or truncated input */
	CLI_INTERNAL = 10
};

/* Global options, set by main() before the subcommand runs. */
typedef struct cli_globals {
	const char *store_uri; /* -s/--store; NULL: the environment, else the default */
	const char *tenant;    /* --tenant; NULL: the global namespace */
	int json;              /* --json: machine-readable output */
	int quiet;             /* -q/--quiet: no progress */
} cli_globals;

extern cli_globals g_cli;

#define CLI_DEFAULT_URI "sqlite:knowledge_graph.db"

/* The exit code for a kg status (KG_OK -> 0). */
int cli_exit_code(int rc);

/*
 * Opens the store: --store URI, else KGSTORE_URI, else the seed's
 * environment (ENVIRONMENT=...) when set, else CLI_DEFAULT_URI; then the
 * --tenant view. On success *base is the store and *view the handle to use
 * (the tenant view, or *base itself); close with cli_close. On failure
 * prints the reason and returns the exit code.
 */
int cli_open(const char *cmd, kg_store **base, kg_store **view);
void cli_close(kg_store *base, kg_store *view);

/* Prints "kgstore CMD: WHAT: <store message>" and returns the exit code. */
int cli_fail(const char *cmd, kg_store *s, int rc, const char *what);

/* Progress on stderr, redrawn at most ~10 times a second, only when stderr
 * is a terminal and not --quiet. total 0 = unknown. */
typedef struct cli_progress {
	const char *label;
	uint64_t total;
	int64_t started_us, drawn_us;
	int active;
} cli_progress;

/* count / secs, 0 when no time passed: a rate for a report. */
double cli_rate(uint64_t count, double secs);

void cli_progress_start(cli_progress *p, const char *label, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done);
void cli_progress_done(cli_progress *p, uint64_t done);

/* JSON output of records in the original's fields (COMPATIBILITY.md). */
void cli_print_entity(FILE *f, const kg_entity *e, double score, int with_score);
void cli_print_relation(FILE *f, const kg_relation *r);
/* Writes s as a JSON string literal (quotes included). */
void cli_json_string(FILE *f, const char *s);

/* Subcommands. */
int cli_cmd_init(int argc, char **argv);
int cli_cmd_get(int argc, char **argv);
int cli_cmd_relation(int argc, char **argv);
int cli_cmd_neighbors(int argc, char **argv);
int cli_cmd_paths(int argc, char **argv);
int cli_cmd_list(int argc, char **argv);
int cli_cmd_search(int argc, char **argv);
int cli_cmd_stats(int argc, char **argv);
int cli_cmd_check(int argc, char **argv);
int cli_cmd_demo(int argc, char **argv);
int cli_cmd_import(int argc, char **argv);
int cli_cmd_export(int argc, char **argv);
int cli_cmd_migrate(int argc, char **argv);
int cli_cmd_verify(int argc, char **argv);
int cli_cmd_degrade(int argc, char **argv);

/* Loads WordNet 3.0's database files from dir into s (see wordnet.c). */
typedef struct wn_load_stats {
	size_t synsets, relations;
	double parse_s, load_s;
} wn_load_stats;
int wn_load(kg_store *s, const char *dir, cli_progress *p, wn_load_stats *st, char *err, size_t errlen);

#endif

/* Options every subcommand accepts besides its own (after the command
 * too): --json, -q/--quiet, -s/--store URI, --tenant ID. Put
 * CLI_COMMON_LONGOPTS in a getopt_long table and call cli_common_opt for
 * an option code it does not know; returns 1 if it took the option. */
#define CLI_OPT_JSON 1001
#define CLI_OPT_QUIET 1002
#define CLI_OPT_STORE 1003
#define CLI_OPT_TENANT 1004
#define CLI_COMMON_LONGOPTS \
	{ "json", no_argument, 0, CLI_OPT_JSON }, { "quiet", no_argument, 0, CLI_OPT_QUIET }, \
	{ "store", required_argument, 0, CLI_OPT_STORE }, { "tenant", required_argument, 0, CLI_OPT_TENANT }
int cli_common_opt(int ch, const char *arg);

/* Parses a non-negative integer option; prints an error and returns -1 if bad. */
long long cli_parse_count(const char *cmd, const char *opt, const char *s, long long max);

/*
 * Parses a subcommand's options: its own (`own`, `own_short`, handled by
 * fn, which returns 0 or an exit code) plus the common ones and --help
 * (prints `help`). Returns -1 to go on (positional arguments from
 * argv[optind]) or the exit code to return now (0 after --help).
 */
struct option;
typedef int (*cli_optfn)(int ch, const char *arg, void *ctx);
int cli_getopt(int argc, char **argv, const char *cmd, const char *help,
               const struct option *own, const char *own_short, cli_optfn fn, void *ctx);
