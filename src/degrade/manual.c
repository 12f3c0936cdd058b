/*
 * manual.c - journals by hand, for the kgstore command: inspect one, and
 * replay one into a store (after a process died degraded and will not be
 * restarted, or to retry JOURNAL.rejected).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dg_internal.h"

int kg_degrade_journal_info_get(const char *journal_path, kg_degrade_journal_info *out, char *err, size_t errcap)
{
	char dummy[8];
	if (!err || !errcap) {
		err = dummy;
		errcap = sizeof(dummy);
	}
	err[0] = '\0';
	if (!out || !journal_path) {
		snprintf(err, errcap, "kg_degrade_journal_info_get: journal_path and out must not be NULL");
		return KG_EINVAL;
	}
	memset(out, 0, sizeof(*out));
	dg_journal j;
	/* Read-only and unlocked: looking must not disturb a running store. */
	int rc = dg_journal_open(&j, journal_path, 1, 0, err, errcap);
	if (rc < 0)
		return rc;
	out->records = j.records;
	out->pending = j.pending;
	out->cursor = j.cursor;
	out->first_seq = j.first_seq;
	out->last_seq = j.last_seq;
	out->torn_bytes = j.torn_bytes;
	out->rejected = dg_journal_count_file(j.rejected_path);
	dg_journal_close(&j);
	return KG_OK;
}

int kg_degrade_replay_journal(const char *journal_path, kg_store *target, kg_degrade_policy policy,
                              kg_degrade_conflict_fn on_conflict, void *user, kg_degrade_replay_report *rep,
                              char *err, size_t errcap)
{
	char dummy[8];
	kg_degrade_replay_report local;
	if (!err || !errcap) {
		err = dummy;
		errcap = sizeof(dummy);
	}
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	err[0] = '\0';
	kg_backend *dst = kg_store_backend(target);
	if (!journal_path || !dst) {
		snprintf(err, errcap, "kg_degrade_replay_journal: give a journal path and an open target store");
		return KG_EINVAL;
	}
	if (policy != KG_DEGRADE_JOURNAL_WINS && policy != KG_DEGRADE_KEEP_PRIMARY) {
		snprintf(err, errcap, "kg_degrade_replay_journal: policy %d is not KG_DEGRADE_JOURNAL_WINS or "
		         "KG_DEGRADE_KEEP_PRIMARY", (int)policy);
		return KG_EINVAL;
	}
	if (access(journal_path, F_OK) < 0) {
		snprintf(err, errcap, "no journal at %s: check the path (a store's journal_path)", journal_path);
		return KG_ENOTFOUND;
	}
	dg_journal j;
	int rc = dg_journal_open(&j, journal_path, 0, 1, err, errcap);
	if (rc < 0)
		return rc;
	dg_replay rp;
	memset(&rp, 0, sizeof(rp));
	rp.dst = dst;
	rp.policy = policy;
	rp.on_conflict = on_conflict;
	rp.user = user;
	rp.j = &j;
	rc = dg_replay_range(&rp, j.end);
	*rep = rp.rep;
	if (rc < 0) {
		snprintf(err, errcap, "replay of %s stopped with %llu records left: %s; run it again once the target "
		         "answers (it continues where it stopped)", journal_path, (unsigned long long)rp.rep.remaining,
		         rp.msg);
	} else if (dg_journal_reset(&j) < 0) {
		snprintf(err, errcap, "journal %s was replayed but could not be emptied; replaying it again is safe",
		         journal_path);
		rc = KG_EIO;
	}
	dg_journal_close(&j);
	return rc;
}
