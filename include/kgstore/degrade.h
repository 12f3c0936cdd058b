/*
 * kgstore/degrade.h - graceful degradation: a store that keeps answering
 * when its primary (usually PostgreSQL) goes away, and loses nothing.
 *
 * The wrapper is an ordinary kg_store (every call of kgstore.h works on it,
 * tenant views included), built on the backend interface. Calls go to the
 * primary. Only connection-class failures (KG_ECONNLOST, KG_EPOOL, and a
 * primary that cannot be reached at open) count as an outage, counted
 * consecutively; any success resets the count, and request errors
 * (KG_ENOTFOUND, KG_EEXISTS, KG_EINVAL, ...) are returned as they are and
 * never switch stores. After max_failures consecutive connection failures
 * the primary is marked down and calls go to an in-memory fallback, warmed
 * with the entities the application read or wrote most recently.
 *
 * Writes accepted while degraded are appended to a local journal and
 * fsync()ed before the call returns; on recovery they are replayed into the
 * primary in order, with conflicts resolved by a stated policy and reported.
 * Replay is idempotent (a cursor file records progress, and a record whose
 * effect is already in the primary is recognised as such), so a crash
 * during replay loses nothing and writes nothing twice. A process that dies
 * while degraded replays its journal on the next open.
 *
 * See docs/DEGRADATION.md for the rules in full.
 */
#ifndef KGSTORE_DEGRADE_H
#define KGSTORE_DEGRADE_H

#include <stddef.h>
#include <stdint.h>

#include "../kgstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kg_degrade_state {
	KG_DEGRADE_NORMAL = 0,   /* calls go to the primary */
	KG_DEGRADE_DEGRADED = 1, /* primary down: calls go to the fallback */
	KG_DEGRADE_FAILED = 2    /* primary down and no fallback (disabled, or a
	                            journal to replay first): calls fail with
	                            KG_ECONNLOST until the primary is back */
} kg_degrade_state;

/* What replay does when a journaled write meets a primary that changed. */
typedef enum kg_degrade_policy {
	/* Default. The journaled write is applied over the primary's record
	 * (add of an existing id -> upsert, update of a missing id -> upsert):
	 * it is the later write the application was told had succeeded. */
	KG_DEGRADE_JOURNAL_WINS = 0,
	/* The primary's record stays; the journaled write is not applied. */
	KG_DEGRADE_KEEP_PRIMARY = 1
} kg_degrade_policy;

/* Journal operations (one record each; a bulk add is one record). */
typedef enum kg_degrade_op {
	KG_JOP_ADD_ENTITIES = 1,
	KG_JOP_UPDATE_ENTITY = 2, /* flags KG_UPSERT for an upsert */
	KG_JOP_DELETE_ENTITY = 3,
	KG_JOP_ADD_RELATIONS = 4,
	KG_JOP_UPDATE_RELATION = 5,
	KG_JOP_DELETE_RELATION = 6,
	KG_JOP_CLEAR = 7
} kg_degrade_op;

typedef enum kg_degrade_conflict_kind {
	KG_CONFLICT_EXISTS = 1,     /* add: the primary holds a different record */
	KG_CONFLICT_MISSING = 2,    /* update: the primary no longer holds the id */
	KG_CONFLICT_REJECTED = 3    /* the primary refused the write (e.g. a
	                               relation endpoint is gone); the record is
	                               copied to JOURNAL.rejected */
} kg_degrade_conflict_kind;

typedef enum kg_degrade_resolution {
	KG_RESOLVED_JOURNAL = 1, /* the journaled write was applied */
	KG_RESOLVED_PRIMARY = 2, /* the primary's record was kept */
	KG_RESOLVED_NONE = 3     /* not applied; kept in JOURNAL.rejected */
} kg_degrade_resolution;

/* One conflict met on replay. Every pointer is borrowed for the duration of
 * the callback only. A crash during replay may report a conflict again when
 * the record is replayed after the restart (reports are at least once). */
typedef struct kg_degrade_conflict {
	uint64_t seq;              /* journal sequence number of the record */
	kg_degrade_op op;
	const char *tenant;        /* NULL = global namespace */
	const char *id;            /* the entity or relation id */
	kg_degrade_conflict_kind kind;
	kg_degrade_resolution resolution;
	int primary_rc;            /* what the primary answered (KG_OK or KG_E*) */
	const char *message;       /* a sentence for a log */
} kg_degrade_conflict;

typedef void (*kg_degrade_conflict_fn)(void *user, const kg_degrade_conflict *conflict);

/* Opens the primary. Returns KG_OK with *out set, or a negative code with a
 * message written into err (errcap bytes); *out is then NULL. */
typedef int (*kg_degrade_connect_fn)(void *user, kg_store **out, char *err, size_t errcap);

#define KG_DEGRADE_OPTIONS_VERSION 1
#define KG_DEGRADE_NO_WARM ((size_t)-1)

/* Start from KG_DEGRADE_OPTIONS_INIT; fields left 0 / NULL take the
 * defaults given. */
typedef struct kg_degrade_options {
	unsigned version;          /* KG_DEGRADE_OPTIONS_VERSION */
	int enable_fallback;       /* the seed's option; 1 in the INIT macro.
	                              0: after max_failures the state is FAILED */
	int max_failures;          /* consecutive connection failures before
	                              switching; default 3 */
	const char *journal_path;  /* file for writes taken while degraded (and
	                              PATH.cursor, PATH.rejected beside it).
	                              NULL: writes are refused while degraded */
	double recovery_interval;  /* seconds between recovery attempts while
	                              degraded; default 5 */
	size_t warm_cache_size;    /* entities kept to warm the fallback;
	                              default 1000, KG_DEGRADE_NO_WARM: none */
	size_t fallback_budget;    /* memory budget of the fallback in bytes;
	                              0 = no limit (writes past it: KG_EBUDGET) */
	kg_degrade_policy policy;  /* conflict rule on replay */
	kg_degrade_conflict_fn on_conflict; /* optional report of each conflict.
	                              Runs during replay with the journal locked:
	                              it must not call this store. */
	void *user;                /* passed to on_conflict */
	int recovery_thread;       /* 1: a background thread tries recovery every
	                              recovery_interval while degraded. 0: recovery
	                              is tried lazily by the first call after each
	                              interval, and by kg_degrade_try_recover */
} kg_degrade_options;

#define KG_DEGRADE_OPTIONS_INIT { .version = KG_DEGRADE_OPTIONS_VERSION, .enable_fallback = 1 }

/*
 * Open a degrading store over the primary at `primary_uri` (any kg_open URI).
 * A primary that cannot be reached (KG_ECONNLOST / KG_EPOOL) is not an
 * error: it counts as one connection failure, and the primary is opened
 * again on later calls (degraded at once if a journal from an earlier run
 * waits to be replayed). Any other open error (bad URI, bad options) fails
 * the call: KG_E* is returned, *out is NULL and err holds the message.
 * A journal left by an earlier process is replayed before this returns when
 * the primary is reachable. Close the store with kg_close.
 */
int kg_degrade_open(const char *primary_uri, const kg_degrade_options *opts, kg_store **out, char *err,
                    size_t errcap);

/* The same with a function that opens the primary (for primaries that are
 * not a URI, or wrapped ones). `user` is passed to connect. */
int kg_degrade_open_with(kg_degrade_connect_fn connect, void *user, const kg_degrade_options *opts,
                         kg_store **out, char *err, size_t errcap);

/* 1 if `s` (or the base of a view) is a degrading store, else 0. */
int kg_degrade_is(kg_store *s);

/* Status, copied into *out (nothing to free). KG_EINVAL if `s` is not a
 * degrading store. */
typedef struct kg_degrade_status {
	kg_degrade_state state;
	unsigned failures;         /* consecutive connection failures now */
	uint64_t total_failures;   /* connection failures since open */
	uint64_t switches;         /* times the fallback was switched in */
	uint64_t recoveries;       /* times the primary came back */
	int64_t last_failure_at;   /* µs since epoch, 0 = never */
	char last_failure[512];    /* message of the last connection failure */
	int64_t degraded_since;    /* µs since epoch, 0 when normal */
	uint64_t pending;          /* journal records not yet replayed */
	uint64_t journaled;        /* records written since open */
	/* Replay counts writes (a bulk add of n entities counts n): */
	uint64_t replayed;         /* written to the primary since open */
	uint64_t already_applied;  /* found already in the primary */
	uint64_t conflicts;        /* conflicts reported since open */
	uint64_t rejected;         /* refused by the primary (their records are
	                              kept in JOURNAL.rejected) */
	double last_recovery_seconds; /* duration of the last successful recovery
	                                 (reconnect + replay) */
} kg_degrade_status;

int kg_degrade_status_get(kg_store *s, kg_degrade_status *out);

/* Static name of a state: "normal", "degraded", "failed". */
const char *kg_degrade_state_name(kg_degrade_state st);

/* 1 if the last call this thread made on this degrading store was answered
 * by the fallback (its result may be incomplete or stale), 0 if by the
 * primary, or if `s` is not a degrading store. */
int kg_degrade_last_call_degraded(kg_store *s);

/* Try to bring the primary back now: reconnect, replay the journal, switch
 * back. KG_OK if the store is normal when this returns; KG_ECONNLOST if the
 * primary is still down or the replay stopped (why: in err, errcap bytes,
 * may be NULL); KG_EINVAL if not a degrading store. */
int kg_degrade_try_recover(kg_store *s, char *err, size_t errcap);

/* ------------------------------------------------------------------ */
/* Journals by hand (the kgstore command)                               */
/* ------------------------------------------------------------------ */

typedef struct kg_degrade_journal_info {
	uint64_t records;     /* valid records in the file */
	uint64_t pending;     /* of which not yet replayed (seq > cursor) */
	uint64_t cursor;      /* last replayed sequence number */
	uint64_t first_seq, last_seq; /* of the valid records, 0 if none */
	uint64_t torn_bytes;  /* bytes after the last valid record (a write
	                         cut by a crash; ignored, dropped on next open) */
	uint64_t rejected;    /* records in PATH.rejected */
} kg_degrade_journal_info;

/* Reads a journal without changing it. KG_ENOTFOUND if there is no file,
 * KG_ECORRUPT if it is not a journal. Message in err. */
int kg_degrade_journal_info_get(const char *journal_path, kg_degrade_journal_info *out, char *err,
                                size_t errcap);

/* Counts writes (a bulk add of n entities counts n), except remaining. */
typedef struct kg_degrade_replay_report {
	uint64_t applied;         /* written to the target */
	uint64_t already_applied; /* whose effect was already there */
	uint64_t conflicts;       /* conflicts reported (a resolved one is also
	                             counted in applied or not at all) */
	uint64_t rejected;        /* refused by the target (record copied to
	                             JOURNAL.rejected) */
	uint64_t remaining;       /* journal records left (the target went down) */
} kg_degrade_replay_report;

/*
 * Replays the pending records of `journal_path` into `target` (any open
 * store; the journal's tenants are used, not the handle's), in order,
 * under `policy`, reporting conflicts to on_conflict (may be NULL). Takes
 * the journal's lock: KG_EBUSY if a process has it open. On success the
 * journal is emptied. A connection failure stops the replay (KG_ECONNLOST,
 * rep->remaining > 0); running it again continues where it stopped.
 * rep may be NULL. Message in err.
 */
int kg_degrade_replay_journal(const char *journal_path, kg_store *target, kg_degrade_policy policy,
                              kg_degrade_conflict_fn on_conflict, void *user, kg_degrade_replay_report *rep,
                              char *err, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif /* KGSTORE_DEGRADE_H */
