/* harness.h - a minimal test harness: checks count, failures print where
 * and why, and the run ends with the plain "N passed, N failed" line. */
#ifndef KG_TEST_HARNESS_H
#define KG_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int th_passed, th_failed;
static const char *th_current = "";

#define CHECK(cond)                                                         \
	do {                                                                    \
		if (cond) {                                                         \
			th_passed++;                                                    \
		} else {                                                            \
			th_failed++;                                                    \
			fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__,    \
			        th_current, #cond);                                     \
		}                                                                   \
	} while (0)

/* Checks that a kgstore call returns `expect`; prints the store's message. */
#define CHECK_RC(store, call, expect)                                       \
	do {                                                                    \
		int rc_ = (call);                                                   \
		if (rc_ == (expect)) {                                              \
			th_passed++;                                                    \
		} else {                                                            \
			th_failed++;                                                    \
			fprintf(stderr, "FAIL %s:%d [%s]: %s returned %d, expected %d: %s\n", \
			        __FILE__, __LINE__, th_current, #call, rc_, (int)(expect), \
			        (store) ? kg_errmsg(store) : "");                       \
		}                                                                   \
	} while (0)

#define CHECK_OK(store, call) CHECK_RC(store, call, 0)

/* A check whose failure message is written out (printf-style). */
#define CHECK_MSG(cond, ...)                                                \
	do {                                                                    \
		if (cond)                                                           \
			th_passed++;                                                    \
		else                                                                \
			CHECK_FAIL(__VA_ARGS__);                                        \
	} while (0)

/* A failed check with a message of its own, e.g. for a set-up that did not
 * work: a test that cannot set up has failed, it has not passed. */
#define CHECK_FAIL(...)                                                     \
	do {                                                                    \
		th_failed++;                                                        \
		fprintf(stderr, "FAIL %s:%d [%s]: ", __FILE__, __LINE__, th_current); \
		fprintf(stderr, __VA_ARGS__);                                       \
		fputc('\n', stderr);                                                \
	} while (0)

#define CHECK_STR(a, b)                                                     \
	do {                                                                    \
		const char *a_ = (a), *b_ = (b);                                    \
		if (a_ && b_ && strcmp(a_, b_) == 0) {                              \
			th_passed++;                                                    \
		} else {                                                            \
			th_failed++;                                                    \
			fprintf(stderr, "FAIL %s:%d [%s]: %s == \"%s\", expected \"%s\"\n", \
			        __FILE__, __LINE__, th_current, #a, a_ ? a_ : "(null)",   \
			        b_ ? b_ : "(null)");                                    \
		}                                                                   \
	} while (0)

#define RUN(fn)                                                             \
	do {                                                                    \
		th_current = #fn;                                                   \
		fn();                                                               \
	} while (0)

/* Deletes an SQLite database and the files beside it (-wal, -shm,
 * -journal), so a test starts from no file. */
static inline void th_remove_sqlite(const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	for (int i = 0; i < 4; i++) {
		char f[4200];
		snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
		unlink(f);
	}
}

static inline int th_summary(const char *suite)
{
	printf("%s: %d passed, %d failed\n", suite, th_passed, th_failed);
	return th_failed ? 1 : 0;
}

#endif
