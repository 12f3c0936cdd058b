/*
 * degrade_journal_writer.c - leaves a graceful-degradation journal behind,
 * as an application does that took writes while its primary was down and
 * then went away for good: the primary never answers (its connect fails
 * with KG_ECONNLOST), so every write goes to the fallback and the journal.
 * tests/cli_degrade.sh then replays it by hand with `kgstore degrade`.
 *
 *   degrade_journal_writer JOURNAL N   writes entities j0..jN-1 and a
 *                                      relation j0 -> j1; exit 0 if every
 *                                      write was acknowledged, degraded
 */
#include <stdio.h>
#include <stdlib.h>

#include "kgstore.h"
#include "kgstore/degrade.h"

static int never_up(void *user, kg_store **out, char *err, size_t errcap)
{
	(void)user;
	*out = NULL;
	snprintf(err, errcap, "the primary is down (test)");
	return KG_ECONNLOST;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s JOURNAL N\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[2]);
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.max_failures = 1;
	o.journal_path = argv[1];
	o.recovery_interval = 3600; /* no recovery attempts while writing */
	kg_store *s = NULL;
	char err[512];
	if (kg_degrade_open_with(never_up, NULL, &o, &s, err, sizeof err) != KG_OK) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	int bad = 0;
	char id[32];
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof id, "j%d", i);
		kg_entity e = { .id = id, .entity_type = "Journaled", .properties = "{\"while\": \"degraded\"}" };
		if (kg_add_entity(s, &e) != KG_OK || !kg_degrade_last_call_degraded(s)) {
			fprintf(stderr, "add %s: %s\n", id, kg_errmsg(s));
			bad++;
		}
	}
	kg_relation r = KG_RELATION_INIT;
	r.id = "jr";
	r.relation_type = "NEXT";
	r.source_id = "j0";
	r.target_id = "j1";
	if (n >= 2 && kg_add_relation(s, &r) != KG_OK) {
		fprintf(stderr, "add jr: %s\n", kg_errmsg(s));
		bad++;
	}
	kg_degrade_status st;
	if (kg_degrade_status_get(s, &st) != KG_OK || st.state != KG_DEGRADE_DEGRADED) {
		fprintf(stderr, "expected the degraded state\n");
		bad++;
	}
	kg_close(s);
	return bad ? 1 : 0;
}
