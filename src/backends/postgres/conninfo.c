/*
 * conninfo.c - from kg_options to libpq connection parameters.
 *
 * kgstore's own settings (tenancy, schema, statement_timeout, read_host,
 * read_port) may ride in a postgresql:// URI or a key=value conninfo; they
 * are taken out here, because libpq refuses keys it does not know. The
 * rest goes to libpq unchanged, after safe defaults (connect_timeout,
 * keepalives) that the caller's own settings override.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

static const char *const OWN_KEYS[] = { "tenancy", "schema", "statement_timeout", "read_host", "read_port" };

static int is_own_key(const char *k, size_t len)
{
	for (size_t i = 0; i < sizeof(OWN_KEYS) / sizeof(OWN_KEYS[0]); i++)
		if (strlen(OWN_KEYS[i]) == len && !strncmp(OWN_KEYS[i], k, len))
			return 1;
	return 0;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+len) into a new string. */
static char *uri_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *d = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*d++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*d++ = s[i];
		}
	}
	*d = '\0';
	return out;
}

/* Records one of kgstore's settings. */
static int take_own(pg_conn_spec *s, const char *key, size_t klen, const char *val, char *err, size_t errcap)
{
	char *end = NULL;
#define KEY(k) (klen == strlen(k) && !strncmp(key, k, klen))
	if (KEY("tenancy")) {
		if (!strcmp(val, "shared"))
			s->tenancy = PG_TENANCY_SHARED;
		else if (!strcmp(val, "rls"))
			s->tenancy = PG_TENANCY_RLS;
		else if (!strcmp(val, "schema"))
			s->tenancy = PG_TENANCY_SCHEMA;
		else {
			snprintf(err, errcap, "tenancy=%s is not shared, rls or schema", val);
			return KG_EINVAL;
		}
		return 0;
	}
	if (KEY("schema")) {
		free(s->schema);
		if (!(s->schema = strdup(val)))
			return KG_ENOMEM;
		if (!*val || strlen(val) > 63) {
			snprintf(err, errcap, "schema='%s' must be 1 to 63 characters (a PostgreSQL schema name)", val);
			return KG_EINVAL;
		}
		return 0;
	}
	if (KEY("statement_timeout")) {
		s->statement_timeout = strtod(val, &end);
		if (end == val || *end || s->statement_timeout < 0) {
			snprintf(err, errcap, "statement_timeout=%s is not a number of seconds >= 0", val);
			return KG_EINVAL;
		}
		return 0;
	}
	char **slot = KEY("read_host") ? &s->read_host : &s->read_port;
#undef KEY
	free(*slot);
	return (*slot = strdup(val)) ? 0 : KG_ENOMEM;
}

/* A postgresql:// URI without kgstore's query parameters. */
static int strip_uri(pg_conn_spec *s, const char *uri, char **out, char *err, size_t errcap)
{
	const char *q = strchr(uri, '?');
	size_t base = q ? (size_t)(q - uri) : strlen(uri);
	char *res = malloc(strlen(uri) + 1);
	if (!res)
		return KG_ENOMEM;
	memcpy(res, uri, base);
	res[base] = '\0';
	int kept = 0, rc = 0;
	for (const char *p = q ? q + 1 : NULL; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		if (is_own_key(p, klen)) {
			char *val = uri_decode(eq ? eq + 1 : p + len, eq ? len - klen - 1 : 0);
			if (!val) {
				rc = KG_ENOMEM;
				break;
			}
			rc = take_own(s, p, klen, val, err, errcap);
			free(val);
			if (rc < 0)
				break;
		} else if (len) {
			strcat(res, kept++ ? "&" : "?");
			strncat(res, p, len);
		}
		p = amp ? amp + 1 : p + len;
	}
	if (rc < 0) {
		free(res);
		return rc;
	}
	*out = res;
	return 0;
}

/* A key=value conninfo without kgstore's keys; values may be 'quoted'. */
static int strip_kv(pg_conn_spec *s, const char *ci, char **out, char *err, size_t errcap)
{
	size_t cap = strlen(ci) + 1;
	char *res = calloc(1, cap), *val = malloc(cap);
	int rc = 0;
	if (!res || !val) {
		rc = KG_ENOMEM;
		goto cleanup;
	}
	const char *p = ci;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *key = p;
		while (*p && *p != '=' && !isspace((unsigned char)*p))
			p++;
		size_t klen = (size_t)(p - key);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {
			snprintf(err, errcap, "conninfo: '%.*s' has no '=' (write key=value pairs)", (int)klen, key);
			rc = KG_EINVAL;
			goto cleanup;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		size_t vn = 0;
		if (*p == '\'') {
			for (p++; *p && *p != '\''; p++) {
				if (*p == '\\' && p[1])
					p++;
				val[vn++] = *p;
			}
			if (*p != '\'') {
				snprintf(err, errcap, "conninfo: the value of '%.*s' has no closing quote", (int)klen, key);
				rc = KG_EINVAL;
				goto cleanup;
			}
			p++;
		} else {
			while (*p && !isspace((unsigned char)*p)) {
				if (*p == '\\' && p[1])
					p++;
				val[vn++] = *p++;
			}
		}
		val[vn] = '\0';
		if (is_own_key(key, klen)) {
			if ((rc = take_own(s, key, klen, val, err, errcap)) < 0)
				goto cleanup;
		} else {
			if (*res)
				strcat(res, " ");
			strncat(res, key, (size_t)(p - key));
		}
	}
	*out = res;
	res = NULL;
cleanup:
	free(res);
	free(val);
	return rc;
}

static int spec_add(pg_conn_spec *s, const char *k, const char *v)
{
	if (!v)
		return 0;
	if (s->n + 1 >= PG_SPEC_MAX)
		return KG_EINVAL;
	s->kw[s->n] = strdup(k);
	s->val[s->n] = strdup(v);
	if (!s->kw[s->n] || !s->val[s->n]) {
		free(s->kw[s->n]);
		free(s->val[s->n]);
		s->kw[s->n] = s->val[s->n] = NULL;
		return KG_ENOMEM;
	}
	s->n++;
	s->kw[s->n] = s->val[s->n] = NULL;
	return 0;
}

/* Defaults a caller's settings override: never hang on a dead server. */
static int add_defaults(pg_conn_spec *s)
{
	static const char *const defaults[][2] = {
		{ "connect_timeout", "10" },     { "keepalives", "1" },           { "keepalives_idle", "30" },
		{ "keepalives_interval", "10" }, { "keepalives_count", "3" },     { "tcp_user_timeout", "60000" },
		{ "fallback_application_name", "kgstore" },
	};
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		int rc = spec_add(s, defaults[i][0], defaults[i][1]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int is_uri(const char *ci)
{
	return !strncmp(ci, "postgresql://", 13) || !strncmp(ci, "postgres://", 11);
}

/* Adds a conninfo (URI or key=value) as an expanded dbname, stripped. */
static int add_conninfo(pg_conn_spec *s, const char *ci, char *err, size_t errcap)
{
	char *stripped = NULL;
	int rc = is_uri(ci) ? strip_uri(s, ci, &stripped, err, errcap) : strip_kv(s, ci, &stripped, err, errcap);
	if (rc < 0)
		return rc;
	/* An empty key=value conninfo is libpq's defaults (PGHOST...). */
	if (*stripped) {
		if (!is_uri(stripped) && !strchr(stripped, '=')) {
			snprintf(err, errcap, "conninfo '%s' is neither a postgresql:// URI nor key=value pairs", stripped);
			free(stripped);
			return KG_EINVAL;
		}
		rc = spec_add(s, "dbname", stripped);
	}
	free(stripped);
	return rc;
}

int pg_spec_from_options(const kg_options *o, pg_conn_spec *s, char *err, size_t errcap)
{
	char port[16];
	int rc;
	memset(s, 0, sizeof(*s));
	s->statement_timeout = 300;
	s->min_size = o->min_pool_size > 0 ? o->min_pool_size : 5;
	s->max_size = o->max_pool_size > 0 ? o->max_pool_size : 20;
	s->pool_timeout = o->pool_timeout > 0 ? o->pool_timeout : 30;
	if (o->min_pool_size < 0 || o->max_pool_size < 0 || o->pool_timeout < 0) {
		snprintf(err, errcap, "min_pool_size, max_pool_size and pool_timeout must not be negative");
		return KG_EINVAL;
	}
	if (s->min_size > s->max_size) {
		snprintf(err, errcap, "min_pool_size %d is larger than max_pool_size %d; raise max_pool_size or lower min_pool_size",
		         s->min_size, s->max_size);
		return KG_EINVAL;
	}
	if ((rc = add_defaults(s)) < 0)
		goto fail;
	if (o->ssl || o->sslmode)
		if ((rc = spec_add(s, "sslmode", o->sslmode ? o->sslmode : "require")) < 0)
			goto fail;
	if (o->conninfo) {
		if ((rc = add_conninfo(s, o->conninfo, err, errcap)) < 0)
			goto fail;
	} else {
		snprintf(port, sizeof(port), "%d", o->port);
		if ((rc = spec_add(s, "host", o->host && *o->host ? o->host : NULL)) < 0 ||
		    (rc = spec_add(s, "port", o->port > 0 ? port : NULL)) < 0 ||
		    (rc = spec_add(s, "user", o->user && *o->user ? o->user : NULL)) < 0 ||
		    (rc = spec_add(s, "password", o->password && *o->password ? o->password : NULL)) < 0 ||
		    (rc = spec_add(s, "dbname", o->database && *o->database ? o->database : NULL)) < 0)
			goto fail;
	}
	return 0;
fail:
	if (rc == KG_EINVAL && !*err)
		snprintf(err, errcap, "too many PostgreSQL connection settings");
	if (rc == KG_ENOMEM && !*err)
		snprintf(err, errcap, "out of memory reading the PostgreSQL settings");
	pg_spec_free(s);
	return rc;
}

int pg_spec_for_replica(const pg_conn_spec *primary, const kg_options *o, pg_conn_spec *r, char *err, size_t errcap)
{
	int rc = 0;
	memset(r, 0, sizeof(*r));
	*r = (pg_conn_spec){ .min_size = 1, .max_size = primary->max_size, .pool_timeout = primary->pool_timeout,
	                     .statement_timeout = primary->statement_timeout };
	if (o->read_conninfo) {
		pg_conn_spec scratch = { 0 };
		if ((rc = add_defaults(r)) < 0 || (rc = add_conninfo(&scratch, o->read_conninfo, err, errcap)) < 0)
			goto fail;
		for (int i = 0; i < scratch.n && rc == 0; i++)
			rc = spec_add(r, scratch.kw[i], scratch.val[i]);
		pg_spec_free(&scratch);
		if (rc < 0)
			goto fail;
		return 0;
	}
	for (int i = 0; i < primary->n; i++)
		if ((rc = spec_add(r, primary->kw[i], primary->val[i])) < 0)
			goto fail;
	/* After the expanded dbname, so they override the primary's. */
	if ((rc = spec_add(r, "host", primary->read_host)) < 0 || (rc = spec_add(r, "port", primary->read_port)) < 0)
		goto fail;
	return 0;
fail:
	pg_spec_free(r);
	return rc;
}

void pg_spec_free(pg_conn_spec *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->kw[i]);
		free(s->val[i]);
	}
	free(s->schema);
	free(s->read_host);
	free(s->read_port);
	memset(s, 0, sizeof(*s));
}

/* user@host:port/db from parameters; the password is never read. */
char *pg_describe(const char *const *kw, const char *const *val)
{
	const char *host = NULL, *port = NULL, *user = NULL, *db = NULL;
	PQconninfoOption *parsed[PG_SPEC_MAX] = { 0 };
	int np = 0;
	for (int i = 0; kw[i]; i++) {
		const char *k = kw[i], *v = val[i];
		if (!strcmp(k, "dbname") && (is_uri(v) || strchr(v, '='))) {
			PQconninfoOption *opts = PQconninfoParse(v, NULL);
			if (!opts)
				continue;
			parsed[np++] = opts;
			for (PQconninfoOption *op = opts; op->keyword; op++) {
				if (!op->val)
					continue;
				if (!strcmp(op->keyword, "host"))
					host = op->val;
				else if (!strcmp(op->keyword, "port"))
					port = op->val;
				else if (!strcmp(op->keyword, "user"))
					user = op->val;
				else if (!strcmp(op->keyword, "dbname"))
					db = op->val;
			}
			continue;
		}
		if (!strcmp(k, "host"))
			host = v;
		else if (!strcmp(k, "port"))
			port = v;
		else if (!strcmp(k, "user"))
			user = v;
		else if (!strcmp(k, "dbname"))
			db = v;
	}
	size_t need = 64 + (host ? strlen(host) : 16) + (port ? strlen(port) : 8) + (user ? strlen(user) : 16) +
	              (db ? strlen(db) : 16);
	char *out = malloc(need);
	if (out)
		snprintf(out, need, "%s@%s:%s/%s", user ? user : "(default user)", host ? host : "(default host)",
		         port ? port : "5432", db ? db : "(default database)");
	for (int i = 0; i < np; i++)
		PQconninfoFree(parsed[i]);
	return out;
}

char **pg_secrets(const char *const *kw, const char *const *val)
{
	char **out = calloc(PG_SPEC_MAX + 1, sizeof(char *));
	size_t n = 0;
	if (!out)
		return NULL;
	for (int i = 0; kw[i] && n < PG_SPEC_MAX; i++) {
		const char *pw = NULL;
		PQconninfoOption *opts = NULL;
		if (!strcmp(kw[i], "password")) {
			pw = val[i];
		} else if (!strcmp(kw[i], "dbname") && (is_uri(val[i]) || strchr(val[i], '='))) {
			opts = PQconninfoParse(val[i], NULL);
			for (PQconninfoOption *op = opts; op && op->keyword; op++)
				if (!strcmp(op->keyword, "password") && op->val)
					pw = op->val;
		}
		if (pw && *pw && !(out[n++] = strdup(pw))) {
			PQconninfoFree(opts);
			for (size_t j = 0; j < n; j++)
				free(out[j]);
			free(out);
			return NULL;
		}
		PQconninfoFree(opts);
	}
	return out;
}
