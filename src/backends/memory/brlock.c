/*
 * brlock.c - see brlock.h. Correctness rests on sequentially consistent
 * atomics (Dekker's pattern): a reader increments its slot then reads the
 * writer flag; a writer sets the flag then reads every slot. In the single
 * total order of those operations, either the writer sees the reader's
 * count and waits, or the reader sees the flag and steps back.
 */
#include "brlock.h"

#include <sched.h>
#include <string.h>

/* Each thread's slot, handed out round-robin on its first read. Shared by
 * every lock in the process: it only spreads threads over slots. */
static atomic_uint next_slot;
static _Thread_local int my_slot = -1;

static br_slot *slot_of(brlock *l)
{
	if (my_slot < 0)
		my_slot = (int)(atomic_fetch_add(&next_slot, 1) % BR_SLOTS);
	return &l->slot[my_slot];
}

int br_init(brlock *l)
{
	memset(l, 0, sizeof(*l));
	for (int i = 0; i < BR_SLOTS; i++)
		atomic_init(&l->slot[i].readers, 0);
	atomic_init(&l->writer, 0);
	if (pthread_mutex_init(&l->wmu, NULL))
		return -1;
	if (pthread_mutex_init(&l->rmu, NULL)) {
		pthread_mutex_destroy(&l->wmu);
		return -1;
	}
	if (pthread_cond_init(&l->rcond, NULL)) {
		pthread_mutex_destroy(&l->rmu);
		pthread_mutex_destroy(&l->wmu);
		return -1;
	}
	return 0;
}

void br_destroy(brlock *l)
{
	pthread_cond_destroy(&l->rcond);
	pthread_mutex_destroy(&l->rmu);
	pthread_mutex_destroy(&l->wmu);
}

void br_rdlock(brlock *l)
{
	br_slot *s = slot_of(l);
	for (;;) {
		atomic_fetch_add(&s->readers, 1);
		if (!atomic_load(&l->writer))
			return;
		/* A writer holds or wants the lock: step back, sleep until it is done. */
		atomic_fetch_sub(&s->readers, 1);
		pthread_mutex_lock(&l->rmu);
		while (atomic_load(&l->writer))
			pthread_cond_wait(&l->rcond, &l->rmu);
		pthread_mutex_unlock(&l->rmu);
	}
}

void br_rdunlock(brlock *l) { atomic_fetch_sub(&slot_of(l)->readers, 1); }

void br_wrlock(brlock *l)
{
	pthread_mutex_lock(&l->wmu);
	atomic_store(&l->writer, 1);
	for (int i = 0; i < BR_SLOTS; i++)
		while (atomic_load(&l->slot[i].readers) > 0)
			sched_yield(); /* readers hold the lock for microseconds */
}

void br_wrunlock(brlock *l)
{
	pthread_mutex_lock(&l->rmu);
	atomic_store(&l->writer, 0);
	pthread_cond_broadcast(&l->rcond);
	pthread_mutex_unlock(&l->rmu);
	pthread_mutex_unlock(&l->wmu);
}
