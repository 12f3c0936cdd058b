/*
 * native.c - kgstore._native, the CPython extension under the kgstore
 * Python package (python/kgstore/__init__.py builds the seed's async classes
 * on it).
 *
 * What lives here and why:
 *  - Entity and Relation are C types. A record read from the store keeps the
 *    library's one-block copy and decodes properties (JSON), the embedding
 *    and the timestamps only when they are first read, so get_entity costs
 *    one C call plus one object.
 *  - Store wraps a kg_store handle. Every method that reaches the backend
 *    releases the GIL around the C call, so other Python threads (the async
 *    layer's executor threads) run meanwhile.
 *  - Inputs are copied into one arena per call (strings, properties encoded
 *    as JSON by a small encoder here, embeddings) before the GIL is released:
 *    another thread may change the Python objects while the C call runs.
 *  - Library status codes become the exception classes that kgstore/errors.py
 *    registers (register_errors), carrying the C message and .code.
 *
 * Ownership: Python objects follow the usual reference rules; every C
 * allocation is owned by exactly one Python object and freed in its dealloc.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kgstore.h>
#include <kgstore/backend.h> /* kg_relation_dup */
#include <kgstore/degrade.h>
#include <kgstore/io.h>
#include <kgstore/postgres.h>

/* ------------------------------------------------------------------ */
/* Module globals (set once at import, never freed: the module lives as */
/* long as the interpreter)                                             */
/* ------------------------------------------------------------------ */

#define N_CODES 13 /* KG_OK .. -KG_EINTERNAL */
static PyObject *g_errors[N_CODES]; /* exception class per -code; [0] = base */
static PyObject *g_json_loads;      /* json.loads, for lazy properties */

static PyObject *error_class(int rc)
{
	int i = -rc;
	if (i > 0 && i < N_CODES && g_errors[i])
		return g_errors[i];
	return g_errors[0] ? g_errors[0] : PyExc_RuntimeError;
}

/* Raises the class for `rc` with `msg`, and sets .code on the instance.
 * Always returns NULL. */
static PyObject *raise_kg(int rc, const char *msg)
{
	PyObject *cls = error_class(rc);
	PyObject *exc = PyObject_CallFunction(cls, "s", msg ? msg : kg_strerror(rc));
	if (!exc)
		return NULL;
	PyObject *code = PyLong_FromLong(rc);
	if (code) {
		PyObject_SetAttrString(exc, "code", code);
		Py_DECREF(code);
	}
	PyErr_Clear();
	PyErr_SetObject(cls, exc);
	Py_DECREF(exc);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Arena: one growable block per call holding every input string        */
/* ------------------------------------------------------------------ */

typedef struct arena {
	char *buf;
	size_t len, cap;
} arena;

static int arena_reserve(arena *a, size_t extra)
{
	if (a->len + extra <= a->cap)
		return 0;
	size_t cap = a->cap ? a->cap * 2 : 1024;
	while (cap < a->len + extra)
		cap *= 2;
	char *nb = realloc(a->buf, cap);
	if (!nb) {
		PyErr_NoMemory();
		return -1;
	}
	a->buf = nb;
	a->cap = cap;
	return 0;
}

static int arena_put(arena *a, const void *p, size_t n)
{
	if (n == 0)
		return 0; /* buf may still be NULL: memcpy(NULL, p, 0) is undefined */
	if (arena_reserve(a, n) < 0)
		return -1;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
	return 0;
}

#define APUT_LIT(a, s) arena_put((a), (s), sizeof(s) - 1)

static int arena_putc(arena *a, char c)
{
	if (a->len + 1 > a->cap && arena_reserve(a, 1) < 0)
		return -1;
	a->buf[a->len++] = c;
	return 0;
}

/* Offsets are stored in pointer fields as offset+1 until the arena stops
 * moving; 0 stays NULL. */
#define OFF_TO_PTR(t, a, p) ((p) ? (t)(void *)((a)->buf + ((uintptr_t)(p) - 1)) : NULL)
#define OFF(o) ((const char *)(uintptr_t)((o) + 1))

/* Copies a NUL-terminated string in; returns its offset via *off. */
static int arena_str(arena *a, const char *s, size_t n, size_t *off)
{
	*off = a->len;
	if (arena_put(a, s, n) < 0 || arena_putc(a, 0) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON encoder (properties and property values)                        */
/* ------------------------------------------------------------------ */

static int json_str(arena *a, const char *s, Py_ssize_t n)
{
	static const char hex[] = "0123456789abcdef";
	if (arena_reserve(a, (size_t)n + 2) < 0 || arena_putc(a, '"') < 0)
		return -1;
	Py_ssize_t run = 0;
	for (Py_ssize_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (arena_put(a, s + run, (size_t)(i - run)) < 0)
			return -1;
		run = i + 1;
		char esc[7] = {'\\', 0};
		size_t el = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
			esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
			el = 6;
		}
		if (arena_put(a, esc, el) < 0)
			return -1;
	}
	if (arena_put(a, s + run, (size_t)(n - run)) < 0)
		return -1;
	return arena_putc(a, '"');
}

static int json_value(arena *a, PyObject *v, int depth);

static int json_key(arena *a, PyObject *k)
{
	/* As json.dumps: str keys as they are; int, float, bool, None keys
	 * become their JSON text as a string. */
	if (PyUnicode_Check(k)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(k, &n);
		return s ? json_str(a, s, n) : -1;
	}
	if (k == Py_True)
		return APUT_LIT(a, "\"true\"");
	if (k == Py_False)
		return APUT_LIT(a, "\"false\"");
	if (k == Py_None)
		return APUT_LIT(a, "\"null\"");
	if (PyLong_Check(k) || PyFloat_Check(k)) {
		PyObject *r = PyObject_Repr(k);
		if (!r)
			return -1;
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(r, &n);
		int rc = s ? json_str(a, s, n) : -1;
		Py_DECREF(r);
		return rc;
	}
	PyErr_Format(PyExc_TypeError, "property keys must be str, int, float, bool or None, not %.100s",
	             Py_TYPE(k)->tp_name);
	return -1;
}

static int json_value(arena *a, PyObject *v, int depth)
{
	if (depth > 200) {
		PyErr_SetString(PyExc_ValueError, "properties are nested more than 200 levels deep; flatten them");
		return -1;
	}
	if (PyUnicode_Check(v)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(v, &n);
		return s ? json_str(a, s, n) : -1;
	}
	if (v == Py_None)
		return APUT_LIT(a, "null");
	if (v == Py_True)
		return APUT_LIT(a, "true");
	if (v == Py_False)
		return APUT_LIT(a, "false");
	if (PyLong_Check(v)) {
		int overflow = 0;
		long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
		if (!overflow) {
			if (x == -1 && PyErr_Occurred())
				return -1;
			/* By hand: printf costs several times more per number. */
			char num[24];
			char *e = num + sizeof num, *p = e;
			unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
			do
				*--p = (char)('0' + u % 10);
			while (u /= 10);
			if (x < 0)
				*--p = '-';
			return arena_put(a, p, (size_t)(e - p));
		}
		PyObject *r = PyObject_Str(v);
		if (!r)
			return -1;
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(r, &n);
		int rc = s ? arena_put(a, s, (size_t)n) : -1;
		Py_DECREF(r);
		return rc;
	}
	if (PyFloat_Check(v)) {
		double d = PyFloat_AS_DOUBLE(v);
		if (!isfinite(d)) {
			PyErr_SetString(PyExc_ValueError, "properties cannot hold NaN or infinity (JSON has no such "
			                                  "numbers); store them as strings or None");
			return -1;
		}
		/* Python's repr: the shortest text that reads back as the same
		 * double, as json.dumps writes it (glibc's printf is slower). */
		char *s = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
		if (!s)
			return -1;
		int rc = arena_put(a, s, strlen(s));
		PyMem_Free(s);
		return rc;
	}
	if (PyDict_Check(v)) {
		if (arena_putc(a, '{') < 0)
			return -1;
		PyObject *k, *x;
		Py_ssize_t pos = 0;
		int first = 1;
		while (PyDict_Next(v, &pos, &k, &x)) {
			if (!first && arena_putc(a, ',') < 0)
				return -1;
			first = 0;
			if (json_key(a, k) < 0 || arena_putc(a, ':') < 0 || json_value(a, x, depth + 1) < 0)
				return -1;
		}
		return arena_putc(a, '}');
	}
	if (PyList_Check(v) || PyTuple_Check(v)) {
		if (arena_putc(a, '[') < 0)
			return -1;
		/* PySequence_Fast_ITEMS is safe here: the GIL is held and the
		 * encoder runs no Python code that could resize the list. */
		Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
		PyObject **items = PySequence_Fast_ITEMS(v);
		for (Py_ssize_t i = 0; i < n; i++) {
			if ((i && arena_putc(a, ',') < 0) || json_value(a, items[i], depth + 1) < 0)
				return -1;
		}
		return arena_putc(a, ']');
	}
	PyErr_Format(PyExc_TypeError,
	             "Object of type %.100s is not JSON serializable (properties hold str, int, float, bool, "
	             "None, list, tuple and dict)",
	             Py_TYPE(v)->tp_name);
	return -1;
}

/* Encodes a properties object (dict or None) at the arena's end. */
static int json_properties(arena *a, PyObject *props, size_t *off)
{
	*off = a->len;
	if (props == NULL || props == Py_None)
		return APUT_LIT(a, "{}") < 0 || arena_putc(a, 0) < 0 ? -1 : 0;
	if (!PyDict_Check(props)) {
		PyErr_Format(PyExc_TypeError, "properties must be a dict, not %.100s", Py_TYPE(props)->tp_name);
		return -1;
	}
	if (json_value(a, props, 0) < 0 || arena_putc(a, 0) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Time: µs since epoch <-> naive UTC datetime                          */
/* ------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static PyObject *dt_from_us(int64_t us)
{
	if (us == 0)
		Py_RETURN_NONE;
	int64_t secs = us / 1000000, rem = us % 1000000;
	if (rem < 0) {
		rem += 1000000;
		secs--;
	}
	time_t t = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		PyErr_SetString(PyExc_OverflowError, "timestamp out of range");
		return NULL;
	}
	return PyDateTime_FromDateAndTime(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                                  tm.tm_sec, (int)rem);
}

/* datetime (naive = UTC; aware converted), ISO 8601 str, or None (0). */
static int us_from_obj(PyObject *v, int64_t *us)
{
	*us = 0;
	if (v == NULL || v == Py_None)
		return 0;
	if (PyUnicode_Check(v)) {
		const char *s = PyUnicode_AsUTF8(v);
		if (!s)
			return -1;
		if (kg_parse_time(s, us) != KG_OK) {
			PyErr_Format(PyExc_ValueError, "'%s' is not an ISO 8601 timestamp (e.g. 2024-01-31T12:00:00Z)", s);
			return -1;
		}
		return 0;
	}
	if (!PyDateTime_Check(v)) {
		PyErr_Format(PyExc_TypeError, "timestamps are datetime, ISO 8601 str or None, not %.100s",
		             Py_TYPE(v)->tp_name);
		return -1;
	}
	int64_t days = days_from_civil(PyDateTime_GET_YEAR(v), (unsigned)PyDateTime_GET_MONTH(v),
	                               (unsigned)PyDateTime_GET_DAY(v));
	int64_t s = days * 86400 + PyDateTime_DATE_GET_HOUR(v) * 3600 + PyDateTime_DATE_GET_MINUTE(v) * 60 +
	            PyDateTime_DATE_GET_SECOND(v);
	int64_t r = s * 1000000 + PyDateTime_DATE_GET_MICROSECOND(v);
	PyObject *tz = PyDateTime_DATE_GET_TZINFO(v);
	if (tz != Py_None) {
		PyObject *off = PyObject_CallMethod(v, "utcoffset", NULL);
		if (!off)
			return -1;
		if (PyDelta_Check(off))
			r -= ((int64_t)PyDateTime_DELTA_GET_DAYS(off) * 86400 + PyDateTime_DELTA_GET_SECONDS(off)) * 1000000 +
			     PyDateTime_DELTA_GET_MICROSECONDS(off);
		Py_DECREF(off);
	}
	/* 0 means "now" to the library; the epoch itself is one µs later. */
	*us = r ? r : 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Entity                                                               */
/* ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	PyObject *id, *entity_type, *source, *tenant_id; /* str / None */
	PyObject *properties;             /* cache: NULL = decode props_json on read */
	PyObject *embedding;              /* cache: NULL = decode emb on read */
	PyObject *created_at, *updated_at;/* cache: NULL = from *_us on read */
	int64_t created_us, updated_us;
	const char *props_json;           /* into raw; NULL = {} */
	const float *emb;
	size_t dim;
	void *raw;                        /* owned block, freed with free() */
} EntityObject;

typedef struct {
	PyObject_HEAD
	PyObject *id, *relation_type, *source_id, *target_id, *source, *tenant_id;
	PyObject *properties;
	PyObject *created_at, *updated_at;
	int64_t created_us, updated_us;
	double weight;
	const char *props_json;
	void *raw;
} RelationObject;

static PyTypeObject EntityType, RelationType;

static PyObject *str_or_none(const char *s)
{
	if (!s)
		Py_RETURN_NONE;
	return PyUnicode_FromString(s);
}

/* Makes an Entity from a library record. steal: take ownership of `e`
 * (a kg_entity from kg_get_entity or a list); else copy what is kept
 * (records owned by a path list). */
static PyObject *entity_from_kg(kg_entity *e, int steal)
{
	EntityObject *o = (EntityObject *)EntityType.tp_alloc(&EntityType, 0);
	if (!o) {
		if (steal)
			kg_entity_free(e);
		return NULL;
	}
	o->created_us = e->created_at;
	o->updated_us = e->updated_at;
	o->dim = e->embedding ? e->embedding_dim : 0;
	if (steal) {
		o->raw = e;
		o->props_json = e->properties;
		o->emb = e->embedding;
	} else {
		size_t pl = e->properties ? strlen(e->properties) + 1 : 0;
		size_t el = o->dim * sizeof(float);
		char *blk = malloc(el + pl + 1);
		if (!blk) {
			Py_DECREF(o);
			return PyErr_NoMemory();
		}
		if (el)
			memcpy(blk, e->embedding, el);
		if (pl)
			memcpy(blk + el, e->properties, pl);
		o->raw = blk;
		o->emb = el ? (const float *)(void *)blk : NULL;
		o->props_json = pl ? blk + el : NULL;
	}
	if (!(o->id = PyUnicode_FromString(e->id)) || !(o->entity_type = PyUnicode_FromString(e->entity_type)) ||
	    !(o->source = str_or_none(e->source)) || !(o->tenant_id = str_or_none(e->tenant_id))) {
		Py_DECREF(o);
		return NULL;
	}
	return (PyObject *)o;
}

static PyObject *relation_from_kg(kg_relation *r, int steal)
{
	RelationObject *o = (RelationObject *)RelationType.tp_alloc(&RelationType, 0);
	if (!o) {
		if (steal)
			kg_relation_free(r);
		return NULL;
	}
	o->created_us = r->created_at;
	o->updated_us = r->updated_at;
	o->weight = r->weight;
	if (steal) {
		o->raw = r;
		o->props_json = r->properties;
	} else if (r->properties) {
		char *p = strdup(r->properties);
		if (!p) {
			Py_DECREF(o);
			return PyErr_NoMemory();
		}
		o->raw = p;
		o->props_json = p;
	}
	if (!(o->id = PyUnicode_FromString(r->id)) || !(o->relation_type = PyUnicode_FromString(r->relation_type)) ||
	    !(o->source_id = PyUnicode_FromString(r->source_id)) ||
	    !(o->target_id = PyUnicode_FromString(r->target_id)) || !(o->source = str_or_none(r->source)) ||
	    !(o->tenant_id = str_or_none(r->tenant_id))) {
		Py_DECREF(o);
		return NULL;
	}
	return (PyObject *)o;
}

static PyObject *decode_props(const char *json)
{
	if (!json)
		return PyDict_New();
	PyObject *s = PyUnicode_FromString(json);
	if (!s)
		return NULL;
	PyObject *d = PyObject_CallOneArg(g_json_loads, s);
	Py_DECREF(s);
	return d;
}

static int check_str(PyObject *v, const char *what, int allow_none)
{
	if (PyUnicode_Check(v) || (allow_none && v == Py_None))
		return 0;
	PyErr_Format(PyExc_TypeError, "%s must be a str%s, not %.100s", what, allow_none ? " or None" : "",
	             Py_TYPE(v)->tp_name);
	return -1;
}

/* Replaces *slot with a new reference to v (NULL = delete -> default). */
static void set_slot(PyObject **slot, PyObject *v)
{
	Py_XINCREF(v);
	Py_XSETREF(*slot, v);
}

/* Entity(id, entity_type, properties=None, embedding=None, source=None,
 *        created_at=None, updated_at=None, tenant_id=None) */
static int entity_init(EntityObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"id",         "entity_type", "properties", "embedding", "source",
	                         "created_at", "updated_at",  "tenant_id",  NULL};
	PyObject *id, *type, *props = Py_None, *emb = Py_None, *source = Py_None, *ca = Py_None, *ua = Py_None,
	                     *tenant = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "UU|OOOOOO:Entity", kwlist, &id, &type, &props, &emb, &source, &ca,
	                                 &ua, &tenant))
		return -1;
	if (check_str(source, "source", 1) < 0 || check_str(tenant, "tenant_id", 1) < 0)
		return -1;
	if (props != Py_None && !PyDict_Check(props)) {
		PyErr_Format(PyExc_TypeError, "properties must be a dict, not %.100s", Py_TYPE(props)->tp_name);
		return -1;
	}
	if (ca != Py_None && !PyDateTime_Check(ca) && !PyUnicode_Check(ca)) {
		int64_t dummy;
		return us_from_obj(ca, &dummy);
	}
	if (ua != Py_None && !PyDateTime_Check(ua) && !PyUnicode_Check(ua)) {
		int64_t dummy;
		return us_from_obj(ua, &dummy);
	}
	set_slot(&self->id, id);
	set_slot(&self->entity_type, type);
	if (props == Py_None) {
		Py_XSETREF(self->properties, PyDict_New());
		if (!self->properties)
			return -1;
	} else
		set_slot(&self->properties, props);
	if (emb == Py_None)
		set_slot(&self->embedding, Py_None);
	else {
		PyObject *l = PySequence_List(emb);
		if (!l)
			return -1;
		Py_XSETREF(self->embedding, l);
	}
	set_slot(&self->source, source);
	set_slot(&self->created_at, ca);
	set_slot(&self->updated_at, ua);
	set_slot(&self->tenant_id, tenant);
	return 0;
}

static void entity_dealloc(EntityObject *self)
{
	Py_XDECREF(self->id);
	Py_XDECREF(self->entity_type);
	Py_XDECREF(self->source);
	Py_XDECREF(self->tenant_id);
	Py_XDECREF(self->properties);
	Py_XDECREF(self->embedding);
	Py_XDECREF(self->created_at);
	Py_XDECREF(self->updated_at);
	free(self->raw);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *emb_to_list(const float *emb, size_t dim)
{
	if (!emb)
		Py_RETURN_NONE;
	PyObject *l = PyList_New((Py_ssize_t)dim);
	if (!l)
		return NULL;
	for (size_t i = 0; i < dim; i++) {
		PyObject *f = PyFloat_FromDouble(emb[i]);
		if (!f) {
			Py_DECREF(l);
			return NULL;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, f);
	}
	return l;
}

/* Getters and setters: a slot read when it is NULL is decoded from the raw
 * record first (and cached). */
#define SIMPLE_GETSET(T, field)                                                                                        \
	static PyObject *T##_get_##field(T##Object *self, void *c)                                                   \
	{                                                                                                              \
		(void)c;                                                                                                   \
		PyObject *v = self->field ? self->field : Py_None;                                                         \
		Py_INCREF(v);                                                                                              \
		return v;                                                                                                  \
	}

/* A slot decoded on first read and cached. */
static PyObject *lazy_props(PyObject **slot, const char *json)
{
	if (!*slot && !(*slot = decode_props(json)))
		return NULL;
	Py_INCREF(*slot);
	return *slot;
}

static PyObject *lazy_time(PyObject **slot, int64_t us)
{
	if (!*slot && !(*slot = dt_from_us(us)))
		return NULL;
	Py_INCREF(*slot);
	return *slot;
}

static PyObject *Entity_get_properties(EntityObject *self, void *c)
{
	(void)c;
	return lazy_props(&self->properties, self->props_json);
}

static PyObject *Entity_get_embedding(EntityObject *self, void *c)
{
	(void)c;
	if (!self->embedding && !(self->embedding = emb_to_list(self->emb, self->dim)))
		return NULL;
	Py_INCREF(self->embedding);
	return self->embedding;
}

static PyObject *Entity_get_created_at(EntityObject *self, void *c)
{
	(void)c;
	return lazy_time(&self->created_at, self->created_us);
}

static PyObject *Entity_get_updated_at(EntityObject *self, void *c)
{
	(void)c;
	return lazy_time(&self->updated_at, self->updated_us);
}

typedef struct {
	size_t off;    /* offsetof the slot */
	int kind;      /* 0 str, 1 str|None, 2 dict, 3 list|None, 4 time */
	const char *name;
} slot_desc;

static int generic_set(PyObject *self, PyObject *v, void *closure)
{
	const slot_desc *d = closure;
	PyObject **slot = (PyObject **)(void *)((char *)self + d->off);
	if (!v) {
		PyErr_Format(PyExc_AttributeError, "%s cannot be deleted; set it to None or a new value", d->name);
		return -1;
	}
	switch (d->kind) {
	case 0:
		if (check_str(v, d->name, 0) < 0)
			return -1;
		break;
	case 1:
		if (check_str(v, d->name, 1) < 0)
			return -1;
		break;
	case 2:
		if (v == Py_None) {
			PyObject *nd = PyDict_New();
			if (!nd)
				return -1;
			Py_XSETREF(*slot, nd);
			return 0;
		}
		if (!PyDict_Check(v)) {
			PyErr_Format(PyExc_TypeError, "properties must be a dict, not %.100s", Py_TYPE(v)->tp_name);
			return -1;
		}
		break;
	case 3:
		if (v != Py_None) {
			PyObject *l = PySequence_List(v);
			if (!l)
				return -1;
			Py_XSETREF(*slot, l);
			return 0;
		}
		break;
	case 4:
		if (v != Py_None && !PyDateTime_Check(v) && !PyUnicode_Check(v)) {
			int64_t dummy;
			return us_from_obj(v, &dummy);
		}
		break;
	}
	set_slot(slot, v);
	return 0;
}

SIMPLE_GETSET(Entity, id)
SIMPLE_GETSET(Entity, entity_type)
SIMPLE_GETSET(Entity, source)
SIMPLE_GETSET(Entity, tenant_id)

static slot_desc E_id = {offsetof(EntityObject, id), 0, "id"};
static slot_desc E_type = {offsetof(EntityObject, entity_type), 0, "entity_type"};
static slot_desc E_source = {offsetof(EntityObject, source), 1, "source"};
static slot_desc E_tenant = {offsetof(EntityObject, tenant_id), 1, "tenant_id"};
static slot_desc E_props = {offsetof(EntityObject, properties), 2, "properties"};
static slot_desc E_emb = {offsetof(EntityObject, embedding), 3, "embedding"};
static slot_desc E_ca = {offsetof(EntityObject, created_at), 4, "created_at"};
static slot_desc E_ua = {offsetof(EntityObject, updated_at), 4, "updated_at"};

static PyGetSetDef entity_getset[] = {
	{"id", (getter)Entity_get_id, generic_set, "unique id within its tenant", &E_id},
	{"entity_type", (getter)Entity_get_entity_type, generic_set, "type, e.g. 'Person'", &E_type},
	{"properties", (getter)Entity_get_properties, generic_set, "dict of JSON values", &E_props},
	{"embedding", (getter)Entity_get_embedding, generic_set, "list of floats or None", &E_emb},
	{"source", (getter)Entity_get_source, generic_set, "provenance text or None", &E_source},
	{"created_at", (getter)Entity_get_created_at, generic_set, "naive UTC datetime", &E_ca},
	{"updated_at", (getter)Entity_get_updated_at, generic_set, "naive UTC datetime", &E_ua},
	{"tenant_id", (getter)Entity_get_tenant_id, generic_set, "tenant or None (global namespace)", &E_tenant},
	{NULL, NULL, NULL, NULL, NULL}};

/* ------------------------------------------------------------------ */
/* Relation                                                             */
/* ------------------------------------------------------------------ */

static int relation_init(RelationObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"id",     "relation_type", "source_id",  "target_id", "properties", "weight",
	                         "source", "created_at",    "updated_at", "tenant_id", NULL};
	PyObject *id, *type, *src, *tgt, *props = Py_None, *source = Py_None, *ca = Py_None, *ua = Py_None,
	                                  *tenant = Py_None;
	double weight = 1.0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "UUUU|OdOOOO:Relation", kwlist, &id, &type, &src, &tgt, &props,
	                                 &weight, &source, &ca, &ua, &tenant))
		return -1;
	if (check_str(source, "source", 1) < 0 || check_str(tenant, "tenant_id", 1) < 0)
		return -1;
	if (props != Py_None && !PyDict_Check(props)) {
		PyErr_Format(PyExc_TypeError, "properties must be a dict, not %.100s", Py_TYPE(props)->tp_name);
		return -1;
	}
	int64_t dummy;
	if ((ca != Py_None && !PyDateTime_Check(ca) && !PyUnicode_Check(ca) && us_from_obj(ca, &dummy) < 0) ||
	    (ua != Py_None && !PyDateTime_Check(ua) && !PyUnicode_Check(ua) && us_from_obj(ua, &dummy) < 0))
		return -1;
	set_slot(&self->id, id);
	set_slot(&self->relation_type, type);
	set_slot(&self->source_id, src);
	set_slot(&self->target_id, tgt);
	if (props == Py_None) {
		Py_XSETREF(self->properties, PyDict_New());
		if (!self->properties)
			return -1;
	} else
		set_slot(&self->properties, props);
	self->weight = weight;
	set_slot(&self->source, source);
	set_slot(&self->created_at, ca);
	set_slot(&self->updated_at, ua);
	set_slot(&self->tenant_id, tenant);
	return 0;
}

static void relation_dealloc(RelationObject *self)
{
	Py_XDECREF(self->id);
	Py_XDECREF(self->relation_type);
	Py_XDECREF(self->source_id);
	Py_XDECREF(self->target_id);
	Py_XDECREF(self->source);
	Py_XDECREF(self->tenant_id);
	Py_XDECREF(self->properties);
	Py_XDECREF(self->created_at);
	Py_XDECREF(self->updated_at);
	free(self->raw);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

SIMPLE_GETSET(Relation, id)
SIMPLE_GETSET(Relation, relation_type)
SIMPLE_GETSET(Relation, source_id)
SIMPLE_GETSET(Relation, target_id)
SIMPLE_GETSET(Relation, source)
SIMPLE_GETSET(Relation, tenant_id)

static PyObject *Relation_get_properties(RelationObject *self, void *c)
{
	(void)c;
	return lazy_props(&self->properties, self->props_json);
}

static PyObject *Relation_get_created_at(RelationObject *self, void *c)
{
	(void)c;
	return lazy_time(&self->created_at, self->created_us);
}

static PyObject *Relation_get_updated_at(RelationObject *self, void *c)
{
	(void)c;
	return lazy_time(&self->updated_at, self->updated_us);
}

static PyObject *Relation_get_weight(RelationObject *self, void *c)
{
	(void)c;
	return PyFloat_FromDouble(self->weight);
}

static int Relation_set_weight(RelationObject *self, PyObject *v, void *c)
{
	(void)c;
	if (!v) {
		PyErr_SetString(PyExc_AttributeError, "weight cannot be deleted");
		return -1;
	}
	double w = PyFloat_AsDouble(v);
	if (w == -1.0 && PyErr_Occurred())
		return -1;
	self->weight = w;
	return 0;
}

static slot_desc R_id = {offsetof(RelationObject, id), 0, "id"};
static slot_desc R_type = {offsetof(RelationObject, relation_type), 0, "relation_type"};
static slot_desc R_src = {offsetof(RelationObject, source_id), 0, "source_id"};
static slot_desc R_tgt = {offsetof(RelationObject, target_id), 0, "target_id"};
static slot_desc R_source = {offsetof(RelationObject, source), 1, "source"};
static slot_desc R_tenant = {offsetof(RelationObject, tenant_id), 1, "tenant_id"};
static slot_desc R_props = {offsetof(RelationObject, properties), 2, "properties"};
static slot_desc R_ca = {offsetof(RelationObject, created_at), 4, "created_at"};
static slot_desc R_ua = {offsetof(RelationObject, updated_at), 4, "updated_at"};

static PyGetSetDef relation_getset[] = {
	{"id", (getter)Relation_get_id, generic_set, "unique id within its tenant", &R_id},
	{"relation_type", (getter)Relation_get_relation_type, generic_set, "type, e.g. 'WORKS_FOR'", &R_type},
	{"source_id", (getter)Relation_get_source_id, generic_set, "id of the entity it leaves", &R_src},
	{"target_id", (getter)Relation_get_target_id, generic_set, "id of the entity it enters", &R_tgt},
	{"properties", (getter)Relation_get_properties, generic_set, "dict of JSON values", &R_props},
	{"weight", (getter)Relation_get_weight, (setter)Relation_set_weight, "float in [0, 1]", NULL},
	{"source", (getter)Relation_get_source, generic_set, "provenance text or None", &R_source},
	{"created_at", (getter)Relation_get_created_at, generic_set, "naive UTC datetime", &R_ca},
	{"updated_at", (getter)Relation_get_updated_at, generic_set, "naive UTC datetime", &R_ua},
	{"tenant_id", (getter)Relation_get_tenant_id, generic_set, "tenant or None", &R_tenant},
	{NULL, NULL, NULL, NULL, NULL}};

/* ------------------------------------------------------------------ */
/* repr / eq / to_dict (shared by both types through the getset table)  */
/* ------------------------------------------------------------------ */

static PyObject *record_to_dict(PyObject *self, PyObject *unused)
{
	(void)unused;
	PyGetSetDef *gs = Py_TYPE(self)->tp_getset;
	if (PyObject_TypeCheck(self, &EntityType))
		gs = entity_getset;
	else if (PyObject_TypeCheck(self, &RelationType))
		gs = relation_getset;
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	for (; gs && gs->name; gs++) {
		PyObject *v = gs->get(self, gs->closure);
		if (!v || PyDict_SetItemString(d, gs->name, v) < 0) {
			Py_XDECREF(v);
			Py_DECREF(d);
			return NULL;
		}
		Py_DECREF(v);
	}
	return d;
}

static PyObject *record_repr(PyObject *self)
{
	int ent = PyObject_TypeCheck(self, &EntityType);
	PyObject *r;
	if (ent) {
		EntityObject *e = (EntityObject *)self;
		r = PyUnicode_FromFormat("Entity(id=%R, entity_type=%R)", e->id ? e->id : Py_None,
		                         e->entity_type ? e->entity_type : Py_None);
	} else {
		RelationObject *x = (RelationObject *)self;
		r = PyUnicode_FromFormat("Relation(id=%R, relation_type=%R, source_id=%R, target_id=%R)",
		                         x->id ? x->id : Py_None, x->relation_type ? x->relation_type : Py_None,
		                         x->source_id ? x->source_id : Py_None, x->target_id ? x->target_id : Py_None);
	}
	return r;
}

static PyObject *record_richcompare(PyObject *a, PyObject *b, int op)
{
	if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b))
		Py_RETURN_NOTIMPLEMENTED;
	PyObject *da = record_to_dict(a, NULL), *db = da ? record_to_dict(b, NULL) : NULL;
	PyObject *r = db ? PyObject_RichCompare(da, db, op) : NULL;
	Py_XDECREF(da);
	Py_XDECREF(db);
	return r;
}

static PyMethodDef record_methods[] = {
	{"to_dict", record_to_dict, METH_NOARGS, "All fields as a dict."},
	{"model_dump", record_to_dict, METH_NOARGS, "All fields as a dict (pydantic's name)."},
	{NULL, NULL, 0, NULL}};

static PyTypeObject EntityType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kgstore.Entity",
	.tp_basicsize = sizeof(EntityObject),
	.tp_dealloc = (destructor)entity_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Entity(id, entity_type, properties=None, embedding=None, source=None, created_at=None, "
	          "updated_at=None, tenant_id=None)",
	.tp_init = (initproc)entity_init,
	.tp_new = PyType_GenericNew,
	.tp_getset = entity_getset,
	.tp_methods = record_methods,
	.tp_repr = record_repr,
	.tp_richcompare = record_richcompare,
};

static PyTypeObject RelationType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kgstore.Relation",
	.tp_basicsize = sizeof(RelationObject),
	.tp_dealloc = (destructor)relation_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Relation(id, relation_type, source_id, target_id, properties=None, weight=1.0, source=None, "
	          "created_at=None, updated_at=None, tenant_id=None)",
	.tp_init = (initproc)relation_init,
	.tp_new = PyType_GenericNew,
	.tp_getset = relation_getset,
	.tp_methods = record_methods,
	.tp_repr = record_repr,
	.tp_richcompare = record_richcompare,
};

/* ------------------------------------------------------------------ */
/* Python record -> kg_entity / kg_relation (offsets into the arena)    */
/* ------------------------------------------------------------------ */

static int put_str_attr(arena *a, PyObject *v, const char *what, int allow_none, const char **field)
{
	*field = NULL;
	if (v == NULL || v == Py_None) {
		if (allow_none)
			return 0;
		PyErr_Format(PyExc_ValueError, "%s is missing; give a non-empty str", what);
		return -1;
	}
	if (!PyUnicode_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what, Py_TYPE(v)->tp_name);
		return -1;
	}
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(v, &n);
	if (!s)
		return -1;
	if ((Py_ssize_t)strlen(s) != n) {
		PyErr_Format(PyExc_ValueError, "%s contains a NUL character", what);
		return -1;
	}
	size_t off;
	if (arena_str(a, s, (size_t)n, &off) < 0)
		return -1;
	*field = OFF(off);
	return 0;
}

static int put_embedding(arena *a, PyObject *v, kg_entity *e)
{
	e->embedding = NULL;
	e->embedding_dim = 0;
	if (!v || v == Py_None)
		return 0;
	PyObject *seq = PySequence_Fast(v, "embedding must be a sequence of floats");
	if (!seq)
		return -1;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	size_t pad = (4 - a->len % 4) % 4;
	if (arena_reserve(a, pad + (size_t)n * sizeof(float)) < 0) {
		Py_DECREF(seq);
		return -1;
	}
	a->len += pad;
	size_t off = a->len;
	PyObject **items = PySequence_Fast_ITEMS(seq);
	for (Py_ssize_t i = 0; i < n; i++) {
		double d = PyFloat_AsDouble(items[i]);
		if (d == -1.0 && PyErr_Occurred()) {
			Py_DECREF(seq);
			return -1;
		}
		float f = (float)d;
		memcpy(a->buf + a->len, &f, sizeof f);
		a->len += sizeof f;
	}
	Py_DECREF(seq);
	e->embedding = (const float *)(void *)OFF(off);
	e->embedding_dim = (size_t)n;
	return 0;
}

static int put_props_json(arena *a, const char *json, const char **field)
{
	size_t off;
	if (arena_str(a, json, strlen(json), &off) < 0)
		return -1;
	*field = OFF(off);
	return 0;
}

/* Fills *e (pointers as arena offsets) from an Entity, or from any object
 * with the same attributes (duck typing, e.g. the original's model). */
static int entity_in(arena *a, PyObject *obj, kg_entity *e)
{
	memset(e, 0, sizeof *e);
	if (PyObject_TypeCheck(obj, &EntityType)) {
		EntityObject *o = (EntityObject *)obj;
		if (put_str_attr(a, o->id, "Entity.id", 0, &e->id) < 0 ||
		    put_str_attr(a, o->entity_type, "Entity.entity_type", 0, &e->entity_type) < 0 ||
		    put_str_attr(a, o->source, "Entity.source", 1, &e->source) < 0)
			return -1;
		size_t off;
		if (o->properties) {
			if (json_properties(a, o->properties, &off) < 0)
				return -1;
			e->properties = OFF(off);
		} else if (o->props_json && put_props_json(a, o->props_json, &e->properties) < 0)
			return -1;
		if (o->embedding) {
			if (put_embedding(a, o->embedding, e) < 0)
				return -1;
		} else if (o->emb) {
			size_t pad = (4 - a->len % 4) % 4;
			if (arena_reserve(a, pad + o->dim * sizeof(float)) < 0)
				return -1;
			a->len += pad;
			off = a->len;
			if (arena_put(a, o->emb, o->dim * sizeof(float)) < 0)
				return -1;
			e->embedding = (const float *)(void *)OFF(off);
			e->embedding_dim = o->dim;
		}
		if (o->created_at) {
			if (us_from_obj(o->created_at, &e->created_at) < 0)
				return -1;
		} else
			e->created_at = o->created_us;
		if (o->updated_at) {
			if (us_from_obj(o->updated_at, &e->updated_at) < 0)
				return -1;
		} else
			e->updated_at = o->updated_us;
		return 0;
	}
	/* Duck typing: attributes read one by one. */
	static const char *names[] = {"id", "entity_type", "properties", "embedding", "source", "created_at", "updated_at"};
	PyObject *v[7] = {0};
	int rc = -1;
	for (int i = 0; i < 7; i++) {
		v[i] = PyObject_GetAttrString(obj, names[i]);
		if (!v[i]) {
			if (i < 2) {
				PyErr_Format(PyExc_TypeError, "expected an Entity, got %.100s (it has no '%s')",
				             Py_TYPE(obj)->tp_name, names[i]);
				goto out;
			}
			PyErr_Clear();
		}
	}
	size_t off;
	if (put_str_attr(a, v[0], "Entity.id", 0, &e->id) < 0 ||
	    put_str_attr(a, v[1], "Entity.entity_type", 0, &e->entity_type) < 0 ||
	    json_properties(a, v[2], &off) < 0)
		goto out;
	e->properties = OFF(off);
	if (put_embedding(a, v[3], e) < 0 || put_str_attr(a, v[4], "Entity.source", 1, &e->source) < 0 ||
	    us_from_obj(v[5], &e->created_at) < 0 || us_from_obj(v[6], &e->updated_at) < 0)
		goto out;
	rc = 0;
out:
	for (int i = 0; i < 7; i++)
		Py_XDECREF(v[i]);
	return rc;
}

static void entity_fix(arena *a, kg_entity *e)
{
	e->id = OFF_TO_PTR(const char *, a, e->id);
	e->entity_type = OFF_TO_PTR(const char *, a, e->entity_type);
	e->properties = OFF_TO_PTR(const char *, a, e->properties);
	e->source = OFF_TO_PTR(const char *, a, e->source);
	e->embedding = OFF_TO_PTR(const float *, a, e->embedding);
}

static int relation_in(arena *a, PyObject *obj, kg_relation *r)
{
	memset(r, 0, sizeof *r);
	r->weight = 1.0;
	if (PyObject_TypeCheck(obj, &RelationType)) {
		RelationObject *o = (RelationObject *)obj;
		if (put_str_attr(a, o->id, "Relation.id", 0, &r->id) < 0 ||
		    put_str_attr(a, o->relation_type, "Relation.relation_type", 0, &r->relation_type) < 0 ||
		    put_str_attr(a, o->source_id, "Relation.source_id", 0, &r->source_id) < 0 ||
		    put_str_attr(a, o->target_id, "Relation.target_id", 0, &r->target_id) < 0 ||
		    put_str_attr(a, o->source, "Relation.source", 1, &r->source) < 0)
			return -1;
		if (o->properties) {
			size_t off;
			if (json_properties(a, o->properties, &off) < 0)
				return -1;
			r->properties = OFF(off);
		} else if (o->props_json && put_props_json(a, o->props_json, &r->properties) < 0)
			return -1;
		r->weight = o->weight;
		if (o->created_at) {
			if (us_from_obj(o->created_at, &r->created_at) < 0)
				return -1;
		} else
			r->created_at = o->created_us;
		if (o->updated_at) {
			if (us_from_obj(o->updated_at, &r->updated_at) < 0)
				return -1;
		} else
			r->updated_at = o->updated_us;
		return 0;
	}
	static const char *names[] = {"id",     "relation_type", "source_id", "target_id",
	                              "properties", "weight", "source", "created_at", "updated_at"};
	PyObject *v[9] = {0};
	int rc = -1;
	for (int i = 0; i < 9; i++) {
		v[i] = PyObject_GetAttrString(obj, names[i]);
		if (!v[i]) {
			if (i < 4) {
				PyErr_Format(PyExc_TypeError, "expected a Relation, got %.100s (it has no '%s')",
				             Py_TYPE(obj)->tp_name, names[i]);
				goto out;
			}
			PyErr_Clear();
		}
	}
	size_t off;
	if (put_str_attr(a, v[0], "Relation.id", 0, &r->id) < 0 ||
	    put_str_attr(a, v[1], "Relation.relation_type", 0, &r->relation_type) < 0 ||
	    put_str_attr(a, v[2], "Relation.source_id", 0, &r->source_id) < 0 ||
	    put_str_attr(a, v[3], "Relation.target_id", 0, &r->target_id) < 0 ||
	    json_properties(a, v[4], &off) < 0)
		goto out;
	r->properties = OFF(off);
	if (v[5] && v[5] != Py_None) {
		r->weight = PyFloat_AsDouble(v[5]);
		if (r->weight == -1.0 && PyErr_Occurred())
			goto out;
	}
	if (put_str_attr(a, v[6], "Relation.source", 1, &r->source) < 0 || us_from_obj(v[7], &r->created_at) < 0 ||
	    us_from_obj(v[8], &r->updated_at) < 0)
		goto out;
	rc = 0;
out:
	for (int i = 0; i < 9; i++)
		Py_XDECREF(v[i]);
	return rc;
}

static void relation_fix(arena *a, kg_relation *r)
{
	r->id = OFF_TO_PTR(const char *, a, r->id);
	r->relation_type = OFF_TO_PTR(const char *, a, r->relation_type);
	r->source_id = OFF_TO_PTR(const char *, a, r->source_id);
	r->target_id = OFF_TO_PTR(const char *, a, r->target_id);
	r->properties = OFF_TO_PTR(const char *, a, r->properties);
	r->source = OFF_TO_PTR(const char *, a, r->source);
}

/* ------------------------------------------------------------------ */
/* Options (owned copies, so a degrading store can reopen its primary   */
/* from a C thread long after the Python call returned)                 */
/* ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	kg_pg_pool *pool;
} PgPoolObject;

static PyTypeObject PgPoolType;

#define OPT_NSTR 12
typedef struct opt_holder {
	kg_options o;
	char *strs[OPT_NSTR];
	int nstr;
	PyObject *pool_ref; /* the PgPool object kept alive while used */
} opt_holder;

static void holder_free(opt_holder *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->nstr; i++)
		free(h->strs[i]);
	Py_XDECREF(h->pool_ref);
	free(h);
}

static int holder_str(opt_holder *h, PyObject *d, const char *key, const char **field)
{
	PyObject *v = PyDict_GetItemString(d, key); /* borrowed */
	if (!v || v == Py_None)
		return 0;
	if (!PyUnicode_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", key, Py_TYPE(v)->tp_name);
		return -1;
	}
	const char *s = PyUnicode_AsUTF8(v);
	if (!s)
		return -1;
	char *c = strdup(s);
	if (!c) {
		PyErr_NoMemory();
		return -1;
	}
	h->strs[h->nstr++] = c;
	*field = c;
	return 0;
}

static int holder_num(PyObject *d, const char *key, double *out, int *set)
{
	PyObject *v = PyDict_GetItemString(d, key);
	*set = 0;
	if (!v || v == Py_None)
		return 0;
	if (PyBool_Check(v)) {
		*out = v == Py_True;
	} else {
		*out = PyFloat_AsDouble(v);
		if (*out == -1.0 && PyErr_Occurred()) {
			PyErr_Format(PyExc_TypeError, "%s must be a number", key);
			return -1;
		}
	}
	*set = 1;
	return 0;
}

/* Builds options from a dict of the seed's constructor arguments. */
static opt_holder *holder_from_dict(PyObject *d)
{
	if (!PyDict_Check(d)) {
		PyErr_SetString(PyExc_TypeError, "options must be a dict");
		return NULL;
	}
	opt_holder *h = calloc(1, sizeof *h);
	if (!h) {
		PyErr_NoMemory();
		return NULL;
	}
	kg_options init = KG_OPTIONS_INIT;
	h->o = init;
	const char *backend = NULL;
	if (holder_str(h, d, "backend", &backend) < 0)
		goto fail;
	if (backend) {
		if (!strcmp(backend, "memory"))
			h->o.backend = KG_BACKEND_MEMORY;
		else if (!strcmp(backend, "sqlite"))
			h->o.backend = KG_BACKEND_SQLITE;
		else if (!strcmp(backend, "postgresql") || !strcmp(backend, "postgres"))
			h->o.backend = KG_BACKEND_POSTGRES;
		else {
			PyErr_Format(PyExc_ValueError, "unknown backend '%s' (memory, sqlite, postgresql)", backend);
			goto fail;
		}
	}
	if (holder_str(h, d, "path", &h->o.path) < 0 || holder_str(h, d, "journal_mode", &h->o.journal_mode) < 0 ||
	    holder_str(h, d, "synchronous", &h->o.synchronous) < 0 ||
	    holder_str(h, d, "conninfo", &h->o.conninfo) < 0 || holder_str(h, d, "host", &h->o.host) < 0 ||
	    holder_str(h, d, "user", &h->o.user) < 0 || holder_str(h, d, "password", &h->o.password) < 0 ||
	    holder_str(h, d, "database", &h->o.database) < 0 || holder_str(h, d, "sslmode", &h->o.sslmode) < 0 ||
	    holder_str(h, d, "read_conninfo", &h->o.read_conninfo) < 0 || holder_str(h, d, "tenancy", &h->o.tenancy) < 0)
		goto fail;
	double x;
	int set;
#define NUM(key, field, type)                                                                                          \
	do {                                                                                                           \
		if (holder_num(d, key, &x, &set) < 0)                                                                   \
			goto fail;                                                                                         \
		if (set)                                                                                               \
			h->o.field = (type)x;                                                                              \
	} while (0)
	NUM("memory_budget", memory_budget, size_t);
	NUM("timeout", timeout, double);
	NUM("check_same_thread", check_same_thread, int);
	NUM("cache_size", cache_size, long);
	NUM("port", port, int);
	NUM("min_pool_size", min_pool_size, int);
	NUM("max_pool_size", max_pool_size, int);
	NUM("pool_timeout", pool_timeout, double);
	NUM("ssl", ssl, int);
	NUM("enable_pgvector", enable_pgvector, int);
	NUM("pgvector_fallback", pgvector_fallback, int);
	NUM("read_your_writes", read_your_writes, int);
#undef NUM
	PyObject *pool = PyDict_GetItemString(d, "pool");
	if (pool && pool != Py_None) {
		if (!PyObject_TypeCheck(pool, &PgPoolType) || !((PgPoolObject *)pool)->pool) {
			PyErr_SetString(PyExc_TypeError, "pool must be an open kgstore pool (DatabaseManager.pool / PgPool)");
			goto fail;
		}
		Py_INCREF(pool);
		h->pool_ref = pool;
		h->o.pool = ((PgPoolObject *)pool)->pool;
	}
	return h;
fail:
	holder_free(h);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Store                                                                */
/* ------------------------------------------------------------------ */

typedef struct StoreObject {
	PyObject_HEAD
	kg_store *s;
	struct StoreObject *parent; /* base of a view / transaction (strong ref) */
	int is_txn;
	int children;               /* open views and transactions (base only) */
	int busy;                   /* calls running without the GIL */
	opt_holder *holder;         /* options a degrading store reopens from */
	PyObject *weakrefs;
} StoreObject;

static PyTypeObject StoreType;

static int enter(StoreObject *self)
{
	if (!self->s) {
		PyErr_SetString(g_errors[-KG_EINVAL] ? g_errors[-KG_EINVAL] : PyExc_ValueError,
		                self->is_txn ? "this transaction has ended; start a new one"
		                             : "the store is closed; open it again (initialize())");
		return -1;
	}
	self->busy++;
	return 0;
}

#define LEAVE(self) ((self)->busy--)

/* The error of the last failed call on this handle by this thread. */
static PyObject *store_error(StoreObject *self, int rc)
{
	return raise_kg(rc, kg_errmsg(self->s));
}

static PyObject *new_child(StoreObject *parent, kg_store *s, int is_txn)
{
	StoreObject *o = (StoreObject *)StoreType.tp_alloc(&StoreType, 0);
	if (!o) {
		if (is_txn)
			kg_rollback(s);
		else
			kg_close(s);
		return NULL;
	}
	o->s = s;
	o->is_txn = is_txn;
	Py_INCREF(parent); /* the parent must outlive its views and transactions */
	o->parent = parent;
	parent->children++;
	return (PyObject *)o;
}

/* Waits (GIL released) until no call of another thread runs on self. */
static void wait_idle(StoreObject *self)
{
	while (self->busy > 0) {
		Py_BEGIN_ALLOW_THREADS usleep(1000);
		Py_END_ALLOW_THREADS
	}
}

static void detach(StoreObject *self)
{
	if (self->parent) {
		self->parent->children--;
	}
}

static PyObject *store_close(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (!self->s)
		Py_RETURN_NONE;
	if (self->children > 0)
		return raise_kg(KG_EINVAL, "this store still has open tenant views or transactions; close them first");
	wait_idle(self);
	if (!self->s)
		Py_RETURN_NONE;
	kg_store *s = self->s;
	self->s = NULL;
	Py_BEGIN_ALLOW_THREADS kg_close(s);
	Py_END_ALLOW_THREADS
	holder_free(self->holder);
	self->holder = NULL;
	detach(self);
	Py_RETURN_NONE;
}

static void store_dealloc(StoreObject *self)
{
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	/* Children hold a reference to their parent, so a base reaches here
	 * only after its views and transactions are gone. */
	if (self->s) {
		kg_store *s = self->s;
		self->s = NULL;
		Py_BEGIN_ALLOW_THREADS kg_close(s);
		Py_END_ALLOW_THREADS
		detach(self);
	}
	holder_free(self->holder);
	Py_XDECREF(self->parent);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static const char *as_id(PyObject *v, const char *what)
{
	if (!PyUnicode_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what, Py_TYPE(v)->tp_name);
		return NULL;
	}
	return PyUnicode_AsUTF8(v);
}

/* --- single records ---------------------------------------------------- */

typedef int (*ent_fn)(kg_store *, const kg_entity *);
typedef int (*rel_fn)(kg_store *, const kg_relation *);

/* Runs one add/update/upsert: efn for an Entity, else rfn for a Relation. */
static PyObject *write_record(StoreObject *self, PyObject *obj, ent_fn efn, rel_fn rfn)
{
	arena a = {0};
	kg_entity e;
	kg_relation r;
	if ((efn ? entity_in(&a, obj, &e) : relation_in(&a, obj, &r)) < 0 || enter(self) < 0) {
		free(a.buf);
		return NULL;
	}
	if (efn)
		entity_fix(&a, &e);
	else
		relation_fix(&a, &r);
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = efn ? efn(self->s, &e) : rfn(self->s, &r);
	Py_END_ALLOW_THREADS
	free(a.buf);
	PyObject *res = rc ? store_error(self, rc) : (Py_INCREF(Py_None), Py_None);
	LEAVE(self);
	return res;
}

static PyObject *store_add_entity(StoreObject *self, PyObject *o) { return write_record(self, o, kg_add_entity, NULL); }
static PyObject *store_update_entity(StoreObject *self, PyObject *o)
{
	return write_record(self, o, kg_update_entity, NULL);
}
static PyObject *store_upsert_entity(StoreObject *self, PyObject *o)
{
	return write_record(self, o, kg_upsert_entity, NULL);
}
static PyObject *store_add_relation(StoreObject *self, PyObject *o)
{
	return write_record(self, o, NULL, kg_add_relation);
}
static PyObject *store_update_relation(StoreObject *self, PyObject *o)
{
	return write_record(self, o, NULL, kg_update_relation);
}
static PyObject *store_upsert_relation(StoreObject *self, PyObject *o)
{
	return write_record(self, o, NULL, kg_upsert_relation);
}

static PyObject *store_get_entity(StoreObject *self, PyObject *arg)
{
	const char *id = as_id(arg, "entity_id");
	if (!id || enter(self) < 0)
		return NULL;
	kg_entity *e = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_get_entity(self->s, id, &e);
	Py_END_ALLOW_THREADS
	PyObject *res;
	if (rc == KG_OK)
		res = entity_from_kg(e, 1);
	else if (rc == KG_ENOTFOUND)
		res = (Py_INCREF(Py_None), Py_None);
	else
		res = store_error(self, rc);
	LEAVE(self);
	return res;
}

static PyObject *store_get_relation(StoreObject *self, PyObject *arg)
{
	const char *id = as_id(arg, "relation_id");
	if (!id || enter(self) < 0)
		return NULL;
	kg_relation *r = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_get_relation(self->s, id, &r);
	Py_END_ALLOW_THREADS
	PyObject *res;
	if (rc == KG_OK)
		res = relation_from_kg(r, 1);
	else if (rc == KG_ENOTFOUND)
		res = (Py_INCREF(Py_None), Py_None);
	else
		res = store_error(self, rc);
	LEAVE(self);
	return res;
}

/* Runs fn(store, arg) for a str arg (an id, a property name); None or raises. */
static PyObject *call_with_str(StoreObject *self, PyObject *arg, int (*fn)(kg_store *, const char *), const char *what)
{
	const char *id = as_id(arg, what);
	if (!id || enter(self) < 0)
		return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = fn(self->s, id);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : (Py_INCREF(Py_None), Py_None);
	LEAVE(self);
	return res;
}

static PyObject *store_delete_entity(StoreObject *self, PyObject *arg)
{
	return call_with_str(self, arg, kg_delete_entity, "entity_id");
}
static PyObject *store_delete_relation(StoreObject *self, PyObject *arg)
{
	return call_with_str(self, arg, kg_delete_relation, "relation_id");
}

/* --- bulk ------------------------------------------------------------- */

/* add_entities / add_relations: every record is copied into one arena
 * before the one library call. */
static PyObject *add_records(StoreObject *self, PyObject *args, PyObject *kw, int relations)
{
	static char *ent_kwlist[] = {"entities", "skip_existing", NULL};
	static char *rel_kwlist[] = {"relations", "skip_existing", NULL};
	PyObject *seq_in;
	int skip = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, relations ? "O|p:add_relations" : "O|p:add_entities",
	                                 relations ? rel_kwlist : ent_kwlist, &seq_in, &skip))
		return NULL;
	PyObject *seq = PySequence_Fast(seq_in, relations ? "relations must be a sequence of Relation"
	                                                  : "entities must be a sequence of Entity");
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	void *recs = calloc(n ? (size_t)n : 1, relations ? sizeof(kg_relation) : sizeof(kg_entity));
	kg_entity *ents = recs;
	kg_relation *rels = recs;
	arena a = {0};
	PyObject *res = NULL;
	if (!recs) {
		PyErr_NoMemory();
		goto out;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
		if ((relations ? relation_in(&a, item, &rels[i]) : entity_in(&a, item, &ents[i])) < 0)
			goto out;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		if (relations)
			relation_fix(&a, &rels[i]);
		else
			entity_fix(&a, &ents[i]);
	}
	if (enter(self) < 0)
		goto out;
	unsigned flags = skip ? KG_BULK_SKIP_EXISTING : 0;
	size_t added = 0;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = relations ? kg_add_relations(self->s, rels, (size_t)n, flags, &added)
	                                      : kg_add_entities(self->s, ents, (size_t)n, flags, &added);
	Py_END_ALLOW_THREADS
	res = rc ? store_error(self, rc) : PyLong_FromSize_t(added);
	LEAVE(self);
out:
	free(a.buf);
	free(recs);
	Py_DECREF(seq);
	return res;
}

static PyObject *store_add_entities(StoreObject *self, PyObject *args, PyObject *kw)
{
	return add_records(self, args, kw, 0);
}
static PyObject *store_add_relations(StoreObject *self, PyObject *args, PyObject *kw)
{
	return add_records(self, args, kw, 1);
}

/* --- lists ------------------------------------------------------------ */

/* Takes every item out of the list (it is freed with count 0). with_scores:
 * a list of (Entity, score) pairs. */
static PyObject *entity_list_to_py(kg_entity_list *l, int with_scores)
{
	PyObject *out = PyList_New((Py_ssize_t)l->count);
	if (!out) {
		kg_entity_list_free(l);
		return NULL;
	}
	for (size_t i = 0; i < l->count; i++) {
		PyObject *e = entity_from_kg(l->items[i], 1);
		l->items[i] = NULL;
		if (e && with_scores) {
			PyObject *pair = Py_BuildValue("(Nd)", e, l->scores ? l->scores[i] : 0.0);
			e = pair;
		}
		if (!e) {
			for (size_t j = i + 1; j < l->count; j++)
				kg_entity_free(l->items[j]);
			l->count = 0;
			kg_entity_list_free(l);
			Py_DECREF(out);
			return NULL;
		}
		PyList_SET_ITEM(out, (Py_ssize_t)i, e);
	}
	l->count = 0; /* the items now belong to the Entity objects */
	kg_entity_list_free(l);
	return out;
}

static PyObject *relation_list_to_py(kg_relation_list *l)
{
	PyObject *out = PyList_New((Py_ssize_t)l->count);
	if (!out) {
		kg_relation_list_free(l);
		return NULL;
	}
	for (size_t i = 0; i < l->count; i++) {
		PyObject *r = relation_from_kg(l->items[i], 1);
		l->items[i] = NULL;
		if (!r) {
			for (size_t j = i + 1; j < l->count; j++)
				kg_relation_free(l->items[j]);
			l->count = 0;
			kg_relation_list_free(l);
			Py_DECREF(out);
			return NULL;
		}
		PyList_SET_ITEM(out, (Py_ssize_t)i, r);
	}
	l->count = 0;
	kg_relation_list_free(l);
	return out;
}

/* Paths become (nodes tuple, edges tuple, score); the Python layer wraps
 * them in Path. Records shared by several paths are one Python object. */
static PyObject *path_list_to_py(kg_path_list *pl)
{
	PyObject *out = PyList_New((Py_ssize_t)pl->count), *seen = PyDict_New();
	if (!out || !seen)
		goto fail;
	for (size_t i = 0; i < pl->count; i++) {
		kg_path *p = &pl->items[i];
		PyObject *nodes = PyTuple_New((Py_ssize_t)p->n_nodes), *edges = PyTuple_New((Py_ssize_t)p->n_edges);
		if (!nodes || !edges) {
			Py_XDECREF(nodes);
			Py_XDECREF(edges);
			goto fail;
		}
		for (size_t k = 0; k < p->n_nodes + p->n_edges; k++) {
			void *rec = k < p->n_nodes ? (void *)p->nodes[k] : (void *)p->edges[k - p->n_nodes];
			PyObject *key = PyLong_FromVoidPtr(rec);
			PyObject *obj = key ? PyDict_GetItemWithError(seen, key) : NULL;
			if (obj)
				Py_INCREF(obj);
			else if (key && !PyErr_Occurred()) {
				obj = k < p->n_nodes ? entity_from_kg(rec, 0) : relation_from_kg(rec, 0);
				if (obj && PyDict_SetItem(seen, key, obj) < 0)
					Py_CLEAR(obj);
			}
			Py_XDECREF(key);
			if (!obj) {
				Py_DECREF(nodes);
				Py_DECREF(edges);
				goto fail;
			}
			if (k < p->n_nodes)
				PyTuple_SET_ITEM(nodes, (Py_ssize_t)k, obj);
			else
				PyTuple_SET_ITEM(edges, (Py_ssize_t)(k - p->n_nodes), obj);
		}
		PyObject *t = Py_BuildValue("(NNd)", nodes, edges, p->score);
		if (!t)
			goto fail;
		PyList_SET_ITEM(out, (Py_ssize_t)i, t);
	}
	Py_DECREF(seen);
	kg_path_list_free(pl);
	return out;
fail:
	Py_XDECREF(out);
	Py_XDECREF(seen);
	kg_path_list_free(pl);
	return NULL;
}

static int parse_direction(PyObject *v, kg_direction *d)
{
	*d = KG_OUT;
	if (!v || v == Py_None)
		return 0;
	const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
	if (s && (!strcmp(s, "outgoing") || !strcmp(s, "out")))
		*d = KG_OUT;
	else if (s && (!strcmp(s, "incoming") || !strcmp(s, "in")))
		*d = KG_IN;
	else if (s && !strcmp(s, "both"))
		*d = KG_BOTH;
	else {
		PyErr_SetString(g_errors[-KG_EINVAL] ? g_errors[-KG_EINVAL] : PyExc_ValueError,
		                "direction must be 'outgoing', 'incoming' or 'both'");
		return -1;
	}
	return 0;
}

static PyObject *store_neighbors(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"entity_id", "relation_type", "direction", NULL};
	const char *id, *type = NULL;
	PyObject *dir_o = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zO:neighbors", kwlist, &id, &type, &dir_o))
		return NULL;
	kg_direction dir;
	if (parse_direction(dir_o, &dir) < 0 || enter(self) < 0)
		return NULL;
	kg_entity_list *l = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_neighbors(self->s, id, type, dir, &l);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : entity_list_to_py(l, 0);
	LEAVE(self);
	return res;
}

static PyObject *store_relations_of(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"entity_id", "relation_type", "direction", NULL};
	const char *id, *type = NULL;
	PyObject *dir_o = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zO:relations_of", kwlist, &id, &type, &dir_o))
		return NULL;
	kg_direction dir;
	if (parse_direction(dir_o, &dir) < 0 || enter(self) < 0)
		return NULL;
	kg_relation_list *l = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_relations_of(self->s, id, type, dir, &l);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : relation_list_to_py(l);
	LEAVE(self);
	return res;
}

static PyObject *store_traverse(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"start", "relation_type", "max_depth", "max_results", NULL};
	const char *id, *type = NULL;
	int depth = 3;
	Py_ssize_t max = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zin:traverse", kwlist, &id, &type, &depth, &max))
		return NULL;
	if (max < 0)
		return raise_kg(KG_EINVAL, "max_results must be >= 0 (0 = no limit)");
	if (enter(self) < 0)
		return NULL;
	kg_path_list *l = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_traverse(self->s, id, type, depth, (size_t)max, &l);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : path_list_to_py(l);
	LEAVE(self);
	return res;
}

static PyObject *store_find_paths(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"source", "target", "max_depth", "max_paths", NULL};
	const char *src, *tgt;
	int depth = 5;
	Py_ssize_t max = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|in:find_paths", kwlist, &src, &tgt, &depth, &max))
		return NULL;
	if (max < 0)
		return raise_kg(KG_EINVAL, "max_paths must be >= 0 (0 = no limit)");
	if (enter(self) < 0)
		return NULL;
	kg_path_list *l = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_find_paths(self->s, src, tgt, depth, (size_t)max, &l);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : path_list_to_py(l);
	LEAVE(self);
	return res;
}

static PyObject *store_subgraph(StoreObject *self, PyObject *arg)
{
	PyObject *seq = PySequence_Fast(arg, "entity_ids must be a sequence of str");
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	const char **ids = calloc(n ? (size_t)n : 1, sizeof *ids);
	PyObject *res = NULL;
	if (!ids) {
		PyErr_NoMemory();
		goto out;
	}
	/* The strings belong to `seq`'s items, which `seq` keeps alive (a
	 * list passed in is copied by PySequence_Fast only if not a list; a
	 * list changed by another thread meanwhile could drop an item, so
	 * take a tuple copy). */
	{
		PyObject *t = PySequence_Tuple(seq);
		if (!t)
			goto out;
		Py_SETREF(seq, t);
	}
	for (Py_ssize_t i = 0; i < n; i++)
		if (!(ids[i] = as_id(PyTuple_GET_ITEM(seq, i), "entity id")))
			goto out;
	if (enter(self) < 0)
		goto out;
	kg_subgraph *g = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_subgraph_get(self->s, ids, (size_t)n, &g);
	Py_END_ALLOW_THREADS
	if (rc)
		res = store_error(self, rc);
	else {
		PyObject *ents = entity_list_to_py(g->entities, 0);
		g->entities = NULL;
		PyObject *rels = relation_list_to_py(g->relations);
		g->relations = NULL;
		kg_subgraph_free(g);
		if (ents && rels)
			res = PyTuple_Pack(2, ents, rels);
		Py_XDECREF(ents);
		Py_XDECREF(rels);
	}
	LEAVE(self);
out:
	free(ids);
	Py_DECREF(seq);
	return res;
}

static PyObject *store_list_entities(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"entity_type", "limit", "offset", NULL};
	const char *type = NULL;
	Py_ssize_t limit = 0, offset = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|znn:list_entities", kwlist, &type, &limit, &offset))
		return NULL;
	if (limit < 0 || offset < 0)
		return raise_kg(KG_EINVAL, "limit and offset must be >= 0 (limit 0 = no limit)");
	if (enter(self) < 0)
		return NULL;
	kg_entity_list *l = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_list_entities(self->s, type, (size_t)limit, (size_t)offset, &l);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : entity_list_to_py(l, 0);
	LEAVE(self);
	return res;
}

/* Relations in insertion order through the library's iterator, batch by
 * batch without the GIL. */
static PyObject *store_list_relations(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"relation_type", "limit", "offset", NULL};
	const char *type = NULL;
	Py_ssize_t limit = 0, offset = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|znn:list_relations", kwlist, &type, &limit, &offset))
		return NULL;
	if (limit < 0 || offset < 0)
		return raise_kg(KG_EINVAL, "limit and offset must be >= 0 (limit 0 = no limit)");
	if (enter(self) < 0)
		return NULL;
	PyObject *out = PyList_New(0);
	kg_relation_iter *it = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_relation_iter_new(self->s, type, &it);
	Py_END_ALLOW_THREADS
	if (rc) {
		Py_XDECREF(out);
		out = store_error(self, rc);
		goto done;
	}
	size_t skipped = 0;
	while (out) {
		/* Copy up to 256 records per GIL release. */
		kg_relation *batch[256];
		size_t nb = 0;
		Py_BEGIN_ALLOW_THREADS while (nb < 256)
		{
			const kg_relation *r;
			rc = kg_relation_iter_next(it, &r);
			if (rc <= 0)
				break;
			if (skipped < (size_t)offset) {
				skipped++;
				continue;
			}
			/* The iterator owns r: keep a one-block copy. */
			kg_relation *c = kg_relation_dup(r);
			if (!c) {
				rc = KG_ENOMEM;
				break;
			}
			batch[nb++] = c;
			if (limit && PyList_GET_SIZE(out) + (Py_ssize_t)nb >= limit) {
				rc = 0;
				break;
			}
		}
		Py_END_ALLOW_THREADS
		for (size_t i = 0; i < nb; i++) {
			PyObject *o = out ? relation_from_kg(batch[i], 1) : NULL;
			if (!o) {
				if (out)
					Py_CLEAR(out);
				else
					free(batch[i]);
				continue;
			}
			if (PyList_Append(out, o) < 0)
				Py_CLEAR(out);
			Py_DECREF(o);
		}
		if (rc == KG_ENOMEM) {
			Py_XDECREF(out);
			out = PyErr_NoMemory();
		} else if (rc < 0) {
			Py_XDECREF(out);
			out = store_error(self, rc);
		}
		if (rc <= 0 || !out)
			break;
	}
	kg_relation_iter_free(it);
done:
	LEAVE(self);
	return out;
}

/* --- search ----------------------------------------------------------- */

static PyObject *store_vector_search(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"query", "entity_type", "k", "threshold", NULL};
	PyObject *q;
	const char *type = NULL;
	Py_ssize_t k = 10;
	double thr = -1.0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|znd:vector_search", kwlist, &q, &type, &k, &thr))
		return NULL;
	if (k < 0)
		return raise_kg(KG_EINVAL, "max_results must be >= 0");
	arena a = {0};
	kg_entity tmp;
	if (put_embedding(&a, q, &tmp) < 0) {
		free(a.buf);
		return NULL;
	}
	const float *vec = OFF_TO_PTR(const float *, &a, tmp.embedding);
	if (enter(self) < 0) {
		free(a.buf);
		return NULL;
	}
	kg_entity_list *l = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_vector_search(self->s, vec, tmp.embedding_dim, type, (size_t)k, thr, &l);
	Py_END_ALLOW_THREADS
	free(a.buf);
	PyObject *res = rc ? store_error(self, rc) : entity_list_to_py(l, 1);
	LEAVE(self);
	return res;
}

static PyObject *store_text_search(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"query", "entity_type", "k", "threshold", "method", NULL};
	const char *q, *type = NULL, *method = "bm25";
	Py_ssize_t k = 10;
	double thr = 0.0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zndz:text_search", kwlist, &q, &type, &k, &thr, &method))
		return NULL;
	kg_text_method m;
	if (!method || !strcmp(method, "bm25"))
		m = KG_TEXT_BM25;
	else if (!strcmp(method, "jaccard"))
		m = KG_TEXT_JACCARD;
	else if (!strcmp(method, "cosine"))
		m = KG_TEXT_COSINE;
	else if (!strcmp(method, "levenshtein"))
		m = KG_TEXT_LEVENSHTEIN;
	else
		return raise_kg(KG_EINVAL, "method must be 'bm25', 'jaccard', 'cosine' or 'levenshtein'");
	if (k < 0)
		return raise_kg(KG_EINVAL, "max_results must be >= 0");
	if (enter(self) < 0)
		return NULL;
	kg_entity_list *l = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_text_search(self->s, q, type, (size_t)k, thr, m, &l);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : entity_list_to_py(l, 1);
	LEAVE(self);
	return res;
}

static PyObject *store_add_indexed_property(StoreObject *self, PyObject *arg)
{
	return call_with_str(self, arg, kg_add_indexed_property, "property name");
}

static PyObject *store_lookup_by_property(StoreObject *self, PyObject *args)
{
	const char *name;
	PyObject *value;
	if (!PyArg_ParseTuple(args, "sO:lookup_by_property", &name, &value))
		return NULL;
	arena a = {0};
	if (json_value(&a, value, 0) < 0 || arena_putc(&a, 0) < 0) {
		free(a.buf);
		return NULL;
	}
	if (enter(self) < 0) {
		free(a.buf);
		return NULL;
	}
	kg_entity_list *l = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_lookup_by_property(self->s, name, a.buf, &l);
	Py_END_ALLOW_THREADS
	free(a.buf);
	PyObject *res = rc ? store_error(self, rc) : entity_list_to_py(l, 0);
	LEAVE(self);
	return res;
}

/* --- whole store -------------------------------------------------------- */

static PyObject *type_counts(const kg_type_count *t, size_t n)
{
	PyObject *d = PyDict_New();
	for (size_t i = 0; d && i < n; i++) {
		PyObject *c = PyLong_FromSize_t(t[i].count);
		if (!c || PyDict_SetItemString(d, t[i].type, c) < 0)
			Py_CLEAR(d);
		Py_XDECREF(c);
	}
	return d;
}

static PyObject *store_stats(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (enter(self) < 0)
		return NULL;
	kg_stats *st = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_get_stats(self->s, &st);
	Py_END_ALLOW_THREADS
	PyObject *res;
	if (rc)
		res = store_error(self, rc);
	else {
		res = Py_BuildValue("{s:n,s:n,s:N,s:N,s:s}", "entity_count", (Py_ssize_t)st->entity_count,
		                    "relation_count", (Py_ssize_t)st->relation_count, "entity_types",
		                    type_counts(st->entity_types, st->n_entity_types), "relation_types",
		                    type_counts(st->relation_types, st->n_relation_types), "backend", st->backend);
		kg_stats_free(st);
	}
	LEAVE(self);
	return res;
}

static PyObject *store_clear(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (enter(self) < 0)
		return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_clear(self->s);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : (Py_INCREF(Py_None), Py_None);
	LEAVE(self);
	return res;
}

static PyObject *store_list_tenants(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (enter(self) < 0)
		return NULL;
	char **names = NULL;
	size_t n = 0;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_list_tenants(self->s, &names, &n);
	Py_END_ALLOW_THREADS
	PyObject *res;
	if (rc)
		res = store_error(self, rc);
	else {
		res = PyList_New((Py_ssize_t)n);
		for (size_t i = 0; res && i < n; i++) {
			PyObject *s = PyUnicode_FromString(names[i]);
			if (!s)
				Py_CLEAR(res);
			else
				PyList_SET_ITEM(res, (Py_ssize_t)i, s);
		}
		free(names);
	}
	LEAVE(self);
	return res;
}

/* --- tenants and transactions ------------------------------------------- */

static PyObject *store_tenant(StoreObject *self, PyObject *arg)
{
	const char *tid = as_id(arg, "tenant_id");
	if (!tid || enter(self) < 0)
		return NULL;
	kg_store *view = NULL;
	int rc = kg_tenant(self->s, tid, &view);
	PyObject *res = rc ? store_error(self, rc) : new_child(self, view, 0);
	LEAVE(self);
	return res;
}

static PyObject *store_begin(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (enter(self) < 0)
		return NULL;
	kg_store *txn = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_begin(self->s, &txn);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? store_error(self, rc) : new_child(self, txn, 1);
	LEAVE(self);
	return res;
}

static PyObject *end_txn(StoreObject *self, int commit)
{
	if (!self->is_txn)
		return raise_kg(KG_EINVAL, "commit/rollback is for the handle begin() returned");
	if (!self->s)
		return raise_kg(KG_EINVAL, "this transaction has already ended");
	wait_idle(self);
	kg_store *t = self->s;
	/* kg_commit / kg_rollback free the handle whatever they return, so its
	 * message cannot be read afterwards: the error carries the code's text. */
	int rc;
	char msg[512] = "";
	Py_BEGIN_ALLOW_THREADS rc = commit ? kg_commit(t) : kg_rollback(t);
	Py_END_ALLOW_THREADS
	self->s = NULL;
	detach(self);
	if (rc) {
		snprintf(msg, sizeof msg, "%s failed: %s; the transaction was rolled back", commit ? "commit" : "rollback",
		         kg_strerror(rc));
		return raise_kg(rc, msg);
	}
	Py_RETURN_NONE;
}

static PyObject *store_commit(StoreObject *self, PyObject *u)
{
	(void)u;
	return end_txn(self, 1);
}
static PyObject *store_rollback(StoreObject *self, PyObject *u)
{
	(void)u;
	return end_txn(self, 0);
}

/* --- io ------------------------------------------------------------------ */

static kg_io_format parse_format(const char *f, int *ok)
{
	*ok = 1;
	if (!f || !strcmp(f, "auto"))
		return KG_FORMAT_AUTO;
	if (!strcmp(f, "jsonl"))
		return KG_FORMAT_JSONL;
	if (!strcmp(f, "json"))
		return KG_FORMAT_JSON;
	if (!strcmp(f, "csv"))
		return KG_FORMAT_CSV;
	*ok = 0;
	return KG_FORMAT_AUTO;
}

static PyObject *store_export(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path",         "compress",     "format",    "entity_type",
	                         "relation_type", "no_relations", "all_tenants", "tenant_id", NULL};
	const char *path, *fmt = NULL, *etype = NULL, *rtype = NULL, *tenant = NULL;
	int gz = 0, norel = 0, all = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pzzzppz:export", kwlist, &path, &gz, &fmt, &etype, &rtype, &norel,
	                                 &all, &tenant))
		return NULL;
	kg_export_options o = KG_EXPORT_OPTIONS_INIT;
	int ok;
	o.format = parse_format(fmt, &ok);
	if (!ok)
		return raise_kg(KG_EINVAL, "format must be 'auto', 'jsonl' or 'json'");
	o.gzip = gz;
	o.entity_type = etype;
	o.relation_type = rtype;
	o.no_relations = norel;
	o.all_tenants = all;
	o.tenant_id = tenant;
	if (enter(self) < 0)
		return NULL;
	kg_export_result *r = calloc(1, sizeof *r);
	if (!r) {
		LEAVE(self);
		return PyErr_NoMemory();
	}
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_export(self->s, path, &o, r);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? raise_kg(rc, r->errmsg[0] ? r->errmsg : kg_strerror(rc))
	                   : Py_BuildValue("{s:K,s:K,s:s,s:O}", "entity_count", (unsigned long long)r->entity_count,
	                                   "relation_count", (unsigned long long)r->relation_count, "filepath",
	                                   r->filepath, "compressed", r->compressed ? Py_True : Py_False);
	free(r);
	LEAVE(self);
	return res;
}

static PyObject *store_import(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path",        "batch_size",    "format",         "edges_path",     "skip_existing",
	                         "skip_bad",    "ignore_tenant", "no_transaction", "reject_path",    NULL};
	const char *path, *fmt = NULL, *edges = NULL, *reject = NULL;
	Py_ssize_t batch = 0;
	int skip_ex = 0, skip_bad = 0, ign = 0, notx = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|nzzppppz:import_file", kwlist, &path, &batch, &fmt, &edges,
	                                 &skip_ex, &skip_bad, &ign, &notx, &reject))
		return NULL;
	if (batch < 0)
		return raise_kg(KG_EINVAL, "batch_size must be > 0");
	kg_import_options o = KG_IMPORT_OPTIONS_INIT;
	int ok;
	o.format = parse_format(fmt, &ok);
	if (!ok)
		return raise_kg(KG_EINVAL, "format must be 'auto', 'jsonl', 'json' or 'csv'");
	o.batch_size = (size_t)batch;
	o.edges_path = edges;
	o.reject_path = reject;
	o.flags = (skip_ex ? KG_IMPORT_SKIP_EXISTING : 0) | (skip_bad ? KG_IMPORT_SKIP_BAD : 0) |
	          (ign ? KG_IMPORT_IGNORE_TENANT : 0) | (notx ? KG_IMPORT_NO_TRANSACTION : 0);
	if (enter(self) < 0)
		return NULL;
	kg_import_result *r = calloc(1, sizeof *r);
	if (!r) {
		LEAVE(self);
		return PyErr_NoMemory();
	}
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_import(self->s, path, &o, r);
	Py_END_ALLOW_THREADS
	PyObject *res = rc ? raise_kg(rc, r->errmsg[0] ? r->errmsg : kg_strerror(rc))
	                   : Py_BuildValue("{s:K,s:K,s:K,s:K,s:K}", "entity_count", (unsigned long long)r->entity_count,
	                                   "relation_count", (unsigned long long)r->relation_count, "skipped",
	                                   (unsigned long long)r->skipped, "rejected", (unsigned long long)r->rejected,
	                                   "lines", (unsigned long long)r->lines);
	free(r);
	LEAVE(self);
	return res;
}

/* --- degradation and pools ---------------------------------------------- */

static PyObject *store_degrade_status(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (enter(self) < 0)
		return NULL;
	kg_degrade_status st;
	int rc = kg_degrade_status_get(self->s, &st);
	PyObject *res;
	if (rc)
		res = raise_kg(rc, "this store is not a GracefulDegradationStore");
	else
		res = Py_BuildValue("{s:s,s:I,s:K,s:K,s:K,s:s,s:K,s:K,s:K,s:K,s:K,s:d,s:O}", "state",
		                    kg_degrade_state_name(st.state), "failures", st.failures, "total_failures",
		                    (unsigned long long)st.total_failures, "switches", (unsigned long long)st.switches,
		                    "recoveries", (unsigned long long)st.recoveries, "last_failure", st.last_failure,
		                    "pending", (unsigned long long)st.pending, "journaled", (unsigned long long)st.journaled,
		                    "replayed", (unsigned long long)st.replayed, "conflicts",
		                    (unsigned long long)st.conflicts, "rejected", (unsigned long long)st.rejected,
		                    "last_recovery_seconds", st.last_recovery_seconds, "degraded",
		                    st.state != KG_DEGRADE_NORMAL ? Py_True : Py_False);
	LEAVE(self);
	return res;
}

static PyObject *store_degrade_try_recover(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (enter(self) < 0)
		return NULL;
	char err[1024] = "";
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_degrade_try_recover(self->s, err, sizeof err);
	Py_END_ALLOW_THREADS
	PyObject *res;
	if (rc == KG_OK)
		res = (Py_INCREF(Py_True), Py_True);
	else if (rc == KG_ECONNLOST)
		res = (Py_INCREF(Py_False), Py_False);
	else
		res = raise_kg(rc, err[0] ? err : kg_strerror(rc));
	LEAVE(self);
	return res;
}

static PyObject *store_last_call_degraded(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (!self->s)
		Py_RETURN_FALSE;
	return PyBool_FromLong(kg_degrade_last_call_degraded(self->s));
}

static PyObject *pool_stats_dict(const kg_pg_pool_stats *st)
{
	return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:d,s:k,s:k,s:k}", "size", st->size, "in_use", st->in_use, "idle",
	                     st->idle, "waiting", st->waiting, "min_size", st->min_size, "max_size", st->max_size,
	                     "timeout", st->timeout, "acquired", st->acquired, "timeouts", st->timeouts, "replaced",
	                     st->replaced);
}

static PyObject *store_pool_stats(StoreObject *self, PyObject *unused)
{
	(void)unused;
	if (enter(self) < 0)
		return NULL;
	kg_pg_pool_stats st;
	int rc = kg_pg_store_pool_stats(self->s, &st);
	PyObject *res = rc ? raise_kg(rc, "pool statistics are for PostgreSQL stores") : pool_stats_dict(&st);
	LEAVE(self);
	return res;
}

static PyObject *store_get_backend(StoreObject *self, void *c)
{
	(void)c;
	return PyUnicode_FromString(self->s ? kg_backend_name(self->s) : "closed");
}
static PyObject *store_get_caps(StoreObject *self, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(self->s ? kg_capabilities(self->s) : 0);
}
static PyObject *store_get_tenant(StoreObject *self, void *c)
{
	(void)c;
	return str_or_none(self->s ? kg_tenant_id(self->s) : NULL);
}
static PyObject *store_get_closed(StoreObject *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->s == NULL);
}
static PyObject *store_get_is_degrading(StoreObject *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->s && kg_degrade_is(self->s));
}

static PyObject *store_get_busy(StoreObject *self, void *c)
{
	(void)c;
	return PyLong_FromLong(self->busy);
}

static PyGetSetDef store_getset[] = {
	{"busy", (getter)store_get_busy, NULL, "calls of other threads running in C now", NULL},
	{"backend", (getter)store_get_backend, NULL, "backend name", NULL},
	{"capabilities", (getter)store_get_caps, NULL, "KG_CAP_* bits", NULL},
	{"tenant_id", (getter)store_get_tenant, NULL, "tenant of this handle or None", NULL},
	{"closed", (getter)store_get_closed, NULL, "True once closed / ended", NULL},
	{"is_degrading", (getter)store_get_is_degrading, NULL, "True for a graceful-degradation store", NULL},
	{NULL, NULL, NULL, NULL, NULL}};

#define KW (METH_VARARGS | METH_KEYWORDS)
static PyMethodDef store_methods[] = {
	{"add_entity", (PyCFunction)store_add_entity, METH_O, "Add a new entity (DuplicateError if the id exists)."},
	{"get_entity", (PyCFunction)store_get_entity, METH_O, "The entity with this id, or None."},
	{"update_entity", (PyCFunction)store_update_entity, METH_O, "Replace an existing entity."},
	{"upsert_entity", (PyCFunction)store_upsert_entity, METH_O, "Add or replace."},
	{"delete_entity", (PyCFunction)store_delete_entity, METH_O, "Delete an entity and its relations."},
	{"add_relation", (PyCFunction)store_add_relation, METH_O, "Add a new relation."},
	{"get_relation", (PyCFunction)store_get_relation, METH_O, "The relation with this id, or None."},
	{"update_relation", (PyCFunction)store_update_relation, METH_O, "Replace an existing relation."},
	{"upsert_relation", (PyCFunction)store_upsert_relation, METH_O, "Add or replace."},
	{"delete_relation", (PyCFunction)store_delete_relation, METH_O, "Delete a relation."},
	{"add_entities", (PyCFunction)(void (*)(void))store_add_entities, KW, "Bulk add; returns the number added."},
	{"add_relations", (PyCFunction)(void (*)(void))store_add_relations, KW, "Bulk add; returns the number added."},
	{"neighbors", (PyCFunction)(void (*)(void))store_neighbors, KW, "Neighboring entities."},
	{"relations_of", (PyCFunction)(void (*)(void))store_relations_of, KW, "Relations touching an entity."},
	{"traverse", (PyCFunction)(void (*)(void))store_traverse, KW, "BFS paths from start."},
	{"find_paths", (PyCFunction)(void (*)(void))store_find_paths, KW, "Simple paths, shortest first."},
	{"subgraph", (PyCFunction)store_subgraph, METH_O, "(entities, relations) among the ids."},
	{"list_entities", (PyCFunction)(void (*)(void))store_list_entities, KW, "Entities in insertion order."},
	{"list_relations", (PyCFunction)(void (*)(void))store_list_relations, KW, "Relations in insertion order."},
	{"vector_search", (PyCFunction)(void (*)(void))store_vector_search, KW, "[(Entity, score)] by cosine."},
	{"text_search", (PyCFunction)(void (*)(void))store_text_search, KW, "[(Entity, score)] by text."},
	{"add_indexed_property", (PyCFunction)store_add_indexed_property, METH_O, "Index a top-level property."},
	{"lookup_by_property", (PyCFunction)store_lookup_by_property, METH_VARARGS, "Entities whose property equals."},
	{"stats", (PyCFunction)store_stats, METH_NOARGS, "Counts of this handle's namespace."},
	{"clear", (PyCFunction)store_clear, METH_NOARGS, "Delete everything in this namespace."},
	{"list_tenants", (PyCFunction)store_list_tenants, METH_NOARGS, "Tenants holding data."},
	{"tenant", (PyCFunction)store_tenant, METH_O, "A view scoped to one tenant."},
	{"begin", (PyCFunction)store_begin, METH_NOARGS, "A transaction handle."},
	{"commit", (PyCFunction)store_commit, METH_NOARGS, "Commit (transaction handles)."},
	{"rollback", (PyCFunction)store_rollback, METH_NOARGS, "Roll back (transaction handles)."},
	{"close", (PyCFunction)store_close, METH_NOARGS, "Close the handle."},
	{"export", (PyCFunction)(void (*)(void))store_export, KW, "Stream the store to a file."},
	{"import_file", (PyCFunction)(void (*)(void))store_import, KW, "Read a file into the store."},
	{"degrade_status", (PyCFunction)store_degrade_status, METH_NOARGS, "State of a degrading store."},
	{"degrade_try_recover", (PyCFunction)store_degrade_try_recover, METH_NOARGS, "Bring the primary back now."},
	{"last_call_degraded", (PyCFunction)store_last_call_degraded, METH_NOARGS, "Was the last call answered by the fallback?"},
	{"pool_stats", (PyCFunction)store_pool_stats, METH_NOARGS, "PostgreSQL pool figures."},
	{NULL, NULL, 0, NULL}};

static PyTypeObject StoreType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kgstore._native.Store",
	.tp_basicsize = sizeof(StoreObject),
	.tp_dealloc = (destructor)store_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A kg_store handle: made by open(), Store.tenant() and Store.begin(). Methods are synchronous and "
	          "release the GIL during the C call.",
	.tp_methods = store_methods,
	.tp_getset = store_getset,
	.tp_weaklistoffset = offsetof(StoreObject, weakrefs),
};

/* ------------------------------------------------------------------ */
/* PgPool                                                               */
/* ------------------------------------------------------------------ */

static void pool_dealloc(PgPoolObject *self)
{
	if (self->pool)
		kg_pg_pool_free(self->pool); /* the library frees it when the last store closes */
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *pool_close(PgPoolObject *self, PyObject *u)
{
	(void)u;
	if (self->pool) {
		kg_pg_pool_free(self->pool);
		self->pool = NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *pool_stats(PgPoolObject *self, PyObject *u)
{
	(void)u;
	if (!self->pool)
		return raise_kg(KG_EINVAL, "the pool is closed");
	kg_pg_pool_stats st;
	int rc = kg_pg_pool_get_stats(self->pool, &st);
	return rc ? raise_kg(rc, kg_strerror(rc)) : pool_stats_dict(&st);
}

static PyMethodDef pool_methods[] = {{"close", (PyCFunction)pool_close, METH_NOARGS, "Drop this reference."},
                                     {"stats", (PyCFunction)pool_stats, METH_NOARGS, "Pool figures."},
                                     {NULL, NULL, 0, NULL}};

static PyTypeObject PgPoolType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kgstore._native.PgPool",
	.tp_basicsize = sizeof(PgPoolObject),
	.tp_dealloc = (destructor)pool_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A PostgreSQL connection pool several stores share; made by pool_new().",
	.tp_methods = pool_methods,
};

/* ------------------------------------------------------------------ */
/* Module functions                                                     */
/* ------------------------------------------------------------------ */

static PyObject *wrap_store(kg_store *s, opt_holder *h)
{
	StoreObject *o = (StoreObject *)StoreType.tp_alloc(&StoreType, 0);
	if (!o) {
		kg_close(s);
		holder_free(h);
		return NULL;
	}
	o->s = s;
	o->holder = h;
	return (PyObject *)o;
}

/* open(uri) or open(options_dict): a new base Store. */
static PyObject *mod_open(PyObject *m, PyObject *arg)
{
	(void)m;
	kg_store *s = NULL;
	int rc;
	if (PyUnicode_Check(arg)) {
		const char *uri = PyUnicode_AsUTF8(arg);
		if (!uri)
			return NULL;
		Py_BEGIN_ALLOW_THREADS rc = kg_open(uri, &s);
		Py_END_ALLOW_THREADS
	} else {
		opt_holder *h = holder_from_dict(arg);
		if (!h)
			return NULL;
		Py_BEGIN_ALLOW_THREADS rc = kg_open_options(&h->o, &s);
		Py_END_ALLOW_THREADS
		holder_free(h); /* a store keeps what it needs from the options */
	}
	if (rc) {
		PyObject *r = raise_kg(rc, s ? kg_errmsg(s) : kg_strerror(rc));
		kg_close(s);
		return r;
	}
	return wrap_store(s, NULL);
}

static PyObject *mod_open_env(PyObject *m, PyObject *u)
{
	(void)m;
	(void)u;
	kg_store *s = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_open_env(&s);
	Py_END_ALLOW_THREADS
	if (rc) {
		PyObject *r = raise_kg(rc, s ? kg_errmsg(s) : kg_strerror(rc));
		kg_close(s);
		return r;
	}
	return wrap_store(s, NULL);
}

/* Runs in the library's threads (no GIL): opens the primary from the
 * options copied at degrade_open. */
static int dg_connect(void *user, kg_store **out, char *err, size_t errcap)
{
	opt_holder *h = user;
	kg_store *s = NULL;
	int rc = kg_open_options(&h->o, &s);
	if (rc) {
		snprintf(err, errcap, "%s", s ? kg_errmsg(s) : kg_strerror(rc));
		kg_close(s);
		*out = NULL;
		return rc;
	}
	*out = s;
	return KG_OK;
}

static PyObject *mod_degrade_open(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	static char *kwlist[] = {"primary",         "enable_fallback", "max_failures", "journal_path",
	                         "recovery_interval", "warm_cache_size", "fallback_budget", "keep_primary", NULL};
	PyObject *primary;
	int fallback = 1, maxf = 0, keep = 0;
	const char *journal = NULL;
	double interval = 0;
	Py_ssize_t warm = -1, budget = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pizdnnp:degrade_open", kwlist, &primary, &fallback, &maxf,
	                                 &journal, &interval, &warm, &budget, &keep))
		return NULL;
	kg_degrade_options o = KG_DEGRADE_OPTIONS_INIT;
	o.enable_fallback = fallback;
	o.max_failures = maxf;
	o.journal_path = journal;
	o.recovery_interval = interval;
	o.warm_cache_size = warm < 0 ? 0 : (size_t)warm;
	if (warm == 0)
		o.warm_cache_size = KG_DEGRADE_NO_WARM;
	o.fallback_budget = (size_t)(budget < 0 ? 0 : budget);
	o.policy = keep ? KG_DEGRADE_KEEP_PRIMARY : KG_DEGRADE_JOURNAL_WINS;
	char err[1024] = "";
	kg_store *s = NULL;
	int rc;
	opt_holder *h = NULL;
	if (PyUnicode_Check(primary)) {
		const char *uri = PyUnicode_AsUTF8(primary);
		if (!uri)
			return NULL;
		Py_BEGIN_ALLOW_THREADS rc = kg_degrade_open(uri, &o, &s, err, sizeof err);
		Py_END_ALLOW_THREADS
	} else {
		if (!(h = holder_from_dict(primary)))
			return NULL;
		Py_BEGIN_ALLOW_THREADS rc = kg_degrade_open_with(dg_connect, h, &o, &s, err, sizeof err);
		Py_END_ALLOW_THREADS
	}
	if (rc) {
		holder_free(h);
		return raise_kg(rc, err[0] ? err : kg_strerror(rc));
	}
	return wrap_store(s, h);
}

static PyObject *mod_pool_new(PyObject *m, PyObject *arg)
{
	(void)m;
	opt_holder *h = holder_from_dict(arg);
	if (!h)
		return NULL;
	kg_pg_pool *p = NULL;
	char err[1024] = "";
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = kg_pg_pool_new(&h->o, &p, err, sizeof err);
	Py_END_ALLOW_THREADS
	holder_free(h);
	if (rc)
		return raise_kg(rc, err[0] ? err : kg_strerror(rc));
	PgPoolObject *o = (PgPoolObject *)PgPoolType.tp_alloc(&PgPoolType, 0);
	if (!o) {
		kg_pg_pool_free(p);
		return NULL;
	}
	o->pool = p;
	return (PyObject *)o;
}

static StoreObject *as_store(PyObject *o, const char *what)
{
	if (!PyObject_TypeCheck(o, &StoreType)) {
		PyErr_Format(PyExc_TypeError, "%s must be an initialized store, not %.100s", what, Py_TYPE(o)->tp_name);
		return NULL;
	}
	return (StoreObject *)o;
}

static PyObject *checksum_dict(const kg_store_checksum *c)
{
	return Py_BuildValue("{s:K,s:K,s:n}", "entities", (unsigned long long)c->entities.count, "relations",
	                     (unsigned long long)c->relations.count, "namespaces", (Py_ssize_t)c->namespaces);
}

static PyObject *mod_migrate(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	static char *kwlist[] = {"source", "target", "batch_size", "verify", "skip_existing", "resume_path", NULL};
	PyObject *so, *to;
	Py_ssize_t batch = 0;
	int verify = 1, skip = 0;
	const char *resume = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|nppz:migrate", kwlist, &so, &to, &batch, &verify, &skip, &resume))
		return NULL;
	StoreObject *src = as_store(so, "source"), *dst = src ? as_store(to, "target") : NULL;
	if (!dst)
		return NULL;
	if (batch < 0)
		return raise_kg(KG_EINVAL, "batch_size must be > 0");
	kg_migrate_options o = KG_MIGRATE_OPTIONS_INIT;
	o.batch_size = (size_t)batch;
	o.flags = (verify ? 0 : KG_MIGRATE_NO_VERIFY) | (skip ? KG_MIGRATE_SKIP_EXISTING : 0);
	o.resume_path = resume;
	if (enter(src) < 0)
		return NULL;
	if (enter(dst) < 0) {
		LEAVE(src);
		return NULL;
	}
	kg_migrate_result *r = calloc(1, sizeof *r);
	PyObject *res;
	if (!r)
		res = PyErr_NoMemory();
	else {
		int rc;
		Py_BEGIN_ALLOW_THREADS rc = kg_migrate(src->s, dst->s, &o, r);
		Py_END_ALLOW_THREADS
		res = rc ? raise_kg(rc, r->errmsg[0] ? r->errmsg : kg_strerror(rc))
		         : Py_BuildValue("{s:K,s:K,s:K,s:n,s:O,s:O}", "entity_count", (unsigned long long)r->entity_count,
		                         "relation_count", (unsigned long long)r->relation_count, "skipped",
		                         (unsigned long long)r->skipped, "namespaces", (Py_ssize_t)r->namespaces, "resumed",
		                         r->resumed ? Py_True : Py_False, "verified", r->verified ? Py_True : Py_False);
		free(r);
	}
	LEAVE(src);
	LEAVE(dst);
	return res;
}

static PyObject *mod_verify(PyObject *m, PyObject *args)
{
	(void)m;
	PyObject *ao, *bo;
	if (!PyArg_ParseTuple(args, "OO:verify", &ao, &bo))
		return NULL;
	StoreObject *a = as_store(ao, "a"), *b = a ? as_store(bo, "b") : NULL;
	if (!b)
		return NULL;
	if (enter(a) < 0)
		return NULL;
	if (enter(b) < 0) {
		LEAVE(a);
		return NULL;
	}
	kg_verify_result *r = calloc(1, sizeof *r);
	PyObject *res;
	if (!r)
		res = PyErr_NoMemory();
	else {
		int rc;
		Py_BEGIN_ALLOW_THREADS rc = kg_verify(a->s, b->s, NULL, r);
		Py_END_ALLOW_THREADS
		res = rc ? raise_kg(rc, r->errmsg[0] ? r->errmsg : kg_strerror(rc))
		         : Py_BuildValue("{s:O,s:N,s:N,s:s}", "equal", r->equal ? Py_True : Py_False, "a",
		                         checksum_dict(&r->a), "b", checksum_dict(&r->b), "difference", r->errmsg);
		free(r);
	}
	LEAVE(a);
	LEAVE(b);
	return res;
}

/* register_errors({code: class, ..., 0: base}) - kgstore/errors.py hands
 * its classes over once at import. */
static PyObject *mod_register_errors(PyObject *m, PyObject *d)
{
	(void)m;
	if (!PyDict_Check(d)) {
		PyErr_SetString(PyExc_TypeError, "register_errors takes a dict {code: class}");
		return NULL;
	}
	PyObject *k, *v;
	Py_ssize_t pos = 0;
	while (PyDict_Next(d, &pos, &k, &v)) {
		long code = PyLong_AsLong(k);
		if (code == -1 && PyErr_Occurred())
			return NULL;
		if (code > 0 || -code >= N_CODES || !PyExceptionClass_Check(v)) {
			PyErr_Format(PyExc_ValueError, "bad error registration for code %ld", code);
			return NULL;
		}
		Py_INCREF(v);
		Py_XSETREF(g_errors[-code], v);
	}
	Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
	(void)m;
	long c = PyLong_AsLong(arg);
	if (c == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(kg_strerror((int)c));
}

static PyMethodDef module_methods[] = {
	{"open", mod_open, METH_O, "open(uri | options dict) -> Store"},
	{"open_env", mod_open_env, METH_NOARGS, "open the store the environment names (kg_open_env)"},
	{"degrade_open", (PyCFunction)(void (*)(void))mod_degrade_open, KW,
	 "degrade_open(primary uri | options dict, enable_fallback=True, ...) -> Store"},
	{"pool_new", mod_pool_new, METH_O, "pool_new(options dict) -> PgPool"},
	{"migrate", (PyCFunction)(void (*)(void))mod_migrate, KW, "migrate(source, target, batch_size=...) -> dict"},
	{"verify", mod_verify, METH_VARARGS, "verify(a, b) -> dict"},
	{"register_errors", mod_register_errors, METH_O, "internal: exception classes per status code"},
	{"strerror", mod_strerror, METH_O, "generic text of a status code"},
	{NULL, NULL, 0, NULL}};

static struct PyModuleDef native_module = {
	PyModuleDef_HEAD_INIT, "kgstore._native", "C core of the kgstore Python binding.", -1, module_methods,
	NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void)
{
	PyDateTime_IMPORT;
	if (!PyDateTimeAPI)
		return NULL;
	if (PyType_Ready(&EntityType) < 0 || PyType_Ready(&RelationType) < 0 || PyType_Ready(&StoreType) < 0 ||
	    PyType_Ready(&PgPoolType) < 0)
		return NULL;
	PyObject *json = PyImport_ImportModule("json");
	if (!json)
		return NULL;
	g_json_loads = PyObject_GetAttrString(json, "loads");
	Py_DECREF(json);
	if (!g_json_loads)
		return NULL;
	PyObject *m = PyModule_Create(&native_module);
	if (!m)
		return NULL;
	Py_INCREF(&EntityType);
	Py_INCREF(&RelationType);
	Py_INCREF(&StoreType);
	Py_INCREF(&PgPoolType);
	if (PyModule_AddObject(m, "Entity", (PyObject *)&EntityType) < 0 ||
	    PyModule_AddObject(m, "Relation", (PyObject *)&RelationType) < 0 ||
	    PyModule_AddObject(m, "Store", (PyObject *)&StoreType) < 0 ||
	    PyModule_AddObject(m, "PgPool", (PyObject *)&PgPoolType) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_TRANSACTIONS", KG_CAP_TRANSACTIONS) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_PERSISTENT", KG_CAP_PERSISTENT) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_NATIVE_VECTOR", KG_CAP_NATIVE_VECTOR) < 0 ||
	    PyModule_AddStringConstant(m, "VERSION", KGSTORE_VERSION_STRING) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
