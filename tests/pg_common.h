/* pg_common.h - helpers the PostgreSQL tests share: URIs, a plain libpq
 * connection for hand-written SQL, and the throwaway-server script. */
#ifndef KG_PG_COMMON_H
#define KG_PG_COMMON_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* base + "&extra" (or "?extra"). */
static inline void pgt_uri(char *out, size_t cap, const char *base, const char *extra)
{
	int n = snprintf(out, cap, "%s%s%s", base, extra && *extra ? (strchr(base, '?') ? "&" : "?") : "",
	                 extra ? extra : "");
	if (n < 0 || (size_t)n >= cap) {
		fprintf(stderr, "URI too long: %s + %s\n", base, extra ? extra : "");
		exit(2);
	}
}

/* A libpq connection with the URI's own settings (no kgstore keys). */
static inline PGconn *pgt_connect(const char *uri)
{
	PGconn *pg = PQconnectdb(uri);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect to %s: %s", uri, PQerrorMessage(pg));
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

/* Runs SQL; 1 if it succeeded (prints the error otherwise). */
static inline int pgt_exec(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "SQL failed: %s\n  %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

/* The first value of a query's first row, copied into out ("" if none). */
static inline int pgt_value(PGconn *pg, const char *sql, char *out, size_t cap)
{
	PGresult *r = PQexec(pg, sql);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	out[0] = '\0';
	if (!ok)
		fprintf(stderr, "SQL failed: %s\n  %s", sql, PQresultErrorMessage(r));
	else if (PQntuples(r) > 0)
		snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return ok;
}

/* Runs the server script; its last output line (the URI) into uri. */
static inline int pgt_script(const char *script, const char *cmd, const char *dir, const char *arg, char *uri,
                             size_t cap)
{
	char line[2048];
	snprintf(line, sizeof(line), "'%s' %s '%s' %s", script, cmd, dir, arg ? arg : "");
	FILE *f = popen(line, "r");
	if (!f)
		return 0;
	if (uri)
		uri[0] = '\0';
	char buf[2048];
	while (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		if (uri && *buf)
			snprintf(uri, cap, "%s", buf);
	}
	int status = pclose(f);
	return status == 0;
}

static inline double pgt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
