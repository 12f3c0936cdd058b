/*
 * generic_search.c - vector, text and property search over the required
 * backend operations, and the text scorer every backend ranks with (so an
 * FTS5 or SQL candidate query gives exactly the core's scores).
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgstore/backend.h"

double kg_cosine(const float *a, const float *b, size_t dim)
{
	/* Four independent lanes so the compiler can use vector registers
	 * (a single running sum is a dependency chain it may not reorder). */
	double d[4] = { 0 }, x[4] = { 0 }, y[4] = { 0 };
	size_t i = 0;
	for (; i + 4 <= dim; i += 4)
		for (int j = 0; j < 4; j++) {
			d[j] += (double)a[i + j] * b[i + j];
			x[j] += (double)a[i + j] * a[i + j];
			y[j] += (double)b[i + j] * b[i + j];
		}
	for (; i < dim; i++) {
		d[0] += (double)a[i] * b[i];
		x[0] += (double)a[i] * a[i];
		y[0] += (double)b[i] * b[i];
	}
	double dot = (d[0] + d[1]) + (d[2] + d[3]);
	double na = (x[0] + x[1]) + (x[2] + x[3]);
	double nb = (y[0] + y[1]) + (y[2] + y[3]);
	if (na == 0 || nb == 0)
		return 0.0;
	double s = dot / (sqrt(na) * sqrt(nb));
	return s > 1.0 ? 1.0 : s < -1.0 ? -1.0 : s;
}

/* ------------------------------------------------------------------ */
/* Best-k selection: a min-heap of the k best so far                    */
/* ------------------------------------------------------------------ */

typedef struct ranked {
	double score;
	size_t order; /* insertion order among the candidates: ties go to the earlier */
	void *item;
} ranked;

static int ranked_better(const ranked *a, const ranked *b)
{
	return a->score > b->score || (a->score == b->score && a->order < b->order);
}

static int ranked_cmp(const void *x, const void *y)
{
	const ranked *a = x, *b = y;
	return ranked_better(a, b) ? -1 : ranked_better(b, a) ? 1 : 0;
}

typedef struct topk {
	ranked *h;
	size_t n, k, cap;
} topk;

/* Offers x; returns the item that dropped out (x's own or the old worst),
 * or NULL when nothing did, so the caller can free it. *err on ENOMEM. */
static void *topk_offer(topk *t, ranked x, int *err)
{
	*err = 0;
	if (t->n < t->k) {
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 16;
			if (cap > t->k)
				cap = t->k;
			ranked *h = realloc(t->h, cap * sizeof(*h));
			if (!h) {
				*err = KG_ENOMEM;
				return x.item;
			}
			t->h = h;
			t->cap = cap;
		}
		size_t i = t->n++;
		while (i && ranked_better(&t->h[(i - 1) / 2], &x)) {
			t->h[i] = t->h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		t->h[i] = x;
		return NULL;
	}
	if (!ranked_better(&x, &t->h[0]))
		return x.item;
	void *dropped = t->h[0].item;
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, worst = i;
		const ranked *w = &x;
		if (l < t->n && ranked_better(w, &t->h[l])) {
			worst = l;
			w = &t->h[l];
		}
		if (r < t->n && ranked_better(w, &t->h[r]))
			worst = r;
		if (worst == i)
			break;
		t->h[i] = t->h[worst];
		i = worst;
	}
	t->h[i] = x;
	return dropped;
}

/* ------------------------------------------------------------------ */
/* Vector search                                                        */
/* ------------------------------------------------------------------ */

int kg_generic_vector_search(kg_backend *b, kg_call *c, const float *query, size_t dim, const char *entity_type,
                             size_t k, double threshold, kg_entity_list **out)
{
	kg_iter *it = NULL;
	topk best = { .k = k };
	kg_entity_list *l = NULL;
	int rc = b->iter_entities(b, c, entity_type, &it), err;
	if (rc < 0)
		return rc;
	const void *item;
	size_t order = 0;
	while ((rc = it->next(it, c, &item)) == 1) {
		const kg_entity *e = item;
		if (!e->embedding)
			continue;
		if (e->embedding_dim != dim) {
			rc = kg_call_error(c, KG_EINVAL,
			                   "query dimension %zu does not match the embedding dimension %zu of entity '%s'; "
			                   "search with a vector of the same model",
			                   dim, e->embedding_dim, e->id);
			goto cleanup;
		}
		double score = kg_cosine(query, e->embedding, dim);
		if (!(score >= threshold))
			continue;
		ranked x = { score, order++, NULL };
		if (best.n == best.k && !ranked_better(&x, &best.h[0]))
			continue; /* cannot enter: no copy needed */
		if (!(x.item = kg_entity_dup(e))) {
			rc = KG_ENOMEM;
			goto oom;
		}
		kg_entity_free(topk_offer(&best, x, &err));
		if (err)
			goto oom;
	}
	if (rc < 0)
		goto cleanup;
	if (best.n)
		qsort(best.h, best.n, sizeof(*best.h), ranked_cmp);
	if (!(l = kg_entity_list_new()))
		goto oom;
	for (size_t i = 0; i < best.n; i++) {
		kg_entity *e = best.h[i].item;
		best.h[i].item = NULL;
		if (kg_entity_list_push_scored(l, e, best.h[i].score) < 0)
			goto oom;
	}
	*out = l;
	l = NULL;
	rc = 0;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory in vector search");
cleanup:
	for (size_t i = 0; i < best.n; i++)
		kg_entity_free(best.h[i].item);
	free(best.h);
	kg_entity_list_free(l);
	it->free(it);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Text scorer                                                          */
/* ------------------------------------------------------------------ */

/* Tokens: runs of ASCII letters/digits or bytes >= 0x80 (so UTF-8 words
 * stay whole), ASCII folded to lower case. */
static int is_word_byte(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch >= 0x80;
}

typedef struct token_bag {
	char *buf;       /* lower-cased tokens, NUL-separated */
	size_t len, cap;
	char **tok;      /* sorted, then grouped */
	size_t n, tcap;
} token_bag;

static int bag_add_text(token_bag *bag, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p;) {
		if (!is_word_byte(*p)) {
			p++;
			continue;
		}
		const unsigned char *start = p;
		while (*p && is_word_byte(*p))
			p++;
		size_t n = (size_t)(p - start);
		if (bag->len + n + 1 > bag->cap) {
			size_t cap = bag->cap ? bag->cap * 2 : 256;
			while (cap < bag->len + n + 1)
				cap *= 2;
			char *buf = realloc(bag->buf, cap);
			if (!buf)
				return KG_ENOMEM;
			bag->buf = buf;
			bag->cap = cap;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = start[i];
			bag->buf[bag->len + i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
		}
		bag->buf[bag->len + n] = '\0';
		bag->len += n + 1;
		bag->n++;
	}
	return 0;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Builds the sorted token array (pointers into buf). */
static int bag_finish(token_bag *bag)
{
	if (!bag->n)
		return 0;
	if (!(bag->tok = malloc(bag->n * sizeof(char *))))
		return KG_ENOMEM;
	char *p = bag->buf;
	for (size_t i = 0; i < bag->n; i++) {
		bag->tok[i] = p;
		p += strlen(p) + 1;
	}
	qsort(bag->tok, bag->n, sizeof(char *), str_cmp);
	return 0;
}

static void bag_free(token_bag *bag)
{
	free(bag->buf);
	free(bag->tok);
}

static int add_json_strings(token_bag *bag, json_t *v)
{
	if (json_is_string(v))
		return bag_add_text(bag, json_string_value(v));
	if (json_is_object(v)) {
		const char *key;
		json_t *x;
		json_object_foreach(v, key, x)
		if (add_json_strings(bag, x) < 0) return KG_ENOMEM;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		if (add_json_strings(bag, x) < 0) return KG_ENOMEM;
	}
	return 0;
}

/* What the scorer keeps of a document: enough for every method, so the
 * document text itself is not kept. */
typedef struct doc_stats {
	size_t len, n_unique;
	double sumsq; /* sum of squared term counts (cosine) */
} doc_stats;

struct kg_text_scorer {
	kg_text_method method;
	char **terms;        /* unique query terms */
	double *qcount;      /* their counts in the query */
	size_t n_terms;
	token_bag query;
	doc_stats *docs;
	double *tf;          /* n_docs x n_terms: term counts (or, for levenshtein, best similarity) */
	size_t n_docs, cap_docs;
	double *idf;         /* BM25, computed at the first score */
	double avgdl;
	int has_corpus;      /* kg_text_scorer_set_corpus was called */
	double corpus_docs, corpus_tokens;
};

int kg_text_scorer_new(const char *query, kg_text_method method, kg_text_scorer **out)
{
	kg_text_scorer *ts = calloc(1, sizeof(*ts));
	int rc = ts ? 0 : KG_ENOMEM;
	if (rc < 0)
		goto fail;
	ts->method = method;
	if ((rc = bag_add_text(&ts->query, query)) < 0 || (rc = bag_finish(&ts->query)) < 0)
		goto fail;
	if (ts->query.n == 0) {
		rc = KG_EINVAL; /* nothing to search for */
		goto fail;
	}
	ts->terms = malloc(ts->query.n * sizeof(char *));
	ts->qcount = malloc(ts->query.n * sizeof(double));
	if (!ts->terms || !ts->qcount) {
		rc = KG_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < ts->query.n; i++) {
		if (ts->n_terms && strcmp(ts->terms[ts->n_terms - 1], ts->query.tok[i]) == 0) {
			ts->qcount[ts->n_terms - 1] += 1;
			continue;
		}
		ts->terms[ts->n_terms] = ts->query.tok[i];
		ts->qcount[ts->n_terms++] = 1;
	}
	*out = ts;
	return 0;
fail:
	kg_text_scorer_free(ts);
	*out = NULL;
	return rc;
}

void kg_text_scorer_free(kg_text_scorer *ts)
{
	if (!ts)
		return;
	bag_free(&ts->query);
	free(ts->terms);
	free(ts->qcount);
	free(ts->docs);
	free(ts->tf);
	free(ts->idf);
	free(ts);
}

/* Edit distance in bytes, two rows. */
static size_t levenshtein(const char *a, const char *b, size_t *row_buf)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *prev = row_buf, *cur = row_buf + lb + 1;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		size_t *t = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

int kg_text_scorer_add(kg_text_scorer *ts, const kg_entity *e, size_t *doc_index)
{
	token_bag bag = { 0 };
	json_t *props = NULL;
	size_t *rows = NULL;
	int rc = 0;
	if (ts->n_docs == ts->cap_docs) {
		size_t cap = ts->cap_docs ? ts->cap_docs * 2 : 64;
		doc_stats *d = realloc(ts->docs, cap * sizeof(*d));
		if (!d)
			return KG_ENOMEM;
		ts->docs = d;
		double *tf = realloc(ts->tf, cap * ts->n_terms * sizeof(*tf));
		if (!tf)
			return KG_ENOMEM;
		ts->tf = tf;
		ts->cap_docs = cap;
	}
	if ((rc = bag_add_text(&bag, e->id)) < 0 || (rc = bag_add_text(&bag, e->entity_type)) < 0)
		goto cleanup;
	if (e->properties && (props = json_loads(e->properties, 0, NULL)) != NULL &&
	    (rc = add_json_strings(&bag, props)) < 0)
		goto cleanup;
	if ((rc = bag_finish(&bag)) < 0)
		goto cleanup;
	doc_stats *d = &ts->docs[ts->n_docs];
	double *tf = &ts->tf[ts->n_docs * ts->n_terms];
	*d = (doc_stats){ bag.n, 0, 0 };
	for (size_t t = 0; t < ts->n_terms; t++)
		tf[t] = 0;
	size_t maxlen = 0;
	for (size_t i = 0; i < bag.n;) {
		size_t j = i + 1;
		while (j < bag.n && strcmp(bag.tok[j], bag.tok[i]) == 0)
			j++;
		double count = (double)(j - i);
		d->n_unique++;
		d->sumsq += count * count;
		size_t l = strlen(bag.tok[i]);
		if (l > maxlen)
			maxlen = l;
		if (ts->method != KG_TEXT_LEVENSHTEIN)
			for (size_t t = 0; t < ts->n_terms; t++)
				if (strcmp(ts->terms[t], bag.tok[i]) == 0)
					tf[t] = count;
		i = j;
	}
	if (ts->method == KG_TEXT_LEVENSHTEIN && bag.n) {
		size_t qmax = 0;
		for (size_t t = 0; t < ts->n_terms; t++)
			if (strlen(ts->terms[t]) > qmax)
				qmax = strlen(ts->terms[t]);
		if (!(rows = malloc(2 * ((maxlen > qmax ? maxlen : qmax) + 1) * sizeof(*rows)))) {
			rc = KG_ENOMEM;
			goto cleanup;
		}
		for (size_t t = 0; t < ts->n_terms; t++) {
			size_t lq = strlen(ts->terms[t]);
			for (size_t i = 0; i < bag.n; i++) {
				if (i && strcmp(bag.tok[i], bag.tok[i - 1]) == 0)
					continue;
				size_t ld = strlen(bag.tok[i]), longest = lq > ld ? lq : ld;
				double sim = 1.0 - (double)levenshtein(ts->terms[t], bag.tok[i], rows) / (double)longest;
				if (sim > tf[t])
					tf[t] = sim;
			}
		}
	}
	*doc_index = ts->n_docs++;
	free(ts->idf); /* a new document changes BM25's statistics */
	ts->idf = NULL;
cleanup:
	json_decref(props);
	bag_free(&bag);
	free(rows);
	return rc;
}

/* BM25 statistics over every document added. Returns 0 or KG_ENOMEM. */
static int bm25_prepare(kg_text_scorer *ts)
{
	if (ts->idf)
		return 0;
	if (!(ts->idf = malloc((ts->n_terms ? ts->n_terms : 1) * sizeof(double))))
		return KG_ENOMEM;
	double total = 0, n = (double)ts->n_docs;
	for (size_t d = 0; d < ts->n_docs; d++)
		total += (double)ts->docs[d].len;
	if (ts->has_corpus) { /* the added documents are candidates of a larger corpus */
		n = ts->corpus_docs;
		total = ts->corpus_tokens;
	}
	ts->avgdl = n > 0 ? total / n : 0;
	for (size_t t = 0; t < ts->n_terms; t++) {
		double df = 0;
		for (size_t d = 0; d < ts->n_docs; d++)
			df += ts->tf[d * ts->n_terms + t] > 0;
		ts->idf[t] = log(1.0 + (n - df + 0.5) / (df + 0.5));
	}
	return 0;
}

int kg_text_scorer_set_corpus(kg_text_scorer *ts, size_t n_docs, double total_tokens)
{
	if (!ts || (double)n_docs < (double)ts->n_docs || total_tokens < 0)
		return KG_EINVAL;
	ts->has_corpus = 1;
	ts->corpus_docs = (double)n_docs;
	ts->corpus_tokens = total_tokens;
	free(ts->idf); /* new statistics */
	ts->idf = NULL;
	return 0;
}

double kg_text_scorer_score(kg_text_scorer *ts, size_t doc_index)
{
	if (doc_index >= ts->n_docs)
		return 0.0;
	const doc_stats *d = &ts->docs[doc_index];
	const double *tf = &ts->tf[doc_index * ts->n_terms];
	switch (ts->method) {
	case KG_TEXT_BM25: {
		if (bm25_prepare(ts) < 0)
			return 0.0;
		const double k1 = 1.2, b = 0.75;
		double s = 0;
		for (size_t t = 0; t < ts->n_terms; t++) {
			if (tf[t] <= 0)
				continue;
			double norm = ts->avgdl > 0 ? (double)d->len / ts->avgdl : 1.0;
			s += ts->idf[t] * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * norm));
		}
		return s / (1 + s);
	}
	case KG_TEXT_JACCARD: {
		double inter = 0;
		for (size_t t = 0; t < ts->n_terms; t++)
			inter += tf[t] > 0;
		double uni = (double)ts->n_terms + (double)d->n_unique - inter;
		return uni > 0 ? inter / uni : 0.0;
	}
	case KG_TEXT_COSINE: {
		double dot = 0, qq = 0;
		for (size_t t = 0; t < ts->n_terms; t++) {
			dot += ts->qcount[t] * tf[t];
			qq += ts->qcount[t] * ts->qcount[t];
		}
		return dot > 0 && d->sumsq > 0 ? dot / (sqrt(qq) * sqrt(d->sumsq)) : 0.0;
	}
	case KG_TEXT_LEVENSHTEIN: {
		double sum = 0;
		for (size_t t = 0; t < ts->n_terms; t++)
			sum += tf[t];
		return ts->n_terms ? sum / (double)ts->n_terms : 0.0;
	}
	}
	return 0.0;
}

/* ------------------------------------------------------------------ */
/* Text search and property lookup                                      */
/* ------------------------------------------------------------------ */

int kg_generic_text_search(kg_backend *b, kg_call *c, const char *query, const char *entity_type, size_t k,
                           double threshold, kg_text_method method, kg_entity_list **out)
{
	kg_text_scorer *ts = NULL;
	kg_iter *it = NULL;
	char **ids = NULL;
	size_t n_ids = 0, cap_ids = 0;
	topk best = { .k = k };
	kg_entity_list *l = NULL;
	int rc = kg_text_scorer_new(query, method, &ts), err;
	if (rc == KG_EINVAL)
		return kg_call_error(c, rc, "text query '%s' has no words to search for (letters or digits)", query);
	if (rc < 0)
		goto oom;
	/* Pass 1: every candidate into the scorer (BM25 needs them all). */
	if ((rc = b->iter_entities(b, c, entity_type, &it)) < 0)
		goto cleanup;
	const void *item;
	while ((rc = it->next(it, c, &item)) == 1) {
		const kg_entity *e = item;
		size_t idx;
		if (n_ids == cap_ids) {
			size_t cap = cap_ids ? cap_ids * 2 : 64;
			char **p = realloc(ids, cap * sizeof(*p));
			if (!p)
				goto oom;
			ids = p;
			cap_ids = cap;
		}
		if (kg_text_scorer_add(ts, e, &idx) < 0 || !(ids[n_ids] = strdup(e->id)))
			goto oom;
		n_ids++;
	}
	if (rc < 0)
		goto cleanup;
	/* Pass 2: the k best, then their records. */
	for (size_t d = 0; d < n_ids; d++) {
		double score = kg_text_scorer_score(ts, d);
		if (score > 0.0 && score >= threshold) {
			topk_offer(&best, (ranked){ score, d, ids[d] }, &err);
			if (err)
				goto oom;
		}
	}
	if (best.n)
		qsort(best.h, best.n, sizeof(*best.h), ranked_cmp);
	if (!(l = kg_entity_list_new()))
		goto oom;
	for (size_t i = 0; i < best.n; i++) {
		kg_entity *e = NULL;
		rc = b->get_entity(b, c, best.h[i].item, &e);
		if (rc == KG_ENOTFOUND)
			continue; /* deleted meanwhile */
		if (rc < 0)
			goto cleanup;
		if (kg_entity_list_push_scored(l, e, best.h[i].score) < 0)
			goto oom;
	}
	*out = l;
	l = NULL;
	rc = 0;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory in text search");
cleanup:
	if (it)
		it->free(it);
	for (size_t i = 0; i < n_ids; i++)
		free(ids[i]);
	free(ids);
	free(best.h);
	kg_text_scorer_free(ts);
	kg_entity_list_free(l);
	return rc;
}

int kg_generic_lookup_by_property(kg_backend *b, kg_call *c, const char *name, const char *json_value,
                                  kg_entity_list **out)
{
	json_error_t jerr;
	json_t *want = json_loads(json_value, JSON_DECODE_ANY, &jerr);
	if (!want)
		return kg_call_error(c, KG_EINVAL, "lookup value %s is not valid JSON (%s); quote strings, e.g. \"\\\"Alice\\\"\"",
		                     json_value, jerr.text);
	kg_iter *it = NULL;
	kg_entity_list *l = kg_entity_list_new();
	int rc = l ? b->iter_entities(b, c, NULL, &it) : KG_ENOMEM;
	if (rc == KG_ENOMEM)
		goto oom;
	if (rc < 0)
		goto cleanup;
	const void *item;
	while ((rc = it->next(it, c, &item)) == 1) {
		const kg_entity *e = item;
		json_t *props = json_loads(e->properties, 0, NULL);
		int match = props && json_equal(json_object_get(props, name), want);
		json_decref(props);
		if (!match)
			continue;
		kg_entity *copy = kg_entity_dup(e);
		if (!copy || kg_entity_list_push(l, copy) < 0)
			goto oom;
	}
	if (rc < 0)
		goto cleanup;
	*out = l;
	l = NULL;
	rc = 0;
	goto cleanup;
oom:
	rc = kg_call_error(c, KG_ENOMEM, "out of memory in property lookup");
cleanup:
	if (it)
		it->free(it);
	json_decref(want);
	kg_entity_list_free(l);
	return rc;
}
