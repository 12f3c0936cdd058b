/*
 * dg_internal.h - pieces of the graceful-degradation wrapper shared by its
 * files: the journal (journal.c), replay (replay.c), the wrapper (degrade.c).
 */
#ifndef KG_DG_INTERNAL_H
#define KG_DG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kgstore.h"
#include "kgstore/backend.h"
#include "kgstore/degrade.h"

/* ------------------------------------------------------------------ */
/* Journal file                                                         */
/* ------------------------------------------------------------------ */

/*
 * PATH holds records back to back:
 *   u32 magic "KGJ1" | u32 payload length | u64 seq | u32 crc32 | payload
 * little endian; the crc covers seq and payload. A record whose header or
 * crc does not check ends the valid part (a torn tail from a crash); open
 * cuts it off so later appends never follow garbage.
 * PATH.cursor holds two slots of { u64 seq, u32 crc32(seq), u32 0 }: the
 * last replayed seq is written to alternate slots, so a torn cursor write
 * leaves the other slot valid. Sequence numbers never restart: the next is
 * max(cursor, last record) + 1, so an emptied journal and an old cursor
 * still agree.
 */
typedef struct dg_journal {
	char *path, *cursor_path, *rejected_path;
	int fd, cfd;
	uint64_t end;        /* offset just past the last valid record */
	uint64_t next_seq;
	uint64_t cursor;     /* last replayed seq */
	uint64_t cursor_off; /* offset of the first record with seq > cursor */
	uint64_t pending;    /* records with seq > cursor */
	uint64_t records;    /* valid records in the file */
	uint64_t first_seq, last_seq;
	uint64_t torn_bytes; /* found (and cut, unless read-only) at open */
} dg_journal;

/* Opens (creating unless read_only) and scans the journal. lock: take an
 * exclusive flock, KG_EBUSY if another process holds it. */
int dg_journal_open(dg_journal *j, const char *path, int read_only, int lock, char *err, size_t errcap);
void dg_journal_close(dg_journal *j);
/* Appends one record and fsyncs it before returning. */
int dg_journal_append(dg_journal *j, const unsigned char *payload, size_t len, char *err, size_t errcap);
/* Reads the record at *off (< end); on success *off moves past it.
 * *payload is malloc'd (caller frees). */
int dg_journal_read(dg_journal *j, uint64_t *off, uint64_t end, uint64_t *seq, unsigned char **payload,
                    size_t *len);
/* Records that seq has been replayed (durably). */
int dg_journal_set_cursor(dg_journal *j, uint64_t seq, uint64_t next_off);
/* Empties the journal once everything is replayed. */
int dg_journal_reset(dg_journal *j);
/* Copies a record to PATH.rejected (durably). */
int dg_journal_reject(dg_journal *j, uint64_t seq, const unsigned char *payload, size_t len);
/* Counts the valid records of a journal-format file (0 if absent). */
uint64_t dg_journal_count_file(const char *path);

/* ------------------------------------------------------------------ */
/* Records                                                              */
/* ------------------------------------------------------------------ */

typedef struct dg_buf {
	unsigned char *p;
	size_t len, cap;
	int oom;
} dg_buf;

void dg_buf_free(dg_buf *b);
/* Payload encoders; check b->oom afterwards. */
void dg_encode_entities(dg_buf *b, int op, const char *tenant, unsigned flags, const kg_entity *e, size_t n);
void dg_encode_relations(dg_buf *b, int op, const char *tenant, unsigned flags, const kg_relation *r, size_t n);
void dg_encode_id(dg_buf *b, int op, const char *tenant, const char *id);
void dg_encode_clear(dg_buf *b, const char *tenant);

/* A decoded record; strings point into `payload`, which it owns. */
typedef struct dg_record {
	uint64_t seq;
	int op;
	unsigned flags;
	const char *tenant;
	const char *id;  /* delete ops */
	size_t n;
	kg_entity *ents;
	kg_relation *rels;
	float *floats;   /* embeddings storage */
	unsigned char *payload;
} dg_record;

/* Takes ownership of payload (also on failure). KG_ECORRUPT if malformed. */
int dg_record_decode(unsigned char *payload, size_t len, uint64_t seq, dg_record *r);
void dg_record_free(dg_record *r);

/* ------------------------------------------------------------------ */
/* Replay                                                               */
/* ------------------------------------------------------------------ */

typedef struct dg_replay {
	kg_backend *dst;
	kg_degrade_policy policy;
	kg_degrade_conflict_fn on_conflict;
	void *user;
	int quiet;          /* into the fallback: no reports, no rejects */
	dg_journal *j;      /* for rejects; may be NULL when quiet */
	kg_degrade_replay_report rep;
	char msg[1024];     /* message of a connection failure that stopped it */
} dg_replay;

static inline int dg_conn_class(int rc) { return rc == KG_ECONNLOST || rc == KG_EPOOL; }

/* Applies one record. 0 when done with it (applied, already there,
 * conflict resolved or rejected), or the connection-class code that
 * stopped it. */
int dg_replay_record(dg_replay *rp, const dg_record *r, const unsigned char *raw, size_t rawlen);
/* Replays records from the journal's cursor up to `end`, moving the cursor
 * after each. 0, or a connection-class code (rp->msg says why). */
int dg_replay_range(dg_replay *rp, uint64_t end);

#endif
