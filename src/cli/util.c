/*
 * util.c - opening the store, exit codes, progress and JSON output for the
 * `kgstore` subcommands.
 */
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <unistd.h>

#include "cli.h"

cli_globals g_cli;

int cli_exit_code(int rc)
{
	switch (rc) {
	case KG_OK: return CLI_OK;
	case KG_ENOTFOUND: return CLI_NOTFOUND;
	case KG_EEXISTS:
	case KG_EINVAL:
	case KG_EUNSUPPORTED: return CLI_INVALID;
	case KG_EBUSY:
	case KG_ECONNLOST:
	case KG_EPOOL:
	case KG_EBUDGET: return CLI_UNAVAILABLE;
	case KG_EIO:
	case KG_ECORRUPT: return CLI_IO;
	default: return CLI_INTERNAL;
	}
}

int cli_fail(const char *cmd, kg_store *s, int rc, const char *what)
{
	const char *msg = s ? kg_errmsg(s) : NULL;
	fprintf(stderr, "kgstore %s: %s: %s\n", cmd, what, msg && *msg ? msg : kg_strerror(rc));
	return cli_exit_code(rc);
}

int cli_open(const char *cmd, kg_store **base, kg_store **view)
{
	*base = *view = NULL;
	const char *uri = g_cli.store_uri;
	if (!uri || !*uri)
		uri = getenv("KGSTORE_URI");
	kg_store *s = NULL;
	int rc;
	if ((!uri || !*uri) && getenv("ENVIRONMENT") && *getenv("ENVIRONMENT")) {
		rc = kg_open_env(&s);
		uri = "the environment (ENVIRONMENT=...)";
	} else {
		if (!uri || !*uri)
			uri = CLI_DEFAULT_URI;
		rc = kg_open(uri, &s);
	}
	if (rc != KG_OK) {
		char what[512];
		snprintf(what, sizeof what, "cannot open the store %s", uri);
		int code = cli_fail(cmd, s, rc, what);
		kg_close(s);
		return code;
	}
	*base = *view = s;
	if (g_cli.tenant && *g_cli.tenant) {
		rc = kg_tenant(s, g_cli.tenant, view);
		if (rc != KG_OK) {
			int code = cli_fail(cmd, s, rc, "bad --tenant");
			kg_close(s);
			*base = *view = NULL;
			return code;
		}
	}
	return CLI_OK;
}

void cli_close(kg_store *base, kg_store *view)
{
	if (view && view != base)
		kg_close(view);
	kg_close(base);
}

/* ------------------------------------------------------------------ */

double cli_rate(uint64_t count, double secs) { return secs > 0 ? (double)count / secs : 0.0; }

void cli_progress_start(cli_progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->label = label;
	p->total = total;
	p->started_us = kg_now_us();
	p->active = !g_cli.quiet && isatty(STDERR_FILENO);
}

static void progress_draw(cli_progress *p, uint64_t done, int64_t now)
{
	double secs = (double)(now - p->started_us) / 1e6;
	double rate = cli_rate(done, secs);
	if (p->total) {
		double f = done >= p->total ? 1.0 : (double)done / (double)p->total;
		int w = 30, fill = (int)(f * w);
		fprintf(stderr, "\r%-18s [%.*s%*s] %5.1f%% %llu/%llu %.0f/s ", p->label, fill,
		        "##############################", w - fill, "", f * 100,
		        (unsigned long long)done, (unsigned long long)p->total, rate);
	} else {
		fprintf(stderr, "\r%-18s %llu %.0f/s ", p->label, (unsigned long long)done, rate);
	}
	fflush(stderr);
	p->drawn_us = now;
}

void cli_progress_update(cli_progress *p, uint64_t done)
{
	if (!p || !p->active)
		return;
	int64_t now = kg_now_us();
	if (now - p->drawn_us >= 100000)
		progress_draw(p, done, now);
}

void cli_progress_done(cli_progress *p, uint64_t done)
{
	if (!p || !p->active)
		return;
	progress_draw(p, done, kg_now_us());
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */

void cli_json_string(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* `, "name": "value"` (value NULL: null). */
static void print_str_field(FILE *f, const char *name, const char *value)
{
	fprintf(f, ", \"%s\": ", name);
	cli_json_string(f, value);
}

/* The fields entities and relations share. */
static void print_record_tail(FILE *f, int64_t created, int64_t updated, const char *source, const char *tenant)
{
	char buf[32];
	kg_format_time(created, buf);
	print_str_field(f, "created_at", buf);
	kg_format_time(updated, buf);
	print_str_field(f, "updated_at", buf);
	print_str_field(f, "source", source);
	print_str_field(f, "tenant_id", tenant);
}

void cli_print_entity(FILE *f, const kg_entity *e, double score, int with_score)
{
	fputs("{\"id\": ", f);
	cli_json_string(f, e->id);
	print_str_field(f, "entity_type", e->entity_type);
	fprintf(f, ", \"properties\": %s, \"embedding\": ", e->properties ? e->properties : "{}");
	if (e->embedding) {
		fputc('[', f);
		for (size_t i = 0; i < e->embedding_dim; i++)
			fprintf(f, "%s%.9g", i ? ", " : "", (double)e->embedding[i]);
		fputc(']', f);
	} else {
		fputs("null", f);
	}
	print_record_tail(f, e->created_at, e->updated_at, e->source, e->tenant_id);
	if (with_score)
		fprintf(f, ", \"score\": %.6g", score);
	fputc('}', f);
}

void cli_print_relation(FILE *f, const kg_relation *r)
{
	fputs("{\"id\": ", f);
	cli_json_string(f, r->id);
	print_str_field(f, "relation_type", r->relation_type);
	print_str_field(f, "source_id", r->source_id);
	print_str_field(f, "target_id", r->target_id);
	fprintf(f, ", \"properties\": %s, \"weight\": %.17g", r->properties ? r->properties : "{}", r->weight);
	print_record_tail(f, r->created_at, r->updated_at, r->source, r->tenant_id);
	fputc('}', f);
}

int cli_common_opt(int ch, const char *arg)
{
	switch (ch) {
	case CLI_OPT_JSON: g_cli.json = 1; return 1;
	case CLI_OPT_QUIET: g_cli.quiet = 1; return 1;
	case CLI_OPT_STORE: g_cli.store_uri = arg; return 1;
	case CLI_OPT_TENANT: g_cli.tenant = arg; return 1;
	default: return 0;
	}
}

long long cli_parse_count(const char *cmd, const char *opt, const char *s, long long max)
{
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || v < 0 || v > max) {
		fprintf(stderr, "kgstore %s: %s wants a whole number from 0 to %lld, not '%s'\n", cmd, opt, max, s);
		return -1;
	}
	return v;
}

int cli_getopt(int argc, char **argv, const char *cmd, const char *help,
               const struct option *own, const char *own_short, cli_optfn fn, void *ctx)
{
	struct option all[48];
	size_t n = 0;
	for (; own && own[n].name && n < 40; n++)
		all[n] = own[n];
	const struct option common[] = { CLI_COMMON_LONGOPTS, { "help", no_argument, 0, 'h' } };
	for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
		all[n++] = common[i];
	memset(&all[n], 0, sizeof all[n]);
	char shortopts[64];
	snprintf(shortopts, sizeof shortopts, "hqs:%s", own_short ? own_short : "");
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, shortopts, all, NULL)) != -1) {
		if (ch == 'h') {
			fputs(help, stdout);
			return CLI_OK;
		}
		if (ch == 'q') {
			g_cli.quiet = 1;
			continue;
		}
		if (ch == 's') {
			g_cli.store_uri = optarg;
			continue;
		}
		if (cli_common_opt(ch, optarg))
			continue;
		if (ch == '?' || ch == ':') {
			if (optopt)
				fprintf(stderr, "kgstore %s: option -%c is unknown or needs a value\n", cmd, optopt);
			else
				fprintf(stderr, "kgstore %s: option '%s' is unknown or needs a value\n", cmd, argv[optind - 1]);
			fprintf(stderr, "(kgstore %s --help tells more)\n", cmd);
			return CLI_USAGE;
		}
		int rc = fn ? fn(ch, optarg, ctx) : CLI_USAGE;
		if (rc != 0)
			return rc;
	}
	return -1;
}
