/*
 * brlock.h - a readers-writer lock whose readers do not share a cache line
 * (a "big-reader" lock, as in the Linux kernel's brlock): each reader thread
 * counts itself in a slot of its own, so two threads reading at once do not
 * bounce one line between CPUs the way pthread_rwlock's single counter does
 * (measured: 2 reader threads got 0.7x the lookups of 1). Writers are rare
 * and pay for it: they raise a flag and wait for every slot to drain.
 * Writer-preferring: a reader that sees the flag steps back and sleeps until
 * the writer is done. Not recursive, like the pthread lock it replaces.
 */
#ifndef KG_BRLOCK_H
#define KG_BRLOCK_H

#include <pthread.h>
#include <stdatomic.h>

#define BR_SLOTS 32

typedef struct br_slot {
	_Alignas(64) atomic_int readers;
	char pad[64 - sizeof(atomic_int)];
} br_slot;

typedef struct brlock {
	br_slot slot[BR_SLOTS];
	_Alignas(64) atomic_int writer; /* 1 while a writer holds or wants the lock */
	pthread_mutex_t wmu;            /* one writer at a time */
	pthread_mutex_t rmu;            /* readers sleep here while writer == 1 */
	pthread_cond_t rcond;
} brlock;

int br_init(brlock *l);
void br_destroy(brlock *l);
void br_rdlock(brlock *l);
void br_rdunlock(brlock *l);
void br_wrlock(brlock *l);
void br_wrunlock(brlock *l);

#endif
