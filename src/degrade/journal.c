/*
 * journal.c - the degradation journal: an append-only file of checksummed
 * records, fsynced before a write is acknowledged, with a two-slot cursor
 * file recording how far replay got. Format in dg_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dg_internal.h"

#define DG_MAGIC 0x314a474bu /* "KGJ1" little endian */
#define DG_HDR 20
#define DG_MAX_PAYLOAD (256u << 20) /* a larger length is garbage, not a record */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t rec_crc(uint64_t seq, const unsigned char *payload, size_t len)
{
	unsigned char s[8];
	put64(s, seq);
	uLong c = crc32(0L, s, 8);
	/* zlib takes uInt lengths; payloads are capped well below that. */
	c = crc32(c, payload, (uInt)len);
	return (uint32_t)c;
}

/* 0, KG_ECORRUPT if the file ends first (a torn tail), KG_EIO if reading
 * failed (the bytes may be fine: never treat that as a tail to cut). */
static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return KG_EIO;
		if (r == 0)
			return KG_ECORRUPT;
		got += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t put = 0;
	while (put < n) {
		ssize_t r = pwrite(fd, (const char *)buf + put, n - put, (off_t)(off + put));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		put += (size_t)r;
	}
	return 0;
}

static char *cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);
	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

/* Reads and checks the record at off (< end). *payload is malloc'd. */
static int read_record(int fd, uint64_t off, uint64_t end, uint64_t *seq, unsigned char **payload, uint32_t *len)
{
	unsigned char h[DG_HDR];
	*payload = NULL;
	if (end - off < DG_HDR)
		return KG_ECORRUPT;
	int rc = read_full(fd, h, DG_HDR, off);
	if (rc < 0)
		return rc;
	uint32_t n = get32(h + 4);
	if (get32(h) != DG_MAGIC || n > DG_MAX_PAYLOAD || end - off - DG_HDR < n)
		return KG_ECORRUPT;
	unsigned char *p = malloc(n ? n : 1);
	if (!p)
		return KG_ENOMEM;
	if ((rc = read_full(fd, p, n, off + DG_HDR)) < 0) {
		free(p);
		return rc;
	}
	uint64_t s = get64(h + 8);
	if (rec_crc(s, p, n) != get32(h + 16)) {
		free(p);
		return KG_ECORRUPT;
	}
	*seq = s;
	*payload = p;
	*len = n;
	return KG_OK;
}

/* Checks the record at off; 1 and its seq/length if valid, 0 if not. */
static int check_record(int fd, uint64_t off, uint64_t size, uint64_t *seq, uint32_t *len)
{
	unsigned char *p = NULL;
	int ok = read_record(fd, off, size, seq, &p, len) == KG_OK;
	free(p);
	return ok;
}

static uint64_t read_cursor(int cfd)
{
	unsigned char buf[32];
	uint64_t best = 0;
	if (cfd < 0)
		return 0;
	ssize_t got = pread(cfd, buf, sizeof(buf), 0);
	/* Each whole slot whose checksum holds is a candidate; the newest wins. */
	for (int i = 0; i < 2 && got >= 16 * (i + 1); i++) {
		const unsigned char *slot = buf + 16 * i;
		uint64_t s = get64(slot);
		if ((uint32_t)crc32(0L, slot, 8) == get32(slot + 8) && s > best)
			best = s;
	}
	return best;
}

int dg_journal_open(dg_journal *j, const char *path, int read_only, int lock, char *err, size_t errcap)
{
	memset(j, 0, sizeof(*j));
	j->fd = j->cfd = -1;
	if (!path || !*path) {
		snprintf(err, errcap, "journal path is empty");
		return KG_EINVAL;
	}
	j->path = strdup(path);
	j->cursor_path = cat(path, ".cursor");
	j->rejected_path = cat(path, ".rejected");
	if (!j->path || !j->cursor_path || !j->rejected_path) {
		dg_journal_close(j);
		snprintf(err, errcap, "out of memory opening journal %s", path);
		return KG_ENOMEM;
	}
	j->fd = open(path, read_only ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		int e = errno;
		snprintf(err, errcap, "cannot open journal %s: %s%s", path, strerror(e),
		         read_only ? "" : "; check that its directory exists and is writable");
		dg_journal_close(j);
		return e == ENOENT && read_only ? KG_ENOTFOUND : KG_EIO;
	}
	/* One process at a time writes and replays a journal. */
	if (lock && flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errcap, "journal %s is in use by another process (it holds the lock); "
		         "close that store first", path);
		dg_journal_close(j);
		return KG_EBUSY;
	}
	struct stat st;
	if (fstat(j->fd, &st) < 0) {
		snprintf(err, errcap, "cannot stat journal %s: %s", path, strerror(errno));
		dg_journal_close(j);
		return KG_EIO;
	}
	uint64_t size = (uint64_t)st.st_size, off = 0, seq = 0;
	uint32_t len = 0;
	if (size > 0) {
		unsigned char m[4];
		/* A file that does not start like a journal is someone else's. */
		if (size >= 4 && read_full(j->fd, m, 4, 0) == 0 && get32(m) != DG_MAGIC) {
			snprintf(err, errcap, "%s is not a kgstore journal (bad magic); give another journal_path", path);
			dg_journal_close(j);
			return KG_ECORRUPT;
		}
	}
	/* The cursor only once the file is known to be a journal. */
	j->cfd = open(j->cursor_path, read_only ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->cfd < 0 && !(read_only && errno == ENOENT)) {
		snprintf(err, errcap, "cannot open journal cursor %s: %s", j->cursor_path, strerror(errno));
		dg_journal_close(j);
		return KG_EIO;
	}
	j->cursor = read_cursor(j->cfd);
	j->cursor_off = UINT64_MAX;
	for (;;) {
		unsigned char *p = NULL;
		int rc = read_record(j->fd, off, size, &seq, &p, &len);
		free(p);
		if (rc == KG_ENOMEM || rc == KG_EIO) {
			/* Not a torn tail: cutting here would drop acknowledged writes. */
			snprintf(err, errcap, "%s reading journal %s at byte %llu; it was left as it is: fix the cause "
			         "and open it again", rc == KG_EIO ? strerror(errno) : "out of memory", path,
			         (unsigned long long)off);
			dg_journal_close(j);
			return rc;
		}
		if (rc < 0)
			break;
		if (!j->records)
			j->first_seq = seq;
		j->last_seq = seq;
		j->records++;
		if (seq > j->cursor) {
			j->pending++;
			if (j->cursor_off == UINT64_MAX)
				j->cursor_off = off;
		}
		off += DG_HDR + len;
	}
	j->end = off;
	if (j->cursor_off == UINT64_MAX)
		j->cursor_off = off;
	j->torn_bytes = size - off;
	if (j->torn_bytes && !read_only) {
		/* The tail a crash cut short was never acknowledged: drop it. */
		if (ftruncate(j->fd, (off_t)off) < 0 || fsync(j->fd) < 0) {
			snprintf(err, errcap, "cannot cut the torn tail of journal %s: %s", path, strerror(errno));
			dg_journal_close(j);
			return KG_EIO;
		}
	}
	j->next_seq = (j->last_seq > j->cursor ? j->last_seq : j->cursor) + 1;
	return KG_OK;
}

void dg_journal_close(dg_journal *j)
{
	if (j->fd >= 0)
		close(j->fd); /* releases the flock */
	if (j->cfd >= 0)
		close(j->cfd);
	free(j->path);
	free(j->cursor_path);
	free(j->rejected_path);
	memset(j, 0, sizeof(*j));
	j->fd = j->cfd = -1;
}

static int write_record(int fd, uint64_t off, uint64_t seq, const unsigned char *payload, size_t len)
{
	unsigned char *rec = malloc(DG_HDR + len);
	if (!rec)
		return KG_ENOMEM;
	put32(rec, DG_MAGIC);
	put32(rec + 4, (uint32_t)len);
	put64(rec + 8, seq);
	put32(rec + 16, rec_crc(seq, payload, len));
	memcpy(rec + DG_HDR, payload, len);
	int rc = write_full(fd, rec, DG_HDR + len, off);
	free(rec);
	return rc < 0 ? KG_EIO : KG_OK;
}

int dg_journal_append(dg_journal *j, const unsigned char *payload, size_t len, char *err, size_t errcap)
{
	if (len > DG_MAX_PAYLOAD) {
		snprintf(err, errcap, "a journal record of %zu bytes is over the %u-byte limit; write a smaller batch",
		         len, DG_MAX_PAYLOAD);
		return KG_EINVAL;
	}
	int rc = write_record(j->fd, j->end, j->next_seq, payload, len);
	if (rc == KG_OK && fdatasync(j->fd) < 0)
		rc = KG_EIO;
	if (rc < 0) {
		int e = errno;
		/* Leave no half record behind for the next append to follow. */
		if (ftruncate(j->fd, (off_t)j->end) < 0) {
			/* open() cuts a torn tail anyway */
		}
		snprintf(err, errcap, "cannot write the journal %s (%s); the write was not accepted: free disk space "
		         "or fix the journal's directory", j->path, rc == KG_ENOMEM ? "out of memory" : strerror(e));
		return rc;
	}
	if (!j->records)
		j->first_seq = j->next_seq;
	j->last_seq = j->next_seq++;
	j->records++;
	/* pending is read without the journal's lock by status queries. */
	__atomic_add_fetch(&j->pending, 1, __ATOMIC_RELAXED);
	j->end += DG_HDR + len;
	return KG_OK;
}

int dg_journal_read(dg_journal *j, uint64_t *off, uint64_t end, uint64_t *seq, unsigned char **payload, size_t *len)
{
	uint32_t n = 0;
	int rc = read_record(j->fd, *off, end, seq, payload, &n);
	if (rc < 0)
		return rc;
	*len = n;
	*off += DG_HDR + n;
	return KG_OK;
}

int dg_journal_set_cursor(dg_journal *j, uint64_t seq, uint64_t next_off)
{
	unsigned char slot[16];
	put64(slot, seq);
	put32(slot + 8, (uint32_t)crc32(0L, slot, 8));
	put32(slot + 12, 0);
	/* Alternate slots: a torn write spoils one slot, the other still holds
	 * the previous position. */
	if (write_full(j->cfd, slot, sizeof(slot), (seq & 1) * 16) < 0 || fdatasync(j->cfd) < 0)
		return KG_EIO;
	j->cursor = seq;
	j->cursor_off = next_off;
	if (j->pending)
		__atomic_sub_fetch(&j->pending, 1, __ATOMIC_RELAXED);
	if (j->next_seq <= seq)
		j->next_seq = seq + 1;
	return KG_OK;
}

int dg_journal_reset(dg_journal *j)
{
	/* The cursor already covers every record, so a crash between these
	 * steps leaves nothing to replay twice. */
	if (ftruncate(j->fd, 0) < 0 || fsync(j->fd) < 0)
		return KG_EIO;
	j->end = j->cursor_off = 0;
	j->records = 0;
	__atomic_store_n(&j->pending, 0, __ATOMIC_RELAXED);
	j->first_seq = j->last_seq = 0;
	return KG_OK;
}

int dg_journal_reject(dg_journal *j, uint64_t seq, const unsigned char *payload, size_t len)
{
	int fd = open(j->rejected_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return KG_EIO;
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? KG_EIO : write_record(fd, (uint64_t)st.st_size, seq, payload, len);
	if (rc == KG_OK && fdatasync(fd) < 0)
		rc = KG_EIO;
	close(fd);
	return rc;
}

uint64_t dg_journal_count_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	uint64_t n = 0, off = 0, seq;
	uint32_t len;
	if (fstat(fd, &st) == 0)
		while (check_record(fd, off, (uint64_t)st.st_size, &seq, &len)) {
			n++;
			off += DG_HDR + len;
		}
	close(fd);
	return n;
}

/* ------------------------------------------------------------------ */
/* Payloads                                                             */
/* ------------------------------------------------------------------ */

/*
 * payload: u8 op | u8 reserved | u32 flags | str tenant | u32 n | items
 * str: u32 length (0xffffffff = NULL) then the bytes and a NUL.
 * entity: id type properties source | i64 created | i64 updated |
 *         u32 dim | dim float32
 * relation: id type source_id target_id properties source | f64 weight |
 *           i64 created | i64 updated
 * delete: str id.  clear: nothing after the tenant.
 */

void dg_buf_free(dg_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static unsigned char *grow(dg_buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->len + n > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 256;
		while (nc < b->len + n)
			nc *= 2;
		unsigned char *np = realloc(b->p, nc);
		if (!np) {
			b->oom = 1;
			return NULL;
		}
		b->p = np;
		b->cap = nc;
	}
	unsigned char *at = b->p + b->len;
	b->len += n;
	return at;
}

static void b_u8(dg_buf *b, unsigned v)
{
	unsigned char *p = grow(b, 1);
	if (p)
		*p = (unsigned char)v;
}

static void b_u32(dg_buf *b, uint32_t v)
{
	unsigned char *p = grow(b, 4);
	if (p)
		put32(p, v);
}

static void b_u64(dg_buf *b, uint64_t v)
{
	unsigned char *p = grow(b, 8);
	if (p)
		put64(p, v);
}

static void b_str(dg_buf *b, const char *s)
{
	if (!s) {
		b_u32(b, 0xffffffffu);
		return;
	}
	size_t n = strlen(s);
	b_u32(b, (uint32_t)n);
	unsigned char *p = grow(b, n + 1);
	if (p)
		memcpy(p, s, n + 1);
}

static void b_head(dg_buf *b, int op, const char *tenant, unsigned flags, size_t n)
{
	b_u8(b, (unsigned)op);
	b_u8(b, 0);
	b_u32(b, flags);
	b_str(b, tenant);
	b_u32(b, (uint32_t)n);
}

void dg_encode_entities(dg_buf *b, int op, const char *tenant, unsigned flags, const kg_entity *e, size_t n)
{
	b_head(b, op, tenant, flags, n);
	for (size_t i = 0; i < n; i++) {
		b_str(b, e[i].id);
		b_str(b, e[i].entity_type);
		b_str(b, e[i].properties);
		b_str(b, e[i].source);
		b_u64(b, (uint64_t)e[i].created_at);
		b_u64(b, (uint64_t)e[i].updated_at);
		size_t dim = e[i].embedding ? e[i].embedding_dim : 0;
		b_u32(b, (uint32_t)dim);
		unsigned char *p = grow(b, dim * 4);
		if (p && dim)
			kg_embedding_to_le(e[i].embedding, dim, p);
	}
}

void dg_encode_relations(dg_buf *b, int op, const char *tenant, unsigned flags, const kg_relation *r, size_t n)
{
	b_head(b, op, tenant, flags, n);
	for (size_t i = 0; i < n; i++) {
		b_str(b, r[i].id);
		b_str(b, r[i].relation_type);
		b_str(b, r[i].source_id);
		b_str(b, r[i].target_id);
		b_str(b, r[i].properties);
		b_str(b, r[i].source);
		uint64_t w;
		memcpy(&w, &r[i].weight, 8);
		b_u64(b, w);
		b_u64(b, (uint64_t)r[i].created_at);
		b_u64(b, (uint64_t)r[i].updated_at);
	}
}

void dg_encode_id(dg_buf *b, int op, const char *tenant, const char *id)
{
	b_head(b, op, tenant, 0, 1);
	b_str(b, id);
}

void dg_encode_clear(dg_buf *b, const char *tenant)
{
	b_head(b, KG_JOP_CLEAR, tenant, 0, 0);
}

/* Decoding: a cursor over the payload that fails once and stays failed. */
typedef struct rd {
	unsigned char *p;
	size_t len, off;
	int bad;
} rd;

static int r_need(rd *r, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = 1;
		return 0;
	}
	return 1;
}

static unsigned r_u8(rd *r)
{
	return r_need(r, 1) ? r->p[r->off++] : 0;
}

static uint32_t r_u32(rd *r)
{
	if (!r_need(r, 4))
		return 0;
	uint32_t v = get32(r->p + r->off);
	r->off += 4;
	return v;
}

static uint64_t r_u64(rd *r)
{
	if (!r_need(r, 8))
		return 0;
	uint64_t v = get64(r->p + r->off);
	r->off += 8;
	return v;
}

static const char *r_str(rd *r)
{
	uint32_t n = r_u32(r);
	if (r->bad || n == 0xffffffffu)
		return NULL;
	if (!r_need(r, (size_t)n + 1) || r->p[r->off + n] != '\0') {
		r->bad = 1;
		return NULL;
	}
	const char *s = (const char *)r->p + r->off;
	r->off += (size_t)n + 1;
	return s;
}

int dg_record_decode(unsigned char *payload, size_t len, uint64_t seq, dg_record *out)
{
	memset(out, 0, sizeof(*out));
	out->payload = payload;
	out->seq = seq;
	rd r = { payload, len, 0, 0 };
	out->op = (int)r_u8(&r);
	r_u8(&r);
	out->flags = r_u32(&r);
	out->tenant = r_str(&r);
	out->n = r_u32(&r);
	if (r.bad)
		goto bad;
	/* Every item takes at least 4 bytes, which bounds n before allocating. */
	if (out->n > len / 4)
		goto bad;
	switch (out->op) {
	case KG_JOP_ADD_ENTITIES:
	case KG_JOP_UPDATE_ENTITY: {
		out->ents = calloc(out->n ? out->n : 1, sizeof(*out->ents));
		size_t nfloats = len / 4;
		out->floats = malloc((nfloats ? nfloats : 1) * sizeof(float));
		if (!out->ents || !out->floats)
			goto oom;
		size_t fused = 0;
		for (size_t i = 0; i < out->n; i++) {
			kg_entity *e = &out->ents[i];
			e->id = r_str(&r);
			e->entity_type = r_str(&r);
			e->properties = r_str(&r);
			e->source = r_str(&r);
			e->created_at = (int64_t)r_u64(&r);
			e->updated_at = (int64_t)r_u64(&r);
			uint32_t dim = r_u32(&r);
			if (r.bad || !e->id || !e->entity_type || dim > nfloats - fused || !r_need(&r, (size_t)dim * 4))
				goto bad;
			if (dim) {
				kg_embedding_from_le(r.p + r.off, dim, out->floats + fused);
				e->embedding = out->floats + fused;
				e->embedding_dim = dim;
				fused += dim;
				r.off += (size_t)dim * 4;
			}
			e->tenant_id = out->tenant;
		}
		break;
	}
	case KG_JOP_ADD_RELATIONS:
	case KG_JOP_UPDATE_RELATION:
		out->rels = calloc(out->n ? out->n : 1, sizeof(*out->rels));
		if (!out->rels)
			goto oom;
		for (size_t i = 0; i < out->n; i++) {
			kg_relation *x = &out->rels[i];
			x->id = r_str(&r);
			x->relation_type = r_str(&r);
			x->source_id = r_str(&r);
			x->target_id = r_str(&r);
			x->properties = r_str(&r);
			x->source = r_str(&r);
			uint64_t w = r_u64(&r);
			memcpy(&x->weight, &w, 8);
			x->created_at = (int64_t)r_u64(&r);
			x->updated_at = (int64_t)r_u64(&r);
			if (r.bad || !x->id || !x->relation_type || !x->source_id || !x->target_id)
				goto bad;
			x->tenant_id = out->tenant;
		}
		break;
	case KG_JOP_DELETE_ENTITY:
	case KG_JOP_DELETE_RELATION:
		out->id = r_str(&r);
		if (r.bad || !out->id)
			goto bad;
		break;
	case KG_JOP_CLEAR:
		break;
	default:
		goto bad;
	}
	if (r.bad || r.off != len)
		goto bad;
	return KG_OK;
bad:
	dg_record_free(out);
	return KG_ECORRUPT;
oom:
	dg_record_free(out);
	return KG_ENOMEM;
}

void dg_record_free(dg_record *r)
{
	free(r->ents);
	free(r->rels);
	free(r->floats);
	free(r->payload);
	memset(r, 0, sizeof(*r));
}
