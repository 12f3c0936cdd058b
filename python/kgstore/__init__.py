"""kgstore for Python: the AIECS graph-storage classes over the kgstore C library.

The seed's code runs with only its import line changed::

    from kgstore import InMemoryGraphStore, SQLiteGraphStore, PostgresGraphStore

    store = InMemoryGraphStore()
    await store.initialize()

Every store method is an ``async def``. The C call runs without the GIL in
the store's worker threads (a queue and ``loop.call_soon_threadsafe``), so coroutines
overlap. The one exception is the in-memory backend, whose calls take well
under a microsecond: they run on the event loop's thread, still without the
GIL, unless a transaction is open on the store (a write could then wait for
it) or the store was made with ``offload=True``.

``store.raw`` is the synchronous handle (``kgstore._native.Store``) for code
that is not async: the same operations, without the event loop.

See docs/PYTHON.md.
"""

import asyncio
import concurrent.futures
import contextlib
import enum
import os
import queue
import re
import threading
import warnings

from . import _native, errors
from ._native import Entity, Relation
from .errors import (  # noqa: F401  (re-exported)
    BudgetExceededError,
    CorruptDataError,
    DuplicateError,
    GraphConnectionError,
    InternalError,
    InvalidInputError,
    KgError,
    NotFoundError,
    OutOfMemoryError,
    PoolExhaustedError,
    StorageIOError,
    StoreBusyError,
    UnsupportedError,
)

_native.register_errors(errors.BY_CODE)

__version__ = _native.VERSION

__all__ = [
    "Entity", "Relation", "Path", "TenantContext", "TenantIsolationMode",
    "GraphStore", "InMemoryGraphStore", "SQLiteGraphStore", "PostgresGraphStore",
    "GracefulDegradationStore", "DatabaseManager",
    "GraphStorageMigrator", "GraphStreamExporter", "GraphStreamImporter",
    "get_graph_store", "load_dotenv",
    "KgError", "NotFoundError", "DuplicateError", "InvalidInputError", "StoreBusyError",
    "GraphConnectionError", "PoolExhaustedError", "BudgetExceededError", "StorageIOError",
    "CorruptDataError", "UnsupportedError", "OutOfMemoryError", "InternalError",
]


# ---------------------------------------------------------------------------
# Model classes that are plain Python (Entity and Relation are C types)
# ---------------------------------------------------------------------------

class Path:
    """A path: nodes[0] -edges[0]-> nodes[1] ... with len(edges) == len(nodes) - 1."""

    __slots__ = ("nodes", "edges", "score")

    def __init__(self, nodes, edges=(), score=None):
        nodes, edges = list(nodes), list(edges)
        if not nodes:
            raise InvalidInputError("a Path needs at least one node")
        if len(edges) != len(nodes) - 1:
            raise InvalidInputError(
                f"a Path of {len(nodes)} nodes needs {len(nodes) - 1} edges, got {len(edges)}")
        for i, e in enumerate(edges):
            if e.source_id != nodes[i].id or e.target_id != nodes[i + 1].id:
                raise InvalidInputError(
                    f"edge {i} ({e.id}) goes {e.source_id}->{e.target_id}, "
                    f"not {nodes[i].id}->{nodes[i + 1].id}")
        self.nodes, self.edges, self.score = nodes, edges, score

    @property
    def length(self):
        """Number of edges."""
        return len(self.edges)

    @property
    def start_entity(self):
        return self.nodes[0]

    @property
    def end_entity(self):
        return self.nodes[-1]

    def get_entity_ids(self):
        return [n.id for n in self.nodes]

    def get_relation_types(self):
        return [e.relation_type for e in self.edges]

    def __len__(self):
        return len(self.edges)

    def __eq__(self, other):
        if not isinstance(other, Path):
            return NotImplemented
        return self.nodes == other.nodes and self.edges == other.edges and self.score == other.score

    def __repr__(self):
        return "Path(" + " -> ".join(n.id for n in self.nodes) + f", score={self.score})"


def _paths(raw):
    out = []
    for nodes, edges, score in raw:
        p = Path.__new__(Path)  # the library guarantees the shape
        p.nodes, p.edges, p.score = list(nodes), list(edges), score
        out.append(p)
    return out


class TenantIsolationMode(str, enum.Enum):
    """How tenants are kept apart. In kgstore the store decides (PostgreSQL:
    ?tenancy=shared|rls|schema); the mode on a TenantContext is recorded."""

    DISABLED = "disabled"
    SHARED_SCHEMA = "shared_schema"
    SEPARATE_SCHEMA = "separate_schema"


_TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class TenantContext:
    """The tenant a call runs for: pass ``context=TenantContext("acme")`` to
    any store method, or use ``store.for_tenant("acme")``."""

    __slots__ = ("tenant_id", "isolation_mode", "metadata")

    def __init__(self, tenant_id, isolation_mode=TenantIsolationMode.SHARED_SCHEMA,
                 validate=True, metadata=None):
        if validate and (not isinstance(tenant_id, str) or not _TENANT_RE.match(tenant_id)):
            raise InvalidInputError(
                f"tenant id {tenant_id!r} is invalid: use 1-255 letters, digits, '_' or '-'")
        self.tenant_id = tenant_id
        self.isolation_mode = TenantIsolationMode(isolation_mode)
        self.metadata = dict(metadata or {})

    def __repr__(self):
        return f"TenantContext({self.tenant_id!r})"


def _tenant_of(context):
    if context is None:
        return None
    if isinstance(context, TenantContext):
        return context.tenant_id
    if isinstance(context, str):
        return context
    tid = getattr(context, "tenant_id", None)
    if tid is None:
        raise InvalidInputError(f"context must be a TenantContext or a tenant id, not {context!r}")
    return tid


# ---------------------------------------------------------------------------
# Worker threads
# ---------------------------------------------------------------------------

def _settle(fut, result, exc):
    if fut.cancelled():
        return
    if exc is None:
        fut.set_result(result)
    else:
        fut.set_exception(exc)


class _Workers(concurrent.futures.Executor):
    """The store's threads. ``call`` hands a function to them and returns an
    asyncio future that the worker settles through call_soon_threadsafe:
    one queue put and one wake-up each way, without the concurrent.futures
    Future that run_in_executor chains in (measured: about half the cost per
    call when many run at once). Threads start as calls need them, up to n.
    ``submit`` makes it an ordinary Executor for run_in_executor."""

    def __init__(self, n):
        self._n, self._q = n, queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads, self._idle, self._down = [], 0, False

    def _spawn_if_needed(self):
        with self._lock:
            if self._down:
                raise InvalidInputError("the store is closed; open it again (initialize())")
            if self._idle <= 0 and len(self._threads) < self._n:
                t = threading.Thread(target=self._work, name=f"kgstore-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            self._idle -= 1  # claimed by this job (may go negative: jobs queued)

    def _work(self):
        q = self._q
        with self._lock:
            self._idle += 1
        while True:
            job = q.get()
            if job is None:
                return
            loop, fut, fn, args = job
            try:
                r, e = fn(*args), None
            except BaseException as ex:  # handed to the awaiting coroutine
                r, e = None, ex
            try:
                if loop is None:
                    fut.set_exception(e) if e is not None else fut.set_result(r)
                else:
                    loop.call_soon_threadsafe(_settle, fut, r, e)
            except RuntimeError:
                pass  # the loop was closed meanwhile: nobody awaits this
            with self._lock:
                self._idle += 1

    def call(self, fn, *args):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._spawn_if_needed()
        self._q.put((loop, fut, fn, args))
        return fut

    def submit(self, fn, /, *args, **kwargs):
        cf = concurrent.futures.Future()
        cf.set_running_or_notify_cancel()
        self._spawn_if_needed()
        self._q.put((None, cf, (lambda: fn(*args, **kwargs)) if kwargs else fn, args if not kwargs else ()))
        return cf

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._down = True
            threads = list(self._threads)
        for _ in threads:
            self._q.put(None)
        if wait:
            for t in threads:
                if t is not threading.current_thread():
                    t.join()


# ---------------------------------------------------------------------------
# The async store API
# ---------------------------------------------------------------------------

class _StoreAPI:
    """The seed's GraphStore methods. Subclasses give _handle(context) (a
    native handle) and _call(fn, *args) (runs fn without blocking the loop)."""

    # -- entities ---------------------------------------------------------
    async def add_entity(self, entity, context=None):
        await self._call(self._handle(context).add_entity, entity)

    async def get_entity(self, entity_id, context=None):
        """The entity, or None if there is none with this id."""
        return await self._call(self._handle(context).get_entity, entity_id)

    async def update_entity(self, entity, context=None):
        """Replaces an existing entity (NotFoundError if absent); returns it."""
        await self._call(self._handle(context).update_entity, entity)
        return entity

    async def upsert_entity(self, entity, context=None):
        await self._call(self._handle(context).upsert_entity, entity)
        return entity

    async def delete_entity(self, entity_id, context=None):
        """Deletes the entity and its relations (NotFoundError if absent)."""
        await self._call(self._handle(context).delete_entity, entity_id)

    # -- relations --------------------------------------------------------
    async def add_relation(self, relation, context=None):
        await self._call(self._handle(context).add_relation, relation)

    async def get_relation(self, relation_id, context=None):
        return await self._call(self._handle(context).get_relation, relation_id)

    async def update_relation(self, relation, context=None):
        await self._call(self._handle(context).update_relation, relation)
        return relation

    async def upsert_relation(self, relation, context=None):
        await self._call(self._handle(context).upsert_relation, relation)
        return relation

    async def delete_relation(self, relation_id, context=None):
        await self._call(self._handle(context).delete_relation, relation_id)

    # -- bulk -------------------------------------------------------------
    async def add_entities_bulk(self, entities, skip_existing=False, context=None):
        """All or nothing (unless skip_existing); returns the number added."""
        return await self._call(self._handle(context).add_entities, entities, skip_existing)

    async def add_relations_bulk(self, relations, skip_existing=False, context=None):
        return await self._call(self._handle(context).add_relations, relations, skip_existing)

    batch_add_entities = add_entities_bulk
    batch_add_relations = add_relations_bulk

    # -- graph queries ----------------------------------------------------
    async def get_neighbors(self, entity_id, relation_type=None, direction="outgoing", context=None):
        return await self._call(self._handle(context).neighbors, entity_id, relation_type, direction)

    async def get_relations(self, entity_id, relation_type=None, direction="outgoing", context=None):
        """Relations leaving ('outgoing'), entering ('incoming') or touching ('both') an entity."""
        return await self._call(self._handle(context).relations_of, entity_id, relation_type, direction)

    async def traverse(self, start_entity_id, relation_type=None, max_depth=3, max_results=100,
                       context=None):
        raw = await self._call(self._handle(context).traverse, start_entity_id, relation_type,
                               max_depth, max_results or 0)
        return _paths(raw)

    async def find_paths(self, source_entity_id, target_entity_id, max_depth=5, max_paths=10,
                         context=None):
        raw = await self._call(self._handle(context).find_paths, source_entity_id,
                               target_entity_id, max_depth, max_paths or 0)
        return _paths(raw)

    async def subgraph_query(self, entity_ids, include_relations=True, context=None):
        ents, rels = await self._call(self._handle(context).subgraph, list(entity_ids))
        return {"entities": ents, "relations": rels if include_relations else []}

    async def get_all_entities(self, entity_type=None, limit=None, offset=0, context=None):
        return await self._call(self._handle(context).list_entities, entity_type, limit or 0, offset)

    async def get_all_relations(self, relation_type=None, limit=None, offset=0, context=None):
        return await self._call(self._handle(context).list_relations, relation_type, limit or 0, offset)

    # -- search -----------------------------------------------------------
    async def vector_search(self, query_embedding, entity_type=None, max_results=10,
                            score_threshold=0.0, context=None):
        """[(Entity, cosine score)], best first."""
        return await self._call(self._handle(context).vector_search, query_embedding, entity_type,
                                max_results, score_threshold)

    async def text_search(self, query_text, entity_type=None, max_results=10, score_threshold=0.0,
                          method="bm25", context=None):
        """[(Entity, score)], best first; method bm25, jaccard, cosine or levenshtein."""
        return await self._call(self._handle(context).text_search, query_text, entity_type,
                                max_results, score_threshold, getattr(method, "value", method))

    async def add_indexed_property(self, name, context=None):
        await self._call(self._handle(context).add_indexed_property, name)

    async def lookup_by_property(self, name, value, context=None):
        return await self._call(self._handle(context).lookup_by_property, name, value)

    # -- whole store ------------------------------------------------------
    async def get_stats(self, context=None):
        return await self._call(self._handle(context).stats)

    async def clear(self, context=None):
        await self._call(self._handle(context).clear)

    async def list_tenants(self):
        return await self._call(self._handle(None).list_tenants)

    async def export_to_file(self, path, compress=False, **kw):
        return await self._call(lambda: self._handle(None).export(path, compress, **kw))

    async def import_from_file(self, path, batch_size=1000, **kw):
        return await self._call(lambda: self._handle(None).import_file(path, batch_size, **kw))


class GraphStore(_StoreAPI):
    """Base of the stores: owns a native handle, its worker threads and its
    tenant views. Subclasses say how to open (``_open``)."""

    _workers = 8

    def __init__(self, offload=False):
        self._native = None
        self._executor = None
        self._views = {}
        self._txn_open = 0
        self._inline = False
        self._offload = offload

    # -- life cycle -------------------------------------------------------
    def _open(self):
        raise NotImplementedError

    def _make_executor(self):
        return _Workers(self._workers)

    async def initialize(self):
        """Opens the store (idempotent)."""
        if self._native is not None:
            return
        if self._executor is None:
            self._executor = self._make_executor()
        loop = asyncio.get_running_loop()
        self._native = await loop.run_in_executor(self._executor, self._open)
        self._after_open()

    def _after_open(self):
        self._inline = self._native.backend == "memory" and not self._offload

    async def close(self):
        """Closes the views, then the store; waits for running calls."""
        if self._native is None:
            return
        loop = asyncio.get_running_loop()
        native, views = self._native, list(self._views.values())
        self._native, self._views = None, {}
        for v in views:
            v.close()
        await loop.run_in_executor(self._executor, native.close)
        ex, self._executor = self._executor, None
        ex.shutdown(wait=False)

    async def __aenter__(self):
        await self.initialize()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    @property
    def raw(self):
        """The synchronous native handle (methods release the GIL)."""
        return self._require()

    @property
    def backend(self):
        return self._require().backend

    def _require(self):
        if self._native is None:
            raise InvalidInputError(
                f"{type(self).__name__} is not initialized: await store.initialize() first")
        return self._native

    def _handle(self, context):
        n = self._require()
        tid = _tenant_of(context)
        if tid is None:
            return n
        v = self._views.get(tid)
        if v is None:
            v = self._views[tid] = n.tenant(tid)
        return v

    async def _call(self, fn, *args):
        if self._inline and not self._txn_open:
            return fn(*args)
        if self._executor is None:
            self._require()
        return await self._executor.call(fn, *args)

    # -- tenants and transactions -----------------------------------------
    def for_tenant(self, tenant):
        """A store-like object whose calls all run in one tenant."""
        return _BoundStore(self, self._handle(tenant if tenant is not None else None))

    @contextlib.asynccontextmanager
    async def transaction(self, context=None):
        """``async with store.transaction() as tx:`` - calls on tx run in one
        transaction, committed at the end of the block or rolled back if it
        raises."""
        base = self._handle(context)
        self._txn_open += 1
        try:
            txn = await self._call(base.begin)
            bound = _BoundStore(self, txn)
            try:
                yield bound
            except BaseException:
                if not txn.closed:
                    await self._call(txn.rollback)
                raise
            if not txn.closed:
                await self._call(txn.commit)
        finally:
            self._txn_open -= 1


class _BoundStore(_StoreAPI):
    """The API over one native handle (a tenant view or a transaction) of a
    GraphStore; runs on the owner's threads."""

    def __init__(self, owner, handle):
        self._owner, self._h = owner, handle

    def _handle(self, context):
        if context is not None and _tenant_of(context) != self._h.tenant_id:
            raise InvalidInputError("this handle is bound to tenant "
                                    f"{self._h.tenant_id!r}; a context cannot change it")
        return self._h

    async def _call(self, fn, *args):
        return await self._owner._call(fn, *args)

    @property
    def raw(self):
        return self._h

    async def commit(self):
        await self._call(self._h.commit)

    async def rollback(self):
        await self._call(self._h.rollback)


# ---------------------------------------------------------------------------
# The three stores
# ---------------------------------------------------------------------------

class InMemoryGraphStore(GraphStore):
    """In-memory store. ``max_memory``: bytes it may hold (writes past it
    raise BudgetExceededError); ``offload=True`` runs calls on worker
    threads even though they are sub-microsecond."""

    _workers = 4

    def __init__(self, max_memory=None, offload=False):
        super().__init__(offload)
        self._opts = {"backend": "memory"}
        if max_memory:
            self._opts["memory_budget"] = int(max_memory)

    def _open(self):
        return _native.open(self._opts)


class SQLiteGraphStore(GraphStore):
    """SQLite store on the original's schema. ``":memory:"`` is an
    in-memory database. ``check_same_thread=True`` pins every call to one
    worker thread (the one that opened it). ``tenancy="tables"`` keeps each
    tenant in tables of its own (the original's separate-schema mode),
    ``"shared"`` in the shared tables; left out, the file decides."""

    def __init__(self, db_path=":memory:", timeout=None, check_same_thread=False,
                 journal_mode=None, synchronous=None, cache_size=None, tenancy=None, **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError(f"SQLiteGraphStore got unexpected arguments {sorted(kwargs)}")
        self.db_path = os.fspath(db_path)
        self._opts = {"backend": "sqlite", "path": self.db_path,
                      "check_same_thread": bool(check_same_thread)}
        if tenancy is not None:
            self._opts["tenancy"] = str(tenancy)
        if timeout is not None:
            self._opts["timeout"] = float(timeout)
        # What is in effect (kgstore's defaults unless given); store.conn
        # answers PRAGMAs from these.
        self._pragmas = {
            "journal_mode": (journal_mode or "WAL").lower(),
            "synchronous": (synchronous or "NORMAL").lower(),
            "cache_size": int(cache_size) if cache_size is not None else -64000,
        }
        if self.db_path == ":memory:":
            self._pragmas["journal_mode"] = "memory"
        self._apply_pragmas()
        if check_same_thread:
            self._workers = 1
        self.conn = _SQLiteConn(self)

    def _apply_pragmas(self):
        if self.db_path != ":memory:":
            self._opts["journal_mode"] = self._pragmas["journal_mode"].upper()
        self._opts["synchronous"] = self._pragmas["synchronous"].upper()
        self._opts["cache_size"] = self._pragmas["cache_size"]

    def _open(self):
        return _native.open(self._opts)

    async def _reopen(self):
        """Closes and opens the file again (new PRAGMA settings)."""
        if self._views or self._txn_open:
            raise InvalidInputError("close the tenant views and end the transactions of this store "
                                    "before changing its PRAGMAs")
        loop = asyncio.get_running_loop()
        old, self._native = self._native, None
        await loop.run_in_executor(self._executor, old.close)
        self._native = await loop.run_in_executor(self._executor, self._open)
        self._after_open()


_PRAGMA_RE = re.compile(r"^\s*PRAGMA\s+(\w+)\s*(?:=\s*['\"]?([-\w]+)['\"]?)?\s*;?\s*$", re.I)
_SYNC_NAMES = {"0": "off", "1": "normal", "2": "full", "3": "extra"}


class _SQLiteConn:
    """``store.conn`` of the seed's tuning sample. kgstore keeps its own
    connections (one writer, a pool of readers), so it does not run SQL;
    what it takes are the PRAGMAs the seed sets: journal_mode, synchronous
    and cache_size, applied to every connection by reopening the store."""

    def __init__(self, store):
        self._store = store

    def execute(self, sql, parameters=None):
        return _PragmaCursor(self._store, sql)


class _PragmaCursor:
    """Awaitable and async context manager, as aiosqlite's execute()."""

    def __init__(self, store, sql):
        self._store, self._sql, self._rows = store, sql, None

    async def _run(self):
        st = self._store
        m = _PRAGMA_RE.match(self._sql)
        if not m or m.group(1).lower() not in st._pragmas:
            raise UnsupportedError(
                f"kgstore runs no SQL on its stores ({self._sql.strip()!r}); store.conn takes only "
                "PRAGMA journal_mode / synchronous / cache_size. Use the store's methods for data.")
        name, value = m.group(1).lower(), m.group(2)
        if value is not None:
            new = value.lower()
            if name == "cache_size":
                try:
                    new = int(value)
                except ValueError:
                    raise InvalidInputError(f"PRAGMA cache_size takes an integer, not {value!r}") from None
            elif name == "synchronous":
                new = _SYNC_NAMES.get(new, new)
                if new not in ("off", "normal", "full", "extra"):
                    raise InvalidInputError(f"PRAGMA synchronous takes OFF, NORMAL, FULL or EXTRA, not {value!r}")
            elif name == "journal_mode":
                if new not in ("delete", "truncate", "persist", "memory", "wal", "off"):
                    raise InvalidInputError(f"unknown journal_mode {value!r}")
                if st.db_path == ":memory:":
                    new = "memory"  # what SQLite itself answers for an in-memory database
            if new != st._pragmas[name]:
                if st.db_path == ":memory:":
                    raise UnsupportedError(
                        f"PRAGMA {name} cannot change on an open ':memory:' SQLite store (reopening "
                        f"would lose its data); create it with SQLiteGraphStore(':memory:', {name}=...)")
                st._pragmas[name] = new
                st._apply_pragmas()
                if st._native is not None:
                    await st._reopen()
        self._rows = [(st._pragmas[name],)]
        return self

    def __await__(self):
        return self._run().__await__()

    async def __aenter__(self):
        return await self._run()

    async def __aexit__(self, *exc):
        return False

    async def fetchone(self):
        return self._rows[0] if self._rows else None

    async def fetchall(self):
        return list(self._rows or [])


def _env_bool(name, default="false"):
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def _pg_options(args, host, port, user, password, database, min_pool_size, max_pool_size, ssl,
                sslmode, pool_timeout, conninfo):
    """The connection part of the PostgreSQL options. A setting not given is
    read from the environment the seed documents (DB_HOST, DB_PORT, DB_USER,
    DB_PASSWORD, DB_NAME); libpq's defaults apply after that. A positional
    ``...`` (the seed's shorthand) means exactly that; a positional str is a
    postgresql:// URI or libpq conninfo."""
    for a in args:
        if a is Ellipsis:
            continue
        if isinstance(a, str) and conninfo is None:
            conninfo = a
            continue
        raise TypeError(f"unexpected positional argument {a!r}: pass settings by name")
    o = {"backend": "postgresql"}
    if conninfo:
        o["conninfo"] = conninfo
    else:
        host = host if host is not None else os.getenv("DB_HOST")
        port = port if port is not None else os.getenv("DB_PORT")
        user = user if user is not None else os.getenv("DB_USER")
        password = password if password is not None else os.getenv("DB_PASSWORD")
        database = database if database is not None else os.getenv("DB_NAME")
        for k, v in (("host", host), ("user", user), ("password", password), ("database", database)):
            if v is not None:
                o[k] = str(v)
        if port is not None:
            o["port"] = int(port)
    for k, v in (("min_pool_size", min_pool_size), ("max_pool_size", max_pool_size),
                 ("pool_timeout", pool_timeout)):
        if v is not None:
            o[k] = v
    if ssl:
        o["ssl"] = True
    if sslmode:
        o["sslmode"] = sslmode
    return o


class PostgresGraphStore(GraphStore):
    """PostgreSQL store on the original's tables (graph_entities /
    graph_relations). ``pool=`` shares a pool (``DatabaseManager.pool``).
    ``enable_pgvector=True`` uses the vector extension; where the server has
    none, vector search runs in the client and a warning says so (the
    original logged and carried on), unless ``pgvector_fallback=False``."""

    def __init__(self, *args, host=None, port=None, user=None, password=None, database=None,
                 min_pool_size=None, max_pool_size=None, ssl=False, sslmode=None, pool=None,
                 database_manager=None, enable_pgvector=None, pgvector_fallback=True,
                 pool_timeout=None, conninfo=None, read_conninfo=None, read_your_writes=False):
        super().__init__()
        self.database_manager = database_manager
        if pool is None and database_manager is not None:
            pool = database_manager.pool
        self._pool_obj = pool
        self._opts = _pg_options(args, host, port, user, password, database, min_pool_size,
                                 max_pool_size, ssl, sslmode, pool_timeout, conninfo)
        if enable_pgvector is None:
            enable_pgvector = _env_bool("ENABLE_PGVECTOR")
        self.enable_pgvector = bool(enable_pgvector)
        if self.enable_pgvector:
            self._opts["enable_pgvector"] = True
            self._opts["pgvector_fallback"] = bool(pgvector_fallback)
        if read_conninfo:
            self._opts["read_conninfo"] = read_conninfo
        if read_your_writes:
            self._opts["read_your_writes"] = True
        self._workers = max(4, int(self._opts.get("max_pool_size") or 20))

    def _options(self):
        o = dict(self._opts)
        if self._pool_obj is not None:
            o["pool"] = _native_pool(self._pool_obj)
        return o

    def _open(self):
        return _native.open(self._options())

    def _after_open(self):
        super()._after_open()
        if self.enable_pgvector and not (self._native.capabilities & _native.CAP_NATIVE_VECTOR):
            warnings.warn("enable_pgvector: the server has no 'vector' extension; vector search "
                          "runs in the client (install pgvector on the server for the index)",
                          RuntimeWarning, stacklevel=3)

    def get_pool_stats(self):
        return self._require().pool_stats()


def _native_pool(pool):
    if isinstance(pool, _native.PgPool):
        return pool
    inner = getattr(pool, "pool", None)
    if isinstance(inner, _native.PgPool):
        return inner
    raise InvalidInputError("pool must be a kgstore pool (DatabaseManager(...).pool after initialize())")


class DatabaseManager:
    """A shared PostgreSQL connection pool (the seed's DatabaseManager):
    ``await DatabaseManager(...).initialize()``, then give ``.pool`` to any
    number of PostgresGraphStore(pool=...). Settings as PostgresGraphStore's
    (``...`` or nothing: from DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME)."""

    def __init__(self, *args, host=None, port=None, user=None, password=None, database=None,
                 min_pool_size=None, max_pool_size=None, ssl=False, sslmode=None, pool_timeout=None,
                 conninfo=None, db_config=None):
        if db_config:
            host = db_config.get("host", host)
            port = db_config.get("port", port)
            user = db_config.get("user", user)
            password = db_config.get("password", password)
            database = db_config.get("database", database)
        self._opts = _pg_options(args, host, port, user, password, database, min_pool_size,
                                 max_pool_size, ssl, sslmode, pool_timeout, conninfo)
        self.pool = None

    async def initialize(self):
        if self.pool is None:
            loop = asyncio.get_running_loop()
            self.pool = await loop.run_in_executor(None, _native.pool_new, self._opts)

    def get_pool_stats(self):
        if self.pool is None:
            raise InvalidInputError("DatabaseManager is not initialized")
        return self.pool.stats()

    async def close(self):
        """Drops the manager's reference; stores using the pool keep it
        until they close."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None


class GracefulDegradationStore(GraphStore):
    """Keeps answering when the primary goes away: after ``max_failures``
    consecutive connection failures, calls go to an in-memory fallback
    (warmed with recently used entities). Writes taken while degraded are
    kept only with ``journal_path`` (fsync'ed, replayed into the primary
    when it is back); without it they are refused while degraded. Request
    errors (duplicate id, bad input) never count as an outage."""

    def __init__(self, primary, enable_fallback=True, max_failures=None, journal_path=None,
                 recovery_interval=None, warm_cache_size=None, fallback_budget=None,
                 keep_primary_on_conflict=False):
        super().__init__()
        self.primary = primary
        self.enable_fallback = enable_fallback
        self._dg = {"enable_fallback": bool(enable_fallback),
                    "keep_primary": bool(keep_primary_on_conflict)}
        if max_failures is not None:
            self._dg["max_failures"] = int(max_failures)
        if journal_path is not None:
            self._dg["journal_path"] = os.fspath(journal_path)
        if recovery_interval is not None:
            self._dg["recovery_interval"] = float(recovery_interval)
        if warm_cache_size is not None:
            self._dg["warm_cache_size"] = int(warm_cache_size)
        if fallback_budget is not None:
            self._dg["fallback_budget"] = int(fallback_budget)
        self._workers = max(4, getattr(primary, "_workers", 8))

    def _open(self):
        p = self.primary
        if isinstance(p, str):
            src = p
        elif hasattr(p, "_options"):
            src = p._options()
        else:
            src = dict(p._opts)
        return _native.degrade_open(src, **self._dg)

    def get_degradation_status(self):
        """State ('normal', 'degraded', 'failed'), counters and the last failure."""
        return self._require().degrade_status()

    @property
    def is_degraded(self):
        return self._require().degrade_status()["degraded"]

    def last_call_degraded(self):
        """True if this thread's last call was answered by the fallback."""
        return self._require().last_call_degraded()

    async def try_recover(self):
        """Reconnect and replay the journal now; True if back to normal."""
        return await self._call(self._require().degrade_try_recover)


# ---------------------------------------------------------------------------
# Migration and streaming
# ---------------------------------------------------------------------------

async def _ready(store):
    if isinstance(store, GraphStore):
        await store.initialize()
        return store
    raise InvalidInputError(f"expected a kgstore store, not {type(store).__name__}")


class GraphStorageMigrator:
    """Copies every namespace of one store into another, in batches, each
    committed on its own, then verifies both sides by counts and checksums.
    Stores that are not initialized yet are initialized first."""

    def __init__(self, batch_size=1000, verify=True):
        self.batch_size, self.verify = batch_size, verify

    async def migrate(self, source, target, batch_size=None, verify=None, skip_existing=False,
                      resume_path=None, show_progress=False):
        await _ready(source)
        await _ready(target)
        bs = batch_size or self.batch_size
        v = self.verify if verify is None else verify
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            target._executor, lambda: _native.migrate(source.raw, target.raw, batch_size=bs, verify=v,
                                                      skip_existing=skip_existing,
                                                      resume_path=resume_path))

    async def verify_migration(self, source, target):
        await _ready(source)
        await _ready(target)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(target._executor, _native.verify, source.raw, target.raw)


class GraphStreamExporter:
    """Streams a store to JSONL (default) or JSON, gzip when asked or when
    the name ends in .gz; every namespace of a base store is written."""

    def __init__(self, store, batch_size=1000):
        self.store, self.batch_size = store, batch_size

    async def export_to_file(self, filepath, format="jsonl", compress=False, entity_type=None,
                             relation_type=None, include_relations=True, all_tenants=True):
        st = await _ready(self.store)
        fmt = getattr(format, "value", format)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(st._executor, lambda: st.raw.export(
            os.fspath(filepath), compress, fmt, entity_type, relation_type,
            not include_relations, all_tenants and st.raw.tenant_id is None))


class GraphStreamImporter:
    """Reads an export (JSONL, JSON, gzip by magic bytes) into a store, all
    or nothing unless skip_existing / skip_bad."""

    def __init__(self, store, batch_size=1000):
        self.store, self.batch_size = store, batch_size

    async def import_from_file(self, filepath, batch_size=None, format=None, skip_existing=False,
                               skip_bad=False, reject_path=None):
        st = await _ready(self.store)
        fmt = getattr(format, "value", format)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(st._executor, lambda: st.raw.import_file(
            os.fspath(filepath), batch_size or self.batch_size, fmt, None, skip_existing, skip_bad,
            False, False, reject_path))


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def get_graph_store():
    """The seed's get_graph_store(): ENVIRONMENT=production|staging ->
    PostgreSQL from DB_* (staging prefers STAGING_DB_HOST); testing ->
    SQLite in memory; development or unset -> in memory."""
    env = os.getenv("ENVIRONMENT", "development")
    if env in ("production", "staging"):
        host = os.getenv("STAGING_DB_HOST") if env == "staging" else None
        return PostgresGraphStore(host=host or os.getenv("DB_HOST"))
    if env == "testing":
        return SQLiteGraphStore(":memory:")
    return InMemoryGraphStore()


_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")


def load_dotenv(dotenv_path=None, override=False, encoding="utf-8"):
    """Reads KEY=VALUE lines of a .env file into os.environ (python-dotenv's
    load_dotenv for the seed's sample: comments, quotes, 'export ').
    Looks for .env in the working directory and its parents when no path is
    given. Returns True if a file was read."""
    path = dotenv_path
    if path is None:
        d = os.getcwd()
        while True:
            cand = os.path.join(d, ".env")
            if os.path.isfile(cand):
                path = cand
                break
            parent = os.path.dirname(d)
            if parent == d:
                return False
            d = parent
    if not os.path.isfile(path):
        return False
    with open(path, encoding=encoding) as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = _DOTENV_LINE.match(line)
            if not m:
                continue
            key, val = m.group(1), m.group(2)
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
                val = val[1:-1]
            else:
                val = val.split(" #", 1)[0].strip()
            if override or key not in os.environ:
                os.environ[key] = val
    return True
