/*
 * degrade_cmd.c - `kgstore degrade status|replay`: a person's view of a
 * graceful-degradation journal (kgstore/degrade.h) and the means to replay
 * it into the primary by hand, e.g. after the application that wrote it is
 * gone for good.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kgstore/degrade.h"

static const char DEGRADE_HELP[] =
	"usage: kgstore [-s PRIMARY_URI] degrade status --journal FILE [--json]\n"
	"       kgstore  -s PRIMARY_URI  degrade replay --journal FILE [--policy journal-wins|keep-primary]\n\n"
	"status: what the journal holds (records, how many are still to replay, a\n"
	"torn tail left by a crash, rejected records) and, with -s, whether the\n"
	"primary answers now.\n"
	"replay: applies the pending records to the primary in order; conflicts are\n"
	"resolved by the policy (default journal-wins: the journaled write is applied\n"
	"over the primary's record) and each is printed. Safe to run again after an\n"
	"interruption: it continues where it stopped and writes nothing twice.\n"
	"The journal must not be open in a running application (exit code 4 if it is).\n";

typedef struct degrade_opts {
	const char *journal;
	kg_degrade_policy policy;
} degrade_opts;

static int degrade_opt(int ch, const char *arg, void *ctx)
{
	degrade_opts *o = ctx;
	if (ch == 'j') {
		o->journal = arg;
		return 0;
	}
	if (ch == 'p') {
		if (!strcmp(arg, "journal-wins"))
			o->policy = KG_DEGRADE_JOURNAL_WINS;
		else if (!strcmp(arg, "keep-primary"))
			o->policy = KG_DEGRADE_KEEP_PRIMARY;
		else {
			fprintf(stderr, "kgstore degrade: --policy is journal-wins or keep-primary, not '%s'\n", arg);
			return CLI_USAGE;
		}
		return 0;
	}
	return CLI_USAGE;
}

static void on_conflict(void *user, const kg_degrade_conflict *c)
{
	(void)user;
	printf("conflict at record %llu (%s %s): %s\n", (unsigned long long)c->seq, c->tenant ? c->tenant : "global",
	       c->id ? c->id : "", c->message);
}

static int degrade_status(const degrade_opts *o)
{
	kg_degrade_journal_info info;
	char err[512] = "";
	int rc = kg_degrade_journal_info_get(o->journal, &info, err, sizeof err);
	if (rc == KG_ENOTFOUND) {
		memset(&info, 0, sizeof info);
	} else if (rc != KG_OK) {
		fprintf(stderr, "kgstore degrade: %s\n", err[0] ? err : kg_strerror(rc));
		return cli_exit_code(rc);
	}
	/* Is the primary reachable? Opened plainly: a status look changes nothing. */
	const char *uri = g_cli.store_uri ? g_cli.store_uri : getenv("KGSTORE_URI");
	int reachable = -1;
	char why[512] = "";
	if (uri) {
		kg_store *p = NULL;
		int prc = kg_open(uri, &p);
		reachable = prc == KG_OK;
		if (!reachable)
			snprintf(why, sizeof why, "%s", p ? kg_errmsg(p) : kg_strerror(prc));
		kg_close(p);
	}
	if (g_cli.json) {
		printf("{\"journal\": ");
		cli_json_string(stdout, o->journal);
		printf(", \"exists\": %s, \"records\": %llu, \"pending\": %llu, \"cursor\": %llu, \"torn_bytes\": %llu, "
		       "\"rejected\": %llu, \"primary_reachable\": %s}\n",
		       rc == KG_OK ? "true" : "false", (unsigned long long)info.records, (unsigned long long)info.pending,
		       (unsigned long long)info.cursor, (unsigned long long)info.torn_bytes,
		       (unsigned long long)info.rejected, reachable < 0 ? "null" : reachable ? "true" : "false");
	} else {
		if (rc == KG_ENOTFOUND)
			printf("journal %s: none (nothing was written while degraded)\n", o->journal);
		else
			printf("journal %s: %llu records, %llu pending replay (replayed up to %llu)%s\n"
			       "  rejected by the primary: %llu (in %s.rejected)\n",
			       o->journal, (unsigned long long)info.records, (unsigned long long)info.pending,
			       (unsigned long long)info.cursor,
			       info.torn_bytes ? ", torn tail ignored (a crash mid-write)" : "",
			       (unsigned long long)info.rejected, o->journal);
		if (reachable > 0)
			printf("primary %s: reachable%s\n", uri,
			       info.pending ? " - `kgstore degrade replay` applies the pending records" : "");
		else if (reachable == 0)
			printf("primary %s: NOT reachable: %s\n", uri, why);
	}
	return CLI_OK;
}

static int degrade_replay(const degrade_opts *o)
{
	const char *uri = g_cli.store_uri ? g_cli.store_uri : getenv("KGSTORE_URI");
	if (!uri) {
		fprintf(stderr, "kgstore degrade replay: name the primary with -s URI\n");
		return CLI_USAGE;
	}
	kg_store *p = NULL;
	int rc = kg_open(uri, &p);
	if (rc != KG_OK) {
		rc = cli_fail("degrade replay", p, rc, "cannot open the primary");
		kg_close(p);
		return rc;
	}
	kg_degrade_replay_report rep;
	memset(&rep, 0, sizeof rep);
	char err[512] = "";
	int64_t t0 = kg_now_us();
	rc = kg_degrade_replay_journal(o->journal, p, o->policy, on_conflict, NULL, &rep, err, sizeof err);
	double secs = (double)(kg_now_us() - t0) / 1e6;
	kg_close(p);
	if (g_cli.json)
		printf("{\"applied\": %llu, \"already_applied\": %llu, \"conflicts\": %llu, \"rejected\": %llu, "
		       "\"remaining\": %llu, \"seconds\": %.3f}\n",
		       (unsigned long long)rep.applied, (unsigned long long)rep.already_applied,
		       (unsigned long long)rep.conflicts, (unsigned long long)rep.rejected,
		       (unsigned long long)rep.remaining, secs);
	else
		printf("replayed %s into %s in %.2f s: %llu applied, %llu already there, %llu conflicts, %llu rejected, "
		       "%llu remaining\n",
		       o->journal, uri, secs, (unsigned long long)rep.applied, (unsigned long long)rep.already_applied,
		       (unsigned long long)rep.conflicts, (unsigned long long)rep.rejected,
		       (unsigned long long)rep.remaining);
	if (rc != KG_OK) {
		fprintf(stderr, "kgstore degrade replay: %s\n", err[0] ? err : kg_strerror(rc));
		if (rep.remaining)
			fprintf(stderr, "run it again when the primary is back: it continues where it stopped\n");
		return cli_exit_code(rc);
	}
	return CLI_OK;
}

int cli_cmd_degrade(int argc, char **argv)
{
	static const struct option own[] = { { "journal", required_argument, 0, 'j' },
		                             { "policy", required_argument, 0, 'p' },
		                             { 0, 0, 0, 0 } };
	degrade_opts o = { NULL, KG_DEGRADE_JOURNAL_WINS };
	int rc = cli_getopt(argc, argv, "degrade", DEGRADE_HELP, own, "j:", degrade_opt, &o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || !o.journal) {
		fputs(DEGRADE_HELP, stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[optind], "status"))
		return degrade_status(&o);
	if (!strcmp(argv[optind], "replay"))
		return degrade_replay(&o);
	fprintf(stderr, "kgstore degrade: the action is status or replay, not '%s'\n", argv[optind]);
	return CLI_USAGE;
}
