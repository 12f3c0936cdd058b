/*
 * replay.c - applies journal records to a store (the recovered primary, a
 * store given by hand, or the fallback at open).
 *
 * Every record is applied so that applying it twice has the effect of
 * applying it once: before writing, the target's current record is read;
 * if it already holds what the write produces, the write is counted as
 * already applied and nothing is written. That is what makes a crash
 * between a write and the cursor update harmless, and what recognises a
 * write the primary took just before its connection broke.
 *
 * Conflicts (an add meeting a different record, an update meeting none)
 * are resolved by the policy and reported; a write the target refuses
 * (e.g. a relation whose endpoint is gone) is reported and copied to
 * JOURNAL.rejected. Nothing is dropped without a report.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dg_internal.h"

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* JSON objects compared by value: a server may store them reformatted. */
static int json_text_eq(const char *a, const char *b)
{
	const char *x = a ? a : "{}", *y = b ? b : "{}";
	if (strcmp(x, y) == 0)
		return 1;
	json_t *jx = json_loads(x, JSON_DECODE_ANY, NULL);
	json_t *jy = json_loads(y, JSON_DECODE_ANY, NULL);
	int eq = jx && jy && json_equal(jx, jy);
	json_decref(jx);
	json_decref(jy);
	return eq;
}

/* Same content (timestamps aside: the target may round or restamp them). */
static int entity_same(const kg_entity *a, const kg_entity *b)
{
	size_t da = a->embedding ? a->embedding_dim : 0, db = b->embedding ? b->embedding_dim : 0;
	return str_eq(a->entity_type, b->entity_type) && str_eq(a->source, b->source) && da == db &&
	       (da == 0 || memcmp(a->embedding, b->embedding, da * sizeof(float)) == 0) &&
	       json_text_eq(a->properties, b->properties);
}

static int relation_same(const kg_relation *a, const kg_relation *b)
{
	return str_eq(a->relation_type, b->relation_type) && str_eq(a->source_id, b->source_id) &&
	       str_eq(a->target_id, b->target_id) && a->weight == b->weight && str_eq(a->source, b->source) &&
	       json_text_eq(a->properties, b->properties);
}

typedef struct rp_rec {
	dg_replay *rp;
	const dg_record *r;
	const unsigned char *raw;
	size_t rawlen;
	int rejected_copied;
} rp_rec;

/* KG_OK, or KG_EIO when a refused record could not be kept in the
 * .rejected file: then the replay must stop before its cursor passes it. */
static int report(rp_rec *x, const char *id, kg_degrade_conflict_kind kind, kg_degrade_resolution res, int prc,
                  const char *detail)
{
	dg_replay *rp = x->rp;
	if (rp->quiet)
		return KG_OK;
	if (kind == KG_CONFLICT_REJECTED) {
		/* The whole record once: replaying it by hand later is safe,
		 * its other items are then found already applied. Counted only
		 * once kept, as a failed copy stops the replay before it. */
		if (!x->rejected_copied && rp->j) {
			if (dg_journal_reject(rp->j, x->r->seq, x->raw, x->rawlen) != KG_OK)
				return KG_EIO;
			x->rejected_copied = 1;
		}
		rp->rep.rejected++;
	}
	rp->rep.conflicts++;
	if (!rp->on_conflict)
		return KG_OK;
	char msg[1200];
	const char *what = kind == KG_CONFLICT_EXISTS    ? "exists in the primary with other content"
	                   : kind == KG_CONFLICT_MISSING ? "no longer exists in the primary"
	                                                 : "was refused by the primary";
	const char *how = res == KG_RESOLVED_JOURNAL   ? "the journaled write was applied"
	                  : res == KG_RESOLVED_PRIMARY ? "the primary's record was kept"
	                                               : "the record was copied to the .rejected file";
	snprintf(msg, sizeof(msg), "journal record %llu: '%s'%s%s %s; %s%s%s", (unsigned long long)x->r->seq, id,
	         x->r->tenant ? " of tenant " : "", x->r->tenant ? x->r->tenant : "", what, how, detail ? ": " : "",
	         detail ? detail : "");
	kg_degrade_conflict c = { x->r->seq, (kg_degrade_op)x->r->op, x->r->tenant, id, kind, res, prc, msg };
	rp->on_conflict(rp->user, &c);
	return KG_OK;
}

/* A failure that is neither a conflict nor an outage: reject the item. */
static int reject(rp_rec *x, const char *id, int rc, const kg_call *c)
{
	/* An outage, or a lock held past its timeout: stop, try again later. */
	if (dg_conn_class(rc) || (rc == KG_EBUSY && !x->rp->quiet)) {
		snprintf(x->rp->msg, sizeof(x->rp->msg), "%s", c->msg);
		return rc;
	}
	if (report(x, id, KG_CONFLICT_REJECTED, KG_RESOLVED_NONE, rc, c->msg[0] ? c->msg : kg_strerror(rc)) != KG_OK) {
		snprintf(x->rp->msg, sizeof(x->rp->msg),
		         "journal record %llu was refused by the primary (%s) and could not be copied to %s.rejected; "
		         "replay stopped before it so nothing is lost: make that file writable and replay again",
		         (unsigned long long)x->r->seq, c->msg[0] ? c->msg : kg_strerror(rc),
		         x->rp->j ? x->rp->j->path : "the journal");
		return KG_EIO;
	}
	return 0;
}

static int conn_stop(rp_rec *x, int rc, const kg_call *c)
{
	snprintf(x->rp->msg, sizeof(x->rp->msg), "%s", c->msg[0] ? c->msg : kg_strerror(rc));
	return rc;
}

/* Writes one entity (e) or relation (r; the other is NULL) so that the
 * target ends up holding it, by the rules at the top of this file. */
static int put_item(rp_rec *x, kg_call *c, const kg_entity *e, const kg_relation *r, int is_add, unsigned flags)
{
	kg_backend *d = x->rp->dst;
	const char *id = e ? e->id : r->id;
	for (int attempt = 0; attempt < 3; attempt++) {
		kg_entity *cur_e = NULL;
		kg_relation *cur_r = NULL;
		c->msg[0] = '\0';
		int rc = e ? d->get_entity(d, c, id, &cur_e) : d->get_relation(d, c, id, &cur_r);
		if (dg_conn_class(rc))
			return conn_stop(x, rc, c);
		if (rc == KG_ENOTFOUND) {
			size_t added = 0;
			int conflict = !is_add && !(flags & KG_UPSERT);
			if (conflict && x->rp->policy == KG_DEGRADE_KEEP_PRIMARY) {
				report(x, id, KG_CONFLICT_MISSING, KG_RESOLVED_PRIMARY, KG_ENOTFOUND, NULL);
				return 0;
			}
			c->msg[0] = '\0';
			rc = e ? d->add_entities(d, c, e, 1, 0, &added) : d->add_relations(d, c, r, 1, 0, &added);
			if (rc == KG_EEXISTS)
				continue; /* someone added it meanwhile: look again */
			if (rc < 0)
				return reject(x, id, rc, c);
			x->rp->rep.applied++;
			if (conflict)
				report(x, id, KG_CONFLICT_MISSING, KG_RESOLVED_JOURNAL, KG_ENOTFOUND, NULL);
			return 0;
		}
		if (rc < 0)
			return reject(x, id, rc, c);
		int same = e ? entity_same(cur_e, e) : relation_same(cur_r, r);
		kg_entity_free(cur_e);
		kg_relation_free(cur_r);
		if (same) {
			x->rp->rep.already_applied++;
			return 0;
		}
		int conflict = is_add;
		if (conflict && (x->rp->policy == KG_DEGRADE_KEEP_PRIMARY || (flags & KG_BULK_SKIP_EXISTING))) {
			report(x, id, KG_CONFLICT_EXISTS, KG_RESOLVED_PRIMARY, KG_EEXISTS,
			       (flags & KG_BULK_SKIP_EXISTING) ? "the write asked to skip existing ids" : NULL);
			return 0;
		}
		c->msg[0] = '\0';
		/* An update stays an update (and an upsert an upsert); an add
		 * that won its conflict overwrites. */
		unsigned uflags = is_add ? KG_UPSERT : flags & KG_UPSERT;
		rc = e ? d->update_entity(d, c, e, uflags) : d->update_relation(d, c, r, uflags);
		if (rc == KG_ENOTFOUND && !is_add)
			continue; /* deleted meanwhile: look again */
		if (rc < 0)
			return reject(x, id, rc, c);
		x->rp->rep.applied++;
		if (conflict)
			report(x, id, KG_CONFLICT_EXISTS, KG_RESOLVED_JOURNAL, KG_EEXISTS, NULL);
		return 0;
	}
	return reject(x, id, KG_EBUSY, c);
}

int dg_replay_record(dg_replay *rp, const dg_record *r, const unsigned char *raw, size_t rawlen)
{
	char msg[1024] = "";
	kg_call c = { r->tenant, NULL, msg, sizeof(msg), 0 };
	rp_rec x = { rp, r, raw, rawlen, 0 };
	kg_backend *d = rp->dst;
	int rc = 0;
	switch (r->op) {
	case KG_JOP_ADD_ENTITIES:
	case KG_JOP_UPDATE_ENTITY:
		for (size_t i = 0; i < r->n && rc == 0; i++)
			rc = put_item(&x, &c, &r->ents[i], NULL, r->op == KG_JOP_ADD_ENTITIES, r->flags);
		return rc;
	case KG_JOP_ADD_RELATIONS:
	case KG_JOP_UPDATE_RELATION:
		for (size_t i = 0; i < r->n && rc == 0; i++)
			rc = put_item(&x, &c, NULL, &r->rels[i], r->op == KG_JOP_ADD_RELATIONS, r->flags);
		return rc;
	case KG_JOP_DELETE_ENTITY:
	case KG_JOP_DELETE_RELATION:
		rc = r->op == KG_JOP_DELETE_ENTITY ? d->delete_entity(d, &c, r->id) : d->delete_relation(d, &c, r->id);
		if (rc == KG_OK)
			rp->rep.applied++;
		else if (rc == KG_ENOTFOUND) /* the state the delete wanted */
			rp->rep.already_applied++;
		else
			return reject(&x, r->id, rc, &c);
		return 0;
	case KG_JOP_CLEAR:
		rc = d->clear(d, &c);
		if (rc < 0)
			return reject(&x, "(clear)", rc, &c);
		rp->rep.applied++;
		return 0;
	default:
		return reject(&x, "(unknown operation)", KG_ECORRUPT, &c);
	}
}

int dg_replay_range(dg_replay *rp, uint64_t end)
{
	dg_journal *j = rp->j;
	uint64_t off = j->cursor_off;
	while (off < end) {
		uint64_t next = off, seq = 0;
		unsigned char *payload = NULL;
		size_t len = 0;
		int rc = dg_journal_read(j, &next, end, &seq, &payload, &len);
		if (rc < 0) {
			snprintf(rp->msg, sizeof(rp->msg), "cannot read journal %s at offset %llu (%s)", j->path,
			         (unsigned long long)off, kg_strerror(rc));
			rp->rep.remaining = j->pending;
			return rc;
		}
		if (seq <= j->cursor) {
			free(payload);
			off = next;
			continue;
		}
		dg_record rec;
		rc = dg_record_decode(payload, len, seq, &rec);
		if (rc == KG_ECORRUPT) {
			/* Checksummed but not decodable: from a newer kgstore, say.
			 * Keep it for a human rather than guess. The payload was
			 * freed by the failed decode, so re-read it. */
			uint64_t again = off;
			unsigned char *raw = NULL;
			int kept = dg_journal_read(j, &again, end, &seq, &raw, &len) == KG_OK &&
			           dg_journal_reject(j, seq, raw, len) == KG_OK;
			free(raw);
			if (!kept) {
				snprintf(rp->msg, sizeof(rp->msg),
				         "journal record %llu cannot be read by this kgstore and could not be copied to "
				         "%s.rejected; replay stopped before it so nothing is lost",
				         (unsigned long long)seq, j->path);
				rp->rep.remaining = j->pending;
				return KG_EIO;
			}
			rp->rep.rejected++;
			rp->rep.conflicts++;
		} else if (rc < 0) {
			snprintf(rp->msg, sizeof(rp->msg), "out of memory replaying journal %s", j->path);
			rp->rep.remaining = j->pending;
			return rc;
		} else {
			rc = dg_replay_record(rp, &rec, rec.payload, len);
			dg_record_free(&rec);
			if (rc < 0) {
				rp->rep.remaining = j->pending;
				return rc;
			}
		}
		if ((rc = dg_journal_set_cursor(j, seq, next)) < 0) {
			snprintf(rp->msg, sizeof(rp->msg), "cannot write the journal cursor %s; replay stopped",
			         j->cursor_path);
			rp->rep.remaining = j->pending;
			return rc;
		}
		off = next;
	}
	rp->rep.remaining = j->pending;
	return KG_OK;
}
