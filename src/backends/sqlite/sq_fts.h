/*
 * sq_fts.h - internal to the SQLite backend: the text of an entity as the
 * core's text scorer sees it, row fingerprints, and BM25 with corpus
 * statistics given from outside (fts.c). sqlite.c keeps the FTS5 index and
 * runs the searches; see docs/ARCHITECTURE.md, "SQLite files".
 */
#ifndef KG_SQ_FTS_H
#define KG_SQ_FTS_H

#include <stddef.h>
#include <stdint.h>

/* An entity's searchable text: its tokens exactly as generic_search.c cuts
 * them (runs of ASCII letters/digits or bytes >= 0x80, ASCII folded to lower
 * case) from the id, the type and every string value of the properties,
 * written lower-cased and separated by single spaces. FTS5's `ascii`
 * tokenizer cuts this text into the same tokens. */
typedef struct kg_fts_text {
	char *buf;     /* NUL-terminated; owned, freed by kg_fts_text_free */
	size_t len, cap;
	size_t tokens; /* the document length BM25 uses */
} kg_fts_text;

/* Rebuilds t from an entity's fields (props may be NULL or not JSON: then
 * only id and type count, as in the core). 0 or KG_ENOMEM. */
int kg_fts_text_build(kg_fts_text *t, const char *id, const char *type, const char *props);
void kg_fts_text_free(kg_fts_text *t);

/* A 64-bit fingerprint of one entities row (rowid and the searched
 * columns); the index keeps the wrapping sum over the rows it holds, so any
 * change behind kgstore's back shows as a different sum. */
uint64_t kg_fts_row_hash(int64_t rowid, const char *id, const char *tenant, const char *type, const char *props);

/* A query: its unique tokens sorted by strcmp (the core scorer's term
 * order) and an FTS5 MATCH expression selecting rows with any of them. */
typedef struct kg_fts_query {
	char **terms;  /* point into buf */
	size_t n;
	char *buf;
	char *match;   /* "t1" OR "t2" ... */
} kg_fts_query;

/* 0, KG_EINVAL when the query has no token, or KG_ENOMEM. Free with
 * kg_fts_query_free (also after a failure). */
int kg_fts_query_parse(kg_fts_query *q, const char *query);
void kg_fts_query_free(kg_fts_query *q);


#endif
