/*
 * data.c - the subcommands that move data: import, export, migrate and
 * verify, on top of kgstore/io.h.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kgstore/io.h"

/* io.h's progress callback drawing a cli_progress bar. */
static int on_progress(uint64_t done, uint64_t total, const char *phase, void *user)
{
	cli_progress *p = user;
	if (phase && p->label != phase && strcmp(p->label, phase)) {
		cli_progress_done(p, done);
		cli_progress_start(p, phase, total);
	}
	p->total = total;
	cli_progress_update(p, done);
	return 0;
}

static int parse_format(const char *cmd, const char *arg, kg_io_format *f)
{
	if (!strcmp(arg, "jsonl"))
		*f = KG_FORMAT_JSONL;
	else if (!strcmp(arg, "json"))
		*f = KG_FORMAT_JSON;
	else if (!strcmp(arg, "csv") && !strcmp(cmd, "import"))
		*f = KG_FORMAT_CSV;
	else {
		fprintf(stderr, "kgstore %s: --format is jsonl or json%s, not '%s'\n", cmd,
		        strcmp(cmd, "import") ? "" : " or csv", arg);
		return CLI_USAGE;
	}
	return 0;
}

/* A URI names a store; anything else given to migrate is a file. */
static int is_store_uri(const char *s)
{
	return !strncmp(s, "memory:", 7) || !strncmp(s, "sqlite:", 7) || !strncmp(s, "postgresql:", 11) ||
	       !strncmp(s, "postgres:", 9) || !strncmp(s, "generic:", 8);
}

/* -------------------------------------------------------------- import */

static const char IMPORT_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] import FILE... [options]\n\n"
	"Reads graph files into the store: JSONL (the original's export), JSONL.gz,\n"
	"JSON ({\"entities\": [...], \"relations\": [...]}), or CSV (FILE is the nodes\n"
	"file, --edges the edges file). Records with a tenant_id go to that tenant.\n"
	"Relations may come before their entities. Each file is all or nothing: on\n"
	"bad input the command stops with file, line and reason and the store is\n"
	"left as it was.\n\n"
	"  --format jsonl|json|csv   default: by the file name\n"
	"  --edges FILE              CSV edges file\n"
	"  --batch-size N            records per bulk call (default 1000)\n"
	"  --skip-bad                skip bad records, writing them with reasons to\n"
	"                            --rejects FILE (default FILE.rejects.jsonl)\n"
	"  --skip-existing           ids already in the store are skipped\n"
	"  --ignore-tenant           put every record in the --tenant namespace\n";

typedef struct import_cli {
	kg_import_options o;
} import_cli;

static int import_opt(int ch, const char *arg, void *ctx)
{
	kg_import_options *o = &((import_cli *)ctx)->o;
	long long n;
	switch (ch) {
	case 'f': return parse_format("import", arg, &o->format);
	case 'e': o->edges_path = arg; return 0;
	case 'b':
		if ((n = cli_parse_count("import", "--batch-size", arg, 10000000)) <= 0)
			return CLI_USAGE;
		o->batch_size = (size_t)n;
		return 0;
	case 'B': o->flags |= KG_IMPORT_SKIP_BAD; return 0;
	case 'r': o->reject_path = arg; return 0;
	case 'x': o->flags |= KG_IMPORT_SKIP_EXISTING; return 0;
	case 'i': o->flags |= KG_IMPORT_IGNORE_TENANT; return 0;
	default: return CLI_USAGE;
	}
}

int cli_cmd_import(int argc, char **argv)
{
	static const struct option own[] = {
		{ "format", required_argument, 0, 'f' },   { "edges", required_argument, 0, 'e' },
		{ "batch-size", required_argument, 0, 'b' }, { "skip-bad", no_argument, 0, 'B' },
		{ "rejects", required_argument, 0, 'r' },  { "skip-existing", no_argument, 0, 'x' },
		{ "ignore-tenant", no_argument, 0, 'i' },  { 0, 0, 0, 0 }
	};
	import_cli ic = { KG_IMPORT_OPTIONS_INIT };
	int rc = cli_getopt(argc, argv, "import", IMPORT_HELP, own, "", import_opt, &ic);
	if (rc >= 0)
		return rc;
	if (optind >= argc && !ic.o.edges_path) {
		fputs(IMPORT_HELP, stderr);
		return CLI_USAGE;
	}
	int first = optind;
	kg_store *base, *s;
	if ((rc = cli_open("import", &base, &s)) != CLI_OK)
		return rc;
	cli_progress p;
	ic.o.progress = on_progress;
	ic.o.progress_user = &p;
	uint64_t ents = 0, rels = 0;
	int64_t t0 = kg_now_us();
	for (int i = first; i < argc || (i == first && argc == first); i++) {
		const char *path = i < argc ? argv[i] : NULL;
		kg_import_result res;
		memset(&res, 0, sizeof res);
		cli_progress_start(&p, "importing", 0);
		rc = kg_import(s, path, &ic.o, &res);
		cli_progress_done(&p, res.lines);
		if (rc != KG_OK) {
			fprintf(stderr, "kgstore import: %s\n", res.errmsg[0] ? res.errmsg : kg_strerror(rc));
			if (!(ic.o.flags & KG_IMPORT_SKIP_BAD))
				fprintf(stderr, "nothing from %s was added (--skip-bad skips bad records instead)\n",
				        path ? path : ic.o.edges_path);
			cli_close(base, s);
			return cli_exit_code(rc);
		}
		ents += res.entity_count;
		rels += res.relation_count;
		if (g_cli.json) {
			fputs("{\"file\": ", stdout);
			cli_json_string(stdout, path ? path : ic.o.edges_path);
			printf(", \"entity_count\": %llu, \"relation_count\": %llu, \"skipped\": %llu, \"rejected\": %llu}\n",
			       (unsigned long long)res.entity_count, (unsigned long long)res.relation_count,
			       (unsigned long long)res.skipped, (unsigned long long)res.rejected);
		} else
			printf("%s: %llu entities, %llu relations imported%s", path ? path : ic.o.edges_path,
			       (unsigned long long)res.entity_count, (unsigned long long)res.relation_count,
			       res.skipped || res.rejected ? "" : "\n");
		if (!g_cli.json && (res.skipped || res.rejected))
			printf(" (%llu existing skipped, %llu bad records rejected)\n", (unsigned long long)res.skipped,
			       (unsigned long long)res.rejected);
	}
	double secs = (double)(kg_now_us() - t0) / 1e6;
	if (!g_cli.json)
		printf("total: %llu entities, %llu relations in %.2f s (%.0f records/s)\n", (unsigned long long)ents,
		       (unsigned long long)rels, secs, cli_rate(ents + rels, secs));
	cli_close(base, s);
	return CLI_OK;
}

/* -------------------------------------------------------------- export */

static const char EXPORT_HELP[] =
	"usage: kgstore [-s URI] [--tenant T] export FILE [options]\n\n"
	"Writes the store to FILE in the original's export format (FILE \"-\" is\n"
	"stdout), streaming: memory use does not grow with the graph.\n\n"
	"  --format jsonl|json   default: by the file name (JSONL unless *.json)\n"
	"  --gzip                compress (.gz is appended); also chosen by a .gz name\n"
	"  --type T              only entities of type T (and relations among them)\n"
	"  --relation-type T     only relations of type T\n"
	"  --no-relations        entities only\n"
	"  --all-tenants         the global namespace and every tenant (records carry\n"
	"                        tenant_id); default: the --tenant namespace only\n";

static int export_opt(int ch, const char *arg, void *ctx)
{
	kg_export_options *o = ctx;
	switch (ch) {
	case 'f': return parse_format("export", arg, &o->format);
	case 'z': o->gzip = 1; return 0;
	case 't': o->entity_type = arg; return 0;
	case 'R': o->relation_type = arg; return 0;
	case 'n': o->no_relations = 1; return 0;
	case 'a': o->all_tenants = 1; return 0;
	default: return CLI_USAGE;
	}
}

int cli_cmd_export(int argc, char **argv)
{
	static const struct option own[] = {
		{ "format", required_argument, 0, 'f' }, { "gzip", no_argument, 0, 'z' },
		{ "type", required_argument, 0, 't' },   { "relation-type", required_argument, 0, 'R' },
		{ "no-relations", no_argument, 0, 'n' }, { "all-tenants", no_argument, 0, 'a' },
		{ 0, 0, 0, 0 }
	};
	kg_export_options o = KG_EXPORT_OPTIONS_INIT;
	int rc = cli_getopt(argc, argv, "export", EXPORT_HELP, own, "z", export_opt, &o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc) {
		fputs(EXPORT_HELP, stderr);
		return CLI_USAGE;
	}
	const char *path = argv[optind];
	int to_stdout = !strcmp(path, "-");
	kg_store *base, *s;
	if ((rc = cli_open("export", &base, &s)) != CLI_OK)
		return rc;
	if (o.all_tenants && s != base) {
		fprintf(stderr, "kgstore export: --all-tenants and --tenant together: choose one\n");
		cli_close(base, s);
		return CLI_USAGE;
	}
	cli_progress p;
	cli_progress_start(&p, "exporting", 0);
	o.progress = on_progress;
	o.progress_user = &p;
	kg_export_result res;
	memset(&res, 0, sizeof res);
	int64_t t0 = kg_now_us();
	rc = to_stdout ? kg_export_stream(s, stdout, &o, &res) : kg_export(s, path, &o, &res);
	cli_progress_done(&p, res.entity_count + res.relation_count);
	double secs = (double)(kg_now_us() - t0) / 1e6;
	if (rc != KG_OK) {
		fprintf(stderr, "kgstore export: %s\n", res.errmsg[0] ? res.errmsg : kg_strerror(rc));
		cli_close(base, s);
		return cli_exit_code(rc);
	}
	/* The original's report: entity_count, relation_count, filepath, compressed. */
	FILE *out = to_stdout ? stderr : stdout;
	if (g_cli.json) {
		fprintf(out, "{\"entity_count\": %llu, \"relation_count\": %llu, \"filepath\": ",
		        (unsigned long long)res.entity_count, (unsigned long long)res.relation_count);
		cli_json_string(out, res.filepath);
		fprintf(out, ", \"compressed\": %s}\n", res.compressed ? "true" : "false");
	} else
		fprintf(out, "%s: %llu entities, %llu relations%s in %.2f s (%.0f records/s)\n", res.filepath,
		        (unsigned long long)res.entity_count, (unsigned long long)res.relation_count,
		        res.compressed ? ", gzip" : "", secs,
		        cli_rate(res.entity_count + res.relation_count, secs));
	cli_close(base, s);
	return CLI_OK;
}

/* ------------------------------------------------------- migrate, verify */

static const char MIGRATE_HELP[] =
	"usage: kgstore migrate SRC DST [options]\n\n"
	"Copies every namespace (global and tenants) from SRC to DST, entities then\n"
	"relations, in batches each committed on its own, then verifies that both\n"
	"hold the same content (counts and checksums per table). SRC and DST are\n"
	"store URIs (sqlite:a.db, postgresql://...); a file name as SRC imports it,\n"
	"as DST exports to it.\n\n"
	"  --batch-size N    records per batch (default 5000)\n"
	"  --resume FILE     record progress in FILE; run again with the same FILE\n"
	"                    after an interruption to continue after the last batch\n"
	"  --skip-existing   ids already in DST are skipped\n"
	"  --no-verify       skip the verify step\n";

static int migrate_opt(int ch, const char *arg, void *ctx)
{
	kg_migrate_options *o = ctx;
	long long n;
	switch (ch) {
	case 'b':
		if ((n = cli_parse_count("migrate", "--batch-size", arg, 10000000)) <= 0)
			return CLI_USAGE;
		o->batch_size = (size_t)n;
		return 0;
	case 'r': o->resume_path = arg; return 0;
	case 'x': o->flags |= KG_MIGRATE_SKIP_EXISTING; return 0;
	case 'n': o->flags |= KG_MIGRATE_NO_VERIFY; return 0;
	default: return CLI_USAGE;
	}
}

static int open_uri(const char *cmd, const char *uri, kg_store **s)
{
	int rc = kg_open(uri, s);
	if (rc != KG_OK) {
		char what[512];
		snprintf(what, sizeof what, "cannot open %s", uri);
		rc = cli_fail(cmd, *s, rc, what);
		kg_close(*s);
		*s = NULL;
		return rc;
	}
	return CLI_OK;
}

static void print_checksum(const char *label, const kg_store_checksum *c)
{
	printf("  %-4s %llu entities (checksum %016llx%016llx), %llu relations (checksum %016llx%016llx)\n", label,
	       (unsigned long long)c->entities.count, (unsigned long long)c->entities.sum_hi,
	       (unsigned long long)c->entities.sum_lo, (unsigned long long)c->relations.count,
	       (unsigned long long)c->relations.sum_hi, (unsigned long long)c->relations.sum_lo);
}

int cli_cmd_migrate(int argc, char **argv)
{
	static const struct option own[] = {
		{ "batch-size", required_argument, 0, 'b' }, { "resume", required_argument, 0, 'r' },
		{ "skip-existing", no_argument, 0, 'x' },  { "no-verify", no_argument, 0, 'n' },
		{ 0, 0, 0, 0 }
	};
	kg_migrate_options o = KG_MIGRATE_OPTIONS_INIT;
	int rc = cli_getopt(argc, argv, "migrate", MIGRATE_HELP, own, "", migrate_opt, &o);
	if (rc >= 0)
		return rc;
	if (optind + 2 != argc) {
		fputs(MIGRATE_HELP, stderr);
		return CLI_USAGE;
	}
	const char *src_uri = argv[optind], *dst_uri = argv[optind + 1];
	/* A file on either side: the importer or exporter does the job. */
	if (!is_store_uri(src_uri) || !is_store_uri(dst_uri)) {
		if (!is_store_uri(src_uri) && !is_store_uri(dst_uri)) {
			fprintf(stderr, "kgstore migrate: neither %s nor %s is a store URI (memory:, sqlite:PATH, "
			                "postgresql://...)\n", src_uri, dst_uri);
			return CLI_USAGE;
		}
		g_cli.store_uri = is_store_uri(src_uri) ? src_uri : dst_uri;
		char *args[] = { is_store_uri(src_uri) ? "export" : "import",
			         (char *)(is_store_uri(src_uri) ? dst_uri : src_uri), "--all-tenants", NULL };
		return is_store_uri(src_uri) ? cli_cmd_export(3, args) : cli_cmd_import(2, args);
	}
	kg_store *src = NULL, *dst = NULL;
	if ((rc = open_uri("migrate", src_uri, &src)) != CLI_OK)
		return rc;
	if ((rc = open_uri("migrate", dst_uri, &dst)) != CLI_OK) {
		kg_close(src);
		return rc;
	}
	cli_progress p;
	cli_progress_start(&p, "migrating", 0);
	o.progress = on_progress;
	o.progress_user = &p;
	kg_migrate_result *res = calloc(1, sizeof *res);
	if (!res) {
		kg_close(src);
		kg_close(dst);
		return CLI_INTERNAL;
	}
	int64_t t0 = kg_now_us();
	rc = kg_migrate(src, dst, &o, res);
	cli_progress_done(&p, res->entity_count + res->relation_count);
	double secs = (double)(kg_now_us() - t0) / 1e6;
	if (rc != KG_OK) {
		fprintf(stderr, "kgstore migrate: %s\n", res->errmsg[0] ? res->errmsg : kg_strerror(rc));
		if (o.resume_path && rc != KG_ECORRUPT)
			fprintf(stderr, "run the same command again to continue from the last committed batch\n");
		rc = cli_exit_code(rc);
	} else if (g_cli.json) {
		printf("{\"entity_count\": %llu, \"relation_count\": %llu, \"skipped\": %llu, \"namespaces\": %zu, "
		       "\"resumed\": %s, \"verified\": %s, \"seconds\": %.3f}\n",
		       (unsigned long long)res->entity_count, (unsigned long long)res->relation_count,
		       (unsigned long long)res->skipped, res->namespaces, res->resumed ? "true" : "false",
		       res->verified ? "true" : "false", secs);
	} else {
		printf("migrated %llu entities and %llu relations in %zu namespaces in %.2f s (%.0f records/s)%s\n",
		       (unsigned long long)res->entity_count, (unsigned long long)res->relation_count, res->namespaces,
		       secs, cli_rate(res->entity_count + res->relation_count, secs),
		       res->resumed ? ", resumed" : "");
		if (res->skipped)
			printf("%llu records were already there and were skipped\n", (unsigned long long)res->skipped);
		if (res->verified) {
			printf("verified: both stores hold the same content\n");
			print_checksum("src", &res->verify.a);
			print_checksum("dst", &res->verify.b);
		}
	}
	free(res);
	kg_close(src);
	kg_close(dst);
	return rc;
}

static const char VERIFY_HELP[] =
	"usage: kgstore verify A B [--json]\n\n"
	"Compares two stores (URIs), namespace by namespace: counts and content\n"
	"checksums of entities and relations. Exit code 0 if they hold the same\n"
	"graph, 5 if not (the first difference is printed).\n";

int cli_cmd_verify(int argc, char **argv)
{
	int rc = cli_getopt(argc, argv, "verify", VERIFY_HELP, NULL, "", NULL, NULL);
	if (rc >= 0)
		return rc;
	if (optind + 2 != argc) {
		fputs(VERIFY_HELP, stderr);
		return CLI_USAGE;
	}
	kg_store *a = NULL, *b = NULL;
	if ((rc = open_uri("verify", argv[optind], &a)) != CLI_OK)
		return rc;
	if ((rc = open_uri("verify", argv[optind + 1], &b)) != CLI_OK) {
		kg_close(a);
		return rc;
	}
	kg_verify_result *res = calloc(1, sizeof *res);
	if (!res) {
		kg_close(a);
		kg_close(b);
		return CLI_INTERNAL;
	}
	rc = kg_verify(a, b, NULL, res);
	if (rc != KG_OK) {
		fprintf(stderr, "kgstore verify: %s\n", res->errmsg[0] ? res->errmsg : kg_strerror(rc));
		rc = cli_exit_code(rc);
	} else {
		if (g_cli.json)
			printf("{\"equal\": %s, \"entities\": [%llu, %llu], \"relations\": [%llu, %llu], \"difference\": \"%s\"}\n",
			       res->equal ? "true" : "false", (unsigned long long)res->a.entities.count,
			       (unsigned long long)res->b.entities.count, (unsigned long long)res->a.relations.count,
			       (unsigned long long)res->b.relations.count, res->equal ? "" : res->errmsg);
		else {
			printf("%s\n", res->equal ? "equal" : res->errmsg);
			print_checksum("A", &res->a);
			print_checksum("B", &res->b);
		}
		rc = res->equal ? CLI_OK : CLI_IO;
	}
	free(res);
	kg_close(a);
	kg_close(b);
	return rc;
}
