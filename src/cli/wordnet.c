/*
 * wordnet.c - loads WordNet 3.0's database files (Debian's wordnet-base:
 * /usr/share/wordnet/data.{noun,verb,adj,adv} and index.*) into a store.
 *
 * Each synset becomes an entity named as NLTK names it, LEMMA.POS.NN (the
 * synset's first word, its part of speech, and the sense number of that
 * word in the index file: "dog.n.01"), of type Noun, Verb, Adjective or
 * Adverb, with properties {"words": [...], "gloss": "...", "lexname":
 * "noun.animal", "offset": 2084071, "pos": "n"}. Each pointer becomes a
 * typed relation (HYPERNYM, PART_HOLONYM, ANTONYM...); a lexical pointer
 * (between two words rather than two synsets) keeps its words in the
 * relation's properties. File format: wndb(5WN).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct wn_synset {
	long offset;
	char pos;        /* n v a s r: the synset's own ss_type */
	const char *line;/* its line in the data file buffer */
	char lemma[96];  /* first word, lower case, adjective marker removed */
	int sense;       /* sense number of lemma, from the index; 0 = not yet */
	char *id;
} wn_synset;

typedef struct wn_file {
	const char *suffix; /* noun, verb, adj, adv */
	char pos;           /* pointer / index pos letter */
	const char *type;   /* entity type */
	char *buf;
	size_t len;
	wn_synset *syn;     /* sorted by offset (file order) */
	size_t n;
} wn_file;

static const char *const LEXNAMES[] = {
	"adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
	"noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
	"noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
	"noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
	"noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
	"verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
	"verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
	"verb.weather", "adj.ppl",
};

/* Pointer symbols (wninput(5WN)) and the relation types they become. */
static const struct {
	const char *sym;
	const char *type;
} POINTERS[] = {
	{ "!", "ANTONYM" },           { "@", "HYPERNYM" },           { "@i", "INSTANCE_HYPERNYM" },
	{ "~", "HYPONYM" },           { "~i", "INSTANCE_HYPONYM" },  { "#m", "MEMBER_HOLONYM" },
	{ "#s", "SUBSTANCE_HOLONYM" },{ "#p", "PART_HOLONYM" },      { "%m", "MEMBER_MERONYM" },
	{ "%s", "SUBSTANCE_MERONYM" },{ "%p", "PART_MERONYM" },      { "=", "ATTRIBUTE" },
	{ "+", "DERIVATION" },        { ";c", "DOMAIN_TOPIC" },      { "-c", "DOMAIN_TOPIC_MEMBER" },
	{ ";r", "DOMAIN_REGION" },    { "-r", "DOMAIN_REGION_MEMBER" }, { ";u", "DOMAIN_USAGE" },
	{ "-u", "DOMAIN_USAGE_MEMBER" }, { "*", "ENTAILMENT" },      { ">", "CAUSE" },
	{ "^", "ALSO_SEE" },          { "$", "VERB_GROUP" },         { "&", "SIMILAR_TO" },
	{ "<", "PARTICIPLE" },        { "\\", "PERTAINYM" },
};

static const char *pointer_type(const char *sym, size_t len)
{
	for (size_t i = 0; i < sizeof POINTERS / sizeof POINTERS[0]; i++)
		if (strlen(POINTERS[i].sym) == len && !memcmp(POINTERS[i].sym, sym, len))
			return POINTERS[i].type;
	return NULL;
}

static int seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return KG_ECORRUPT;
}

static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s (install Debian's wordnet-base package)", path, strerror(errno));
		return KG_EIO;
	}
	size_t cap = 1 << 20, n = 0;
	char *b = malloc(cap + 1);
	size_t got;
	while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			char *nb = realloc(b, (cap *= 2) + 1);
			if (!nb) {
				free(b);
				b = NULL;
			}
			b = nb;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (!b || bad) {
		free(b);
		snprintf(err, errlen, "cannot read %s", path);
		return b ? KG_EIO : KG_ENOMEM;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return KG_OK;
}

/* Next space-separated token of *p (within its line); returns its length. */
static size_t token(const char **p, const char **tok)
{
	const char *s = *p;
	while (*s == ' ')
		s++;
	const char *e = s;
	while (*e && *e != ' ' && *e != '\n')
		e++;
	*tok = s;
	*p = e;
	return (size_t)(e - s);
}

static wn_synset *find_synset(wn_file *f, long offset)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (f->syn[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->n && f->syn[lo].offset == offset ? &f->syn[lo] : NULL;
}

/* Copies a word into out in lower case without an adjective marker like
 * "(a)" or "(ip)". */
static void lemma_of(const char *w, size_t len, char *out, size_t cap)
{
	const char *paren = memchr(w, '(', len);
	if (paren)
		len = (size_t)(paren - w);
	size_t i = 0;
	for (; i < len && i + 1 < cap; i++)
		out[i] = (char)tolower((unsigned char)w[i]);
	out[i] = '\0';
}

static int parse_data(wn_file *f, char *err, size_t errlen)
{
	size_t cap = 0;
	for (const char *p = f->buf; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		if (*p == ' ' || *p == '\n')
			continue; /* the licence header */
		if (f->n == cap) {
			wn_synset *ns = realloc(f->syn, (cap = cap ? cap * 2 : 16384) * sizeof *ns);
			if (!ns)
				return KG_ENOMEM;
			f->syn = ns;
		}
		wn_synset *s = &f->syn[f->n];
		memset(s, 0, sizeof *s);
		const char *q = p, *t;
		char *end;
		s->offset = strtol(p, &end, 10);
		if (end == p || *end != ' ' || (f->n && s->offset <= f->syn[f->n - 1].offset))
			return seterr(err, errlen, "data.%s: a line at byte %ld does not start with a synset offset",
			              f->suffix, (long)(p - f->buf));
		q = end;
		token(&q, &t);                 /* lex_filenum */
		if (token(&q, &t) != 1)        /* ss_type */
			return seterr(err, errlen, "data.%s: synset %08ld has no type", f->suffix, s->offset);
		s->pos = *t;
		token(&q, &t);                 /* w_cnt */
		size_t wl = token(&q, &t);     /* first word */
		lemma_of(t, wl, s->lemma, sizeof s->lemma);
		s->line = p;
		f->n++;
	}
	return KG_OK;
}

/* Sense numbers: the position of each synset in its first word's index
 * line ("dog n 7 5 @ ~ #m #p %p 7 1 02084071 ..." lists dog's senses). */
static int parse_index(wn_file *f, const char *dir, char *err, size_t errlen)
{
	char path[4096], *buf;
	size_t len;
	snprintf(path, sizeof path, "%s/index.%s", dir, f->suffix);
	int rc = read_file(path, &buf, &len, err, errlen);
	if (rc != KG_OK)
		return rc;
	for (const char *p = buf; *p;) {
		const char *nl = strchr(p, '\n');
		if (*p != ' ') {
			const char *q = p, *t;
			char lemma[96];
			size_t l = token(&q, &t);
			lemma_of(t, l, lemma, sizeof lemma);
			token(&q, &t);                           /* pos */
			long n_syn = strtol((token(&q, &t), t), NULL, 10);
			long n_ptr = strtol((token(&q, &t), t), NULL, 10);
			for (long i = 0; i < n_ptr; i++)
				token(&q, &t);
			token(&q, &t);                           /* sense_cnt */
			token(&q, &t);                           /* tagsense_cnt */
			for (long i = 0; i < n_syn; i++) {
				if (!token(&q, &t))
					break;
				wn_synset *s = find_synset(f, strtol(t, NULL, 10));
				if (s && !s->sense && !strcmp(s->lemma, lemma))
					s->sense = (int)i + 1;
			}
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	free(buf);
	return KG_OK;
}

/* A growable string for JSON text. */
typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* A JSON string; WordNet's words use '_' for spaces, kept as they are. */
static void sb_json(sbuf *b, const char *s, size_t n)
{
	sb_putn(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', c };
			sb_putn(b, esc, 2);
		} else if ((unsigned char)c < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)c);
			sb_puts(b, esc);
		} else {
			sb_putn(b, &c, 1);
		}
	}
	sb_putn(b, "\"", 1);
}

static char *sb_take(sbuf *b)
{
	char *p = b->oom ? NULL : b->p;
	if (b->oom)
		free(b->p);
	memset(b, 0, sizeof *b);
	return p;
}

/* Word number k (1-based) of a synset line, for lexical pointers. */
static size_t word_of(const char *line, int k, const char **w)
{
	const char *q = line, *t;
	for (int i = 0; i < 3; i++)
		token(&q, &t);
	long wcnt = strtol((token(&q, &t), t), NULL, 16);
	size_t len = 0;
	for (long i = 1; i <= wcnt; i++) {
		len = token(&q, &t);
		if (i == k) {
			*w = t;
			const char *paren = memchr(t, '(', len);
			return paren ? (size_t)(paren - t) : len;
		}
		token(&q, &t); /* lex_id */
	}
	*w = "";
	return 0;
}

typedef struct wn_loader {
	wn_file files[4];
	kg_entity *ents;
	size_t n_ents;
	kg_relation *rels;
	size_t n_rels, cap_rels;
} wn_loader;

static wn_file *file_of_pos(wn_loader *L, char pos)
{
	switch (pos) {
	case 'n': return &L->files[0];
	case 'v': return &L->files[1];
	case 'a':
	case 's': return &L->files[2];
	case 'r': return &L->files[3];
	default: return NULL;
	}
}

static int build_entity(wn_loader *L, wn_file *f, wn_synset *s, kg_entity *e, char *err, size_t errlen)
{
	const char *q = s->line, *t;
	token(&q, &t);
	int lexfile = atoi((token(&q, &t), t));
	token(&q, &t);
	long wcnt = strtol((token(&q, &t), t), NULL, 16);
	sbuf b = { 0 };
	sb_puts(&b, "{\"words\": [");
	for (long i = 0; i < wcnt; i++) {
		size_t wl = token(&q, &t);
		const char *paren = memchr(t, '(', wl);
		if (i)
			sb_puts(&b, ", ");
		sb_json(&b, t, paren ? (size_t)(paren - t) : wl);
		token(&q, &t);
	}
	sb_puts(&b, "], \"gloss\": ");
	const char *bar = strchr(q, '|'), *nl = strchr(q, '\n');
	if (bar && (!nl || bar < nl)) {
		const char *g = bar + 1, *ge = nl ? nl : g + strlen(g);
		while (*g == ' ')
			g++;
		while (ge > g && ge[-1] == ' ')
			ge--;
		sb_json(&b, g, (size_t)(ge - g));
	} else {
		sb_puts(&b, "\"\"");
	}
	char tail[160];
	snprintf(tail, sizeof tail, ", \"lexname\": \"%s\", \"offset\": %ld, \"pos\": \"%c\"}",
	         lexfile >= 0 && lexfile < (int)(sizeof LEXNAMES / sizeof LEXNAMES[0]) ? LEXNAMES[lexfile] : "",
	         s->offset, s->pos);
	sb_puts(&b, tail);
	char *props = sb_take(&b);
	/* A synset whose first word has no index entry keeps its offset as the
	 * sense, so its id is still unique. */
	char id[160];
	if (s->sense)
		snprintf(id, sizeof id, "%s.%c.%02d", s->lemma, s->pos, s->sense);
	else
		snprintf(id, sizeof id, "%s.%c.%08ld", s->lemma, s->pos, s->offset);
	s->id = strdup(id);
	if (!props || !s->id) {
		free(props);
		snprintf(err, errlen, "out of memory");
		return KG_ENOMEM;
	}
	memset(e, 0, sizeof *e);
	e->id = s->id;
	e->entity_type = f->type;
	e->properties = props;
	(void)L;
	return KG_OK;
}

/* first: where this synset's relations start, to drop a pointer that the
 * data file lists twice (it happens: sternness.n.02's DERIVATION). */
static int add_relation(wn_loader *L, size_t first, wn_synset *src, const char *type, wn_synset *dst, int sw,
                        int dw)
{
	if (L->n_rels == L->cap_rels) {
		size_t ncap = L->cap_rels ? L->cap_rels * 2 : 65536;
		kg_relation *nr = realloc(L->rels, ncap * sizeof *nr);
		if (!nr)
			return KG_ENOMEM;
		L->rels = nr;
		L->cap_rels = ncap;
	}
	char id[512];
	char *props;
	if (sw || dw) {
		const char *a, *b;
		size_t al = word_of(src->line, sw, &a), bl = word_of(dst->line, dw, &b);
		snprintf(id, sizeof id, "%s|%s|%s|%d.%d", src->id, type, dst->id, sw, dw);
		sbuf sb = { 0 };
		sb_puts(&sb, "{\"source_word\": ");
		sb_json(&sb, a, al);
		sb_puts(&sb, ", \"target_word\": ");
		sb_json(&sb, b, bl);
		sb_puts(&sb, "}");
		props = sb_take(&sb);
	} else {
		snprintf(id, sizeof id, "%s|%s|%s", src->id, type, dst->id);
		props = strdup("{}");
	}
	for (size_t i = first; i < L->n_rels; i++)
		if (!strcmp(L->rels[i].id, id)) {
			free(props);
			return KG_OK;
		}
	char *rid = strdup(id);
	if (!rid || !props) {
		free(rid);
		free(props);
		return KG_ENOMEM;
	}
	kg_relation r = KG_RELATION_INIT;
	r.id = rid;
	r.relation_type = type;
	r.source_id = src->id;
	r.target_id = dst->id;
	r.properties = props;
	L->rels[L->n_rels++] = r;
	return KG_OK;
}

static int build_relations(wn_loader *L, wn_synset *s, char *err, size_t errlen)
{
	const char *q = s->line, *t;
	for (int i = 0; i < 3; i++)
		token(&q, &t);
	long wcnt = strtol((token(&q, &t), t), NULL, 16);
	for (long i = 0; i < 2 * wcnt; i++)
		token(&q, &t);
	long pcnt = strtol((token(&q, &t), t), NULL, 10);
	size_t first = L->n_rels;
	for (long i = 0; i < pcnt; i++) {
		const char *sym, *off, *pos, *st;
		size_t sl = token(&q, &sym);
		token(&q, &off);
		token(&q, &pos);
		token(&q, &st);
		const char *type = pointer_type(sym, sl);
		wn_file *tf = file_of_pos(L, *pos);
		wn_synset *dst = tf ? find_synset(tf, strtol(off, NULL, 10)) : NULL;
		if (!type || !dst)
			return seterr(err, errlen, "synset %s: pointer %.*s to %.8s %c cannot be resolved", s->id,
			              (int)sl, sym, off, *pos);
		unsigned long srcdst = strtoul(st, NULL, 16);
		int rc = add_relation(L, first, s, type, dst, (int)(srcdst >> 8), (int)(srcdst & 0xff));
		if (rc != KG_OK)
			return rc;
	}
	return KG_OK;
}

static void loader_free(wn_loader *L)
{
	for (size_t i = 0; i < L->n_ents; i++)
		free((char *)L->ents[i].properties);
	for (size_t i = 0; i < L->n_rels; i++) {
		free((char *)L->rels[i].id);
		free((char *)L->rels[i].properties);
	}
	for (int i = 0; i < 4; i++) {
		for (size_t j = 0; j < L->files[i].n; j++)
			free(L->files[i].syn[j].id);
		free(L->files[i].syn);
		free(L->files[i].buf);
	}
	free(L->ents);
	free(L->rels);
}

/* Batches go through the bulk calls; the whole load is one transaction
 * where the backend has them, so a failed load leaves nothing behind. */
#define WN_BATCH 20000

int wn_load(kg_store *s, const char *dir, cli_progress *p, wn_load_stats *st, char *err, size_t errlen)
{
	wn_loader L = { .files = { { "noun", 'n', "Noun", NULL, 0, NULL, 0 },
		                   { "verb", 'v', "Verb", NULL, 0, NULL, 0 },
		                   { "adj", 'a', "Adjective", NULL, 0, NULL, 0 },
		                   { "adv", 'r', "Adverb", NULL, 0, NULL, 0 } } };
	memset(st, 0, sizeof *st);
	int64_t t0 = kg_now_us();
	int rc = KG_OK;
	size_t total = 0;
	for (int i = 0; rc == KG_OK && i < 4; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/data.%s", dir, L.files[i].suffix);
		rc = read_file(path, &L.files[i].buf, &L.files[i].len, err, errlen);
		if (rc == KG_OK)
			rc = parse_data(&L.files[i], err, errlen);
		if (rc == KG_OK)
			rc = parse_index(&L.files[i], dir, err, errlen);
		total += L.files[i].n;
	}
	if (rc == KG_OK && total == 0)
		rc = seterr(err, errlen, "no synsets in %s/data.*", dir);
	if (rc == KG_OK && !(L.ents = calloc(total, sizeof *L.ents)))
		rc = KG_ENOMEM;
	for (int i = 0; rc == KG_OK && i < 4; i++)
		for (size_t j = 0; rc == KG_OK && j < L.files[i].n; j++) {
			rc = build_entity(&L, &L.files[i], &L.files[i].syn[j], &L.ents[L.n_ents], err, errlen);
			if (rc == KG_OK)
				L.n_ents++;
		}
	for (int i = 0; rc == KG_OK && i < 4; i++)
		for (size_t j = 0; rc == KG_OK && j < L.files[i].n; j++)
			rc = build_relations(&L, &L.files[i].syn[j], err, errlen);
	int64_t t1 = kg_now_us();
	st->parse_s = (double)(t1 - t0) / 1e6;
	if (rc == KG_ENOMEM && !*err)
		snprintf(err, errlen, "out of memory while reading WordNet");

	kg_store *txn = NULL;
	if (rc == KG_OK) {
		int brc = kg_begin(s, &txn);
		if (brc == KG_EUNSUPPORTED)
			txn = NULL;
		else if (brc != KG_OK)
			rc = brc;
	}
	kg_store *w = txn ? txn : s;
	uint64_t done = 0, all = L.n_ents + L.n_rels;
	if (p)
		p->total = all;
	for (size_t i = 0; rc == KG_OK && i < L.n_ents; i += WN_BATCH) {
		size_t n = L.n_ents - i < WN_BATCH ? L.n_ents - i : WN_BATCH;
		rc = kg_add_entities(w, L.ents + i, n, 0, NULL);
		done += n;
		cli_progress_update(p, done);
	}
	for (size_t i = 0; rc == KG_OK && i < L.n_rels; i += WN_BATCH) {
		size_t n = L.n_rels - i < WN_BATCH ? L.n_rels - i : WN_BATCH;
		rc = kg_add_relations(w, L.rels + i, n, 0, NULL);
		done += n;
		cli_progress_update(p, done);
	}
	if (rc != KG_OK && !*err)
		snprintf(err, errlen, "%s", kg_errmsg(w));
	if (txn) {
		if (rc == KG_OK) {
			rc = kg_commit(txn);
			if (rc != KG_OK)
				snprintf(err, errlen, "commit: %s", kg_errmsg(txn));
		} else {
			kg_rollback(txn);
		}
	}
	cli_progress_done(p, done);
	st->load_s = (double)(kg_now_us() - t1) / 1e6;
	st->synsets = L.n_ents;
	st->relations = L.n_rels;
	loader_free(&L);
	return rc;
}
