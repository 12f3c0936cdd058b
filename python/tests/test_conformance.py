"""Conformance cases through Python, the same assertions on every backend:
memory, SQLite (file, :memory: and a file in the per-tenant layout) and PostgreSQL (the tests' own server,
a fresh database per test). Mirrors tests/conformance.c where the binding
adds something of its own (types, exceptions, None for not-found,
datetimes, JSON properties) and checks the original's known weaknesses.
"""
import asyncio
import datetime
import gzip
import json
import math
import threading

import pytest

import kgstore
from kgstore import (DuplicateError, Entity, InMemoryGraphStore, InvalidInputError, NotFoundError,
                     Path, PostgresGraphStore, Relation, SQLiteGraphStore, TenantContext)

BACKENDS = ["memory", "sqlite_file", "sqlite_memory", "sqlite_tables", "postgres"]
_counter = [0]


@pytest.fixture(params=BACKENDS)
def make_store(request, tmp_path):
    """Returns an async factory of empty, initialized stores of one backend."""
    kind = request.param
    made = []
    if kind == "postgres":
        pg = request.getfixturevalue("pg")

    async def factory():
        _counter[0] += 1
        if kind == "memory":
            s = InMemoryGraphStore()
        elif kind == "sqlite_file":
            s = SQLiteGraphStore(str(tmp_path / f"g{_counter[0]}.db"))
        elif kind == "sqlite_memory":
            s = SQLiteGraphStore(":memory:")
        elif kind == "sqlite_tables":  # the original's per-tenant tables
            s = SQLiteGraphStore(str(tmp_path / f"g{_counter[0]}.db"), tenancy="tables")
        else:
            name = f"kg_conf_{_counter[0]}"
            pg.psql(f"DROP DATABASE IF EXISTS {name}")
            pg.psql(f"CREATE DATABASE {name}")
            s = PostgresGraphStore(host=pg.sockdir, user="postgres", database=name)
        await s.initialize()
        made.append(s)
        return s

    factory.kind = kind
    yield factory
    for s in made:  # those a failing test left open
        if s._native is not None:
            asyncio.run(s.close())


def run(coro):
    return asyncio.run(coro)


async def people(s, n=3):
    for i in range(n):
        await s.add_entity(Entity(f"p{i}", "Person", {"name": f"P{i}", "i": i}))


# ---------------------------------------------------------------------------
# Entities and relations
# ---------------------------------------------------------------------------

def test_entity_roundtrip(make_store):
    async def go():
        s = await make_store()
        created = datetime.datetime(2020, 5, 17, 8, 30, 15, 123456)
        props = {"name": "Zoë ✓", "nested": {"a": [1, 2.5, None, True, "x\n\"q\""]}, "big": 2 ** 70,
                 "neg": -3, "empty": {}}
        e = Entity("e1", "Person", props, embedding=[0.5, -1.0, 2.0], source="unit test",
                   created_at=created, updated_at="2021-01-02T03:04:05Z")
        await s.add_entity(e)
        got = await s.get_entity("e1")
        assert got.id == "e1" and got.entity_type == "Person"
        assert got.properties == props
        assert got.embedding == [0.5, -1.0, 2.0]
        assert got.source == "unit test"
        assert got.created_at == created
        assert got.updated_at == datetime.datetime(2021, 1, 2, 3, 4, 5)
        assert got.tenant_id is None
        # A record read back writes back unchanged (no re-encoding on the way).
        got.entity_type = "Human"
        await s.update_entity(got)
        again = await s.get_entity("e1")
        assert again.entity_type == "Human" and again.properties == props and again.created_at == created
        assert await s.get_entity("missing") is None
        await s.close()
    run(go())


def test_aware_datetimes_are_converted_to_utc(make_store):
    async def go():
        s = await make_store()
        tz = datetime.timezone(datetime.timedelta(hours=2))
        await s.add_entity(Entity("t", "T", created_at=datetime.datetime(2022, 1, 1, 12, 0, tzinfo=tz)))
        assert (await s.get_entity("t")).created_at == datetime.datetime(2022, 1, 1, 10, 0)
        await s.close()
    run(go())


def test_duplicates_and_missing(make_store):
    async def go():
        s = await make_store()
        await people(s, 2)
        with pytest.raises(DuplicateError) as ei:
            await s.add_entity(Entity("p0", "Other"))
        assert isinstance(ei.value, ValueError) and "p0" in str(ei.value) and ei.value.code == -2
        assert (await s.get_entity("p0")).entity_type == "Person"  # unchanged
        await s.upsert_entity(Entity("p0", "Other"))
        assert (await s.get_entity("p0")).entity_type == "Other"
        with pytest.raises(NotFoundError):
            await s.update_entity(Entity("nobody", "Person"))
        with pytest.raises(NotFoundError):
            await s.delete_entity("nobody")
        with pytest.raises(NotFoundError) as ei:
            await s.add_relation(Relation("r", "KNOWS", "p0", "ghost"))
        assert isinstance(ei.value, ValueError)
        await s.add_relation(Relation("r", "KNOWS", "p0", "p1"))
        with pytest.raises(DuplicateError):
            await s.add_relation(Relation("r", "KNOWS", "p1", "p0"))
        assert await s.get_relation("nope") is None
        await s.close()
    run(go())


def test_bad_input_changes_nothing(make_store):
    async def go():
        s = await make_store()
        await people(s, 2)
        for bad in (Relation("r", "KNOWS", "p0", "p1", weight=1.5), Relation("r", "KNOWS", "p0", "p1", weight=-0.1)):
            with pytest.raises(InvalidInputError):
                await s.add_relation(bad)
        with pytest.raises(ValueError):
            await s.add_entity(Entity("", "Person"))
        with pytest.raises(TypeError):
            await s.add_entity(Entity("x", "T", {"when": datetime.date.today()}))
        with pytest.raises(ValueError):
            await s.add_entity(Entity("x", "T", {"nan": math.nan}))
        with pytest.raises(TypeError):
            await s.add_entity("not an entity")
        with pytest.raises(InvalidInputError):
            TenantContext("bad tenant!")
        with pytest.raises(InvalidInputError):
            await s.get_neighbors("p0", direction="sideways")
        st = await s.get_stats()
        assert st["entity_count"] == 2 and st["relation_count"] == 0
        await s.close()
    run(go())


def test_weights_kept_exactly(make_store):
    async def go():
        s = await make_store()
        await people(s, 2)
        for i, w in enumerate([0.0, 1.0, 0.1, 1 / 3]):
            await s.add_relation(Relation(f"r{i}", "KNOWS", "p0", "p1", weight=w))
            assert (await s.get_relation(f"r{i}")).weight == w
        await s.close()
    run(go())


def test_delete_entity_deletes_relations(make_store):
    async def go():
        s = await make_store()
        await people(s, 3)
        await s.add_relation(Relation("a", "KNOWS", "p0", "p1"))
        await s.add_relation(Relation("b", "KNOWS", "p2", "p0"))
        await s.add_relation(Relation("c", "KNOWS", "p1", "p2"))
        await s.delete_entity("p0")
        assert await s.get_relation("a") is None and await s.get_relation("b") is None
        assert (await s.get_relation("c")) is not None
        await s.delete_relation("c")
        with pytest.raises(NotFoundError):
            await s.delete_relation("c")
        await s.close()
    run(go())


# ---------------------------------------------------------------------------
# Graph queries
# ---------------------------------------------------------------------------

def test_parallel_edges_neighbors_and_paths(make_store):
    async def go():
        s = await make_store()
        await people(s, 3)
        await s.add_relation(Relation("x1", "KNOWS", "p0", "p1"))
        await s.add_relation(Relation("x2", "LIKES", "p0", "p1"))  # parallel edge
        await s.add_relation(Relation("y", "KNOWS", "p1", "p2"))
        await s.add_relation(Relation("z", "KNOWS", "p2", "p0"))
        assert [e.id for e in await s.get_neighbors("p0")] == ["p1"]  # each neighbor once
        assert [e.id for e in await s.get_neighbors("p0", relation_type="LIKES")] == ["p1"]
        assert sorted(e.id for e in await s.get_neighbors("p0", direction="both")) == ["p1", "p2"]
        assert [e.id for e in await s.get_neighbors("p0", direction="incoming")] == ["p2"]
        rels = await s.get_relations("p0", direction="outgoing")
        assert [r.id for r in rels] == ["x1", "x2"]
        paths = await s.find_paths("p0", "p2", max_depth=5)
        assert len(paths) == 2  # one per parallel edge
        for p in paths:
            assert isinstance(p, Path) and p.length == 2
            assert p.get_entity_ids() == ["p0", "p1", "p2"]
            for i, e in enumerate(p.edges):
                assert e.source_id == p.nodes[i].id and e.target_id == p.nodes[i + 1].id
        assert {p.edges[0].id for p in paths} == {"x1", "x2"}
        assert len(await s.find_paths("p0", "p2", max_paths=1)) == 1
        assert await s.find_paths("p0", "p2", max_depth=1) == []
        self_path = await s.find_paths("p0", "p0")
        assert len(self_path) == 1 and self_path[0].length == 0
        trav = await s.traverse("p0", max_depth=2)
        assert [p.end_entity.id for p in trav] == ["p1", "p2"]
        sub = await s.subgraph_query(["p0", "p1", "ghost"])
        assert [e.id for e in sub["entities"]] == ["p0", "p1"]
        assert sorted(r.id for r in sub["relations"]) == ["x1", "x2"]
        await s.close()
    run(go())


def test_listing_is_paged_in_insertion_order(make_store):
    async def go():
        s = await make_store()
        await s.add_entities_bulk([Entity(f"n{i:02d}", "Even" if i % 2 == 0 else "Odd") for i in range(20)][::-1])
        ids = [e.id for e in await s.get_all_entities()]
        assert ids == [f"n{i:02d}" for i in range(20)][::-1]
        page = await s.get_all_entities(limit=5, offset=5)
        assert [e.id for e in page] == ids[5:10]
        evens = await s.get_all_entities(entity_type="Even")
        assert all(e.entity_type == "Even" for e in evens) and len(evens) == 10
        await s.add_relations_bulk([Relation(f"r{i}", "NEXT", f"n{i:02d}", f"n{i + 1:02d}") for i in range(19)])
        rels = await s.get_all_relations(limit=3, offset=2)
        assert [r.id for r in rels] == ["r2", "r3", "r4"]
        assert len(await s.get_all_relations()) == 19
        await s.close()
    run(go())


def test_bulk_all_or_nothing_and_skip_existing(make_store):
    async def go():
        s = await make_store()
        await s.add_entity(Entity("b5", "T"))
        batch = [Entity(f"b{i}", "T") for i in range(10)]
        with pytest.raises(DuplicateError) as ei:
            await s.add_entities_bulk(batch)
        assert "b5" in str(ei.value)
        assert (await s.get_stats())["entity_count"] == 1
        assert await s.add_entities_bulk(batch, skip_existing=True) == 9
        assert (await s.get_stats())["entity_count"] == 10
        await s.close()
    run(go())


def test_search(make_store):
    async def go():
        s = await make_store()
        await s.add_entity(Entity("a", "Doc", {"title": "graph databases in practice"}, embedding=[1, 0, 0]))
        await s.add_entity(Entity("b", "Doc", {"title": "cooking pasta"}, embedding=[0, 1, 0]))
        await s.add_entity(Entity("c", "Note", {"title": "graph theory"}, embedding=[0.7, 0.7, 0]))
        hits = await s.vector_search([1, 0.1, 0], max_results=2)
        assert [e.id for e, _ in hits] == ["a", "c"]
        assert hits[0][1] > hits[1][1]
        assert [e.id for e, _ in await s.vector_search([1, 0, 0], entity_type="Note")] == ["c"]
        with pytest.raises(InvalidInputError):
            await s.vector_search([1, 0])
        for method in ("bm25", "jaccard", "cosine", "levenshtein"):
            hits = await s.text_search("graph", method=method)
            assert {e.id for e, _ in hits} >= {"a", "c"} and all(0 < sc <= 1 for _, sc in hits)
        await s.add_indexed_property("title")
        found = await s.lookup_by_property("title", "cooking pasta")
        assert [e.id for e in found] == ["b"]
        await s.close()
    run(go())


# ---------------------------------------------------------------------------
# Tenants, transactions
# ---------------------------------------------------------------------------

def test_tenants_are_isolated(make_store):
    async def go():
        s = await make_store()
        a, b = TenantContext("acme"), TenantContext("beta-co")
        await s.add_entity(Entity("x", "T", {"who": "global"}))
        await s.add_entity(Entity("x", "T", {"who": "acme"}), context=a)
        await s.add_entity(Entity("y", "T"), context=a)
        await s.add_relation(Relation("r", "R", "x", "y"), context=a)
        assert (await s.get_entity("x", context=a)).properties == {"who": "acme"}
        assert (await s.get_entity("x", context=a)).tenant_id == "acme"
        assert (await s.get_entity("x")).properties == {"who": "global"}
        assert await s.get_entity("y") is None
        assert await s.get_entity("x", context=b) is None
        with pytest.raises(NotFoundError):
            await s.add_relation(Relation("r", "R", "x", "y"))  # y is acme's only
        tb = s.for_tenant("beta-co")
        await tb.add_entity(Entity("z", "T"))
        assert await s.list_tenants() == ["acme", "beta-co"]
        assert (await s.get_stats(context=a))["entity_count"] == 2
        await s.clear(context=a)
        assert (await s.get_stats(context=a))["entity_count"] == 0
        assert (await s.get_entity("x")) is not None and (await tb.get_entity("z")) is not None
        await s.close()
        if make_store.kind == "sqlite_tables":  # where the original looks for them
            import sqlite3
            db = sqlite3.connect(s.db_path)
            assert db.execute("SELECT id FROM tenant_beta_co_entities").fetchall() == [("z",)]
            assert db.execute("SELECT count(*) FROM entities WHERE tenant_id IS NOT NULL").fetchone() == (0,)
            db.close()
    run(go())


def test_transactions_commit_and_rollback(make_store):
    async def go():
        s = await make_store()
        async with s.transaction() as tx:
            await tx.add_entity(Entity("t1", "T"))
            await tx.add_entity(Entity("t2", "T"))
            assert (await tx.get_entity("t1")) is not None
        assert (await s.get_entity("t2")) is not None
        with pytest.raises(RuntimeError):
            async with s.transaction() as tx:
                await tx.add_entity(Entity("t3", "T"))
                await tx.delete_entity("t1")
                raise RuntimeError("abort")
        assert await s.get_entity("t3") is None and await s.get_entity("t1") is not None
        # A failed call inside leaves the transaction usable.
        async with s.transaction() as tx:
            with pytest.raises(DuplicateError):
                await tx.add_entity(Entity("t1", "T"))
            await tx.add_entity(Entity("t4", "T"))
        assert await s.get_entity("t4") is not None
        await s.close()
    run(go())


# ---------------------------------------------------------------------------
# Export, import, migration
# ---------------------------------------------------------------------------

def test_export_import_roundtrip(make_store, tmp_path):
    async def go():
        s = await make_store()
        await people(s, 3)
        await s.add_relation(Relation("r", "KNOWS", "p0", "p1", {"since": 2001}, weight=0.0))
        await s.add_entity(Entity("p0", "Person", {"t": 1}), context="acme")
        res = await kgstore.GraphStreamExporter(s).export_to_file(str(tmp_path / "out.jsonl"), compress=True)
        assert res["filepath"].endswith(".jsonl.gz") and res["compressed"]
        assert res["entity_count"] == 4 and res["relation_count"] == 1
        with gzip.open(res["filepath"], "rt") as f:
            lines = [json.loads(line) for line in f]
        assert lines[0]["type"] == "entity" and lines[-1]["type"] == "relation"

        t = InMemoryGraphStore()
        got = await kgstore.GraphStreamImporter(t).import_from_file(res["filepath"], batch_size=2)
        assert got["entity_count"] == 4 and got["relation_count"] == 1
        assert (await t.get_relation("r")).weight == 0.0
        assert (await t.get_relation("r")).properties == {"since": 2001}
        assert (await t.get_entity("p0", context="acme")).properties == {"t": 1}
        # All or nothing: importing again fails on the first duplicate and adds nothing.
        with pytest.raises(DuplicateError):
            await kgstore.GraphStreamImporter(t).import_from_file(res["filepath"])
        assert (await t.get_stats())["entity_count"] == 3
        assert (await kgstore.GraphStorageMigrator().verify_migration(s, t))["equal"]
        await t.close()
        await s.close()
    run(go())


def test_import_reports_bad_file(make_store, tmp_path):
    async def go():
        s = await make_store()
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"type": "entity", "data": {"id": "a", "entity_type": "T"}}\n{not json\n')
        with pytest.raises(kgstore.KgError) as ei:
            await kgstore.GraphStreamImporter(s).import_from_file(str(bad))
        assert "bad.jsonl" in str(ei.value) and ":2" in str(ei.value)
        assert (await s.get_stats())["entity_count"] == 0
        await s.close()
    run(go())


def test_migrate_into_memory(make_store):
    async def go():
        s = await make_store()
        await people(s, 5)
        await s.add_relation(Relation("r", "KNOWS", "p0", "p4", weight=0.25))
        await s.add_entity(Entity("q", "T"), context="t1")
        dst = InMemoryGraphStore()
        res = await kgstore.GraphStorageMigrator().migrate(s, dst, batch_size=2)
        assert res["verified"] and res["entity_count"] == 6 and res["relation_count"] == 1
        assert (await dst.get_relation("r")).weight == 0.25
        assert await dst.list_tenants() == ["t1"]
        await dst.close()
        await s.close()
    run(go())


# ---------------------------------------------------------------------------
# Threads: the C call runs without the GIL
# ---------------------------------------------------------------------------

def test_calls_overlap_without_the_gil():
    """A write from another handle waits in C for an open transaction to end.
    If it held the GIL, the event loop could never run the commit and the
    write would fail with StoreBusyError after the lock timeout; it succeeds,
    and only after the commit."""
    async def go():
        s = InMemoryGraphStore(offload=True)
        await s.initialize()
        order = []
        started = threading.Event()
        async with s.transaction() as tx:
            await tx.add_entity(Entity("in-txn", "T"))

            def blocked_write():
                started.set()
                s.raw.add_entity(Entity("outside", "T"))  # waits for the commit
                order.append("write")

            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(s._executor, blocked_write)
            await loop.run_in_executor(None, started.wait)
            while s.raw.busy == 0:  # until the write is inside the C call
                await asyncio.sleep(0.001)
            order.append("commit")
        await fut
        assert order == ["commit", "write"]
        assert await s.get_entity("outside") is not None
        await s.close()
    run(go())


def test_many_coroutines_on_sqlite_and_memory(tmp_path):
    async def go():
        for s in (SQLiteGraphStore(str(tmp_path / "c.db")), InMemoryGraphStore()):
            await s.initialize()
            await s.add_entities_bulk([Entity(f"c{i}", "T", {"i": i}) for i in range(200)])
            got = await asyncio.gather(*(s.get_entity(f"c{i}") for i in range(200)))
            assert [g.properties["i"] for g in got] == list(range(200))
            await asyncio.gather(*(s.add_entity(Entity(f"d{i}", "T")) for i in range(50)))
            assert (await s.get_stats())["entity_count"] == 250
            await s.close()
    run(go())


def test_check_same_thread(tmp_path):
    async def go():
        s = SQLiteGraphStore(str(tmp_path / "st.db"), check_same_thread=True)
        await s.initialize()
        await s.add_entity(Entity("a", "T"))  # on the one worker that opened it
        assert (await s.get_entity("a")) is not None
        with pytest.raises(InvalidInputError, match="check_same_thread"):
            s.raw.get_entity("a")  # this thread did not open it
        await s.close()
    run(go())


def test_closed_and_uninitialized_stores_say_so():
    async def go():
        s = InMemoryGraphStore()
        with pytest.raises(InvalidInputError, match="initialize"):
            await s.get_entity("a")
        await s.initialize()
        raw = s.raw
        await s.close()
        with pytest.raises(InvalidInputError, match="closed"):
            raw.get_entity("a")
    run(go())


def test_memory_budget():
    async def go():
        s = InMemoryGraphStore(max_memory=20000)
        await s.initialize()
        with pytest.raises(kgstore.BudgetExceededError):
            for i in range(1000):
                await s.add_entity(Entity(f"m{i}", "T", {"pad": "x" * 100}))
        await s.close()
    run(go())


def test_model_objects():
    e = Entity("a", "T", {"k": [1]})
    assert e == Entity("a", "T", {"k": [1]}) and e != Entity("a", "U", {"k": [1]})
    assert repr(e) == "Entity(id='a', entity_type='T')"
    e.properties["k"].append(2)
    assert e.to_dict()["properties"] == {"k": [1, 2]}
    with pytest.raises(TypeError):
        Entity("a", "T", properties=[1])
    with pytest.raises(TypeError):
        e.id = 5
    r = Relation("r", "R", "a", "b")
    assert r.weight == 1.0 and r.properties == {}
    with pytest.raises(InvalidInputError):
        Path([Entity("a", "T"), Entity("b", "T")], [Relation("r", "R", "b", "a")])
    assert isinstance(kgstore.GraphConnectionError("x"), ConnectionError)
    assert issubclass(kgstore.PoolExhaustedError, kgstore.GraphConnectionError)
    assert issubclass(kgstore.NotFoundError, LookupError)


def test_pool_exhausted_is_a_connection_error(pg):
    """One connection, held by a transaction: another call waits out the
    pool timeout and gets PoolExhaustedError (a GraphConnectionError, so a
    ConnectionError), with the library's message."""
    async def go():
        pg.psql("DROP DATABASE IF EXISTS kg_conf_pool")
        pg.psql("CREATE DATABASE kg_conf_pool")
        s = PostgresGraphStore(host=pg.sockdir, user="postgres", database="kg_conf_pool", min_pool_size=1,
                               max_pool_size=1, pool_timeout=0.3)
        await s.initialize()
        async with s.transaction() as tx:
            await tx.add_entity(Entity("held", "T"))
            with pytest.raises(kgstore.PoolExhaustedError) as ei:
                await s.get_entity("held")
            assert isinstance(ei.value, ConnectionError) and ei.value.code == -6
            assert "pool" in str(ei.value)
        assert (await s.get_entity("held")) is not None  # committed, connection back
        await s.close()
    run(go())


def test_relation_update_and_upsert(make_store):
    async def go():
        s = await make_store()
        await people(s, 3)
        await s.add_relation(Relation("r", "KNOWS", "p0", "p1", {"a": 1}, weight=0.5))
        r = await s.get_relation("r")
        r.properties = {"a": 2}
        r.weight = 0.75
        await s.update_relation(r)
        got = await s.get_relation("r")
        assert got.properties == {"a": 2} and got.weight == 0.75 and got.created_at == r.created_at
        with pytest.raises(NotFoundError):
            await s.update_relation(Relation("zz", "KNOWS", "p0", "p1"))
        await s.upsert_relation(Relation("zz", "KNOWS", "p1", "p2"))
        assert (await s.get_relation("zz")).target_id == "p2"
        await s.close()
    run(go())
