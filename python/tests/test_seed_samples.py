"""Every Python sample of the seed's BACKEND_CONFIGURATION.md, run as written
with only its import lines changed (aiecs.* and dotenv -> kgstore), against
the in-memory store, SQLite files and the tests' own PostgreSQL server.

The samples are read from the seed document itself (KG_SEED_DOC, default
../shared/seed/BACKEND_CONFIGURATION.md beside the repository); a verbatim
copy of its code blocks (seed_samples.md) is used where the seed is not
checked out, and test_snapshot_matches_seed fails if the two drift apart.

Names a sample uses without defining are those the document defined or
imported before it (the reader runs them in order); where the document uses
names it never defines (source_store, target_store), the test provides them.
"""
import ast
import asyncio
import os
import re
import warnings

import pytest

import kgstore
from kgstore import Entity, GraphConnectionError, GraphStore, Relation, SQLiteGraphStore

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.environ.get("KG_SEED_DOC") or os.path.join(HERE, "..", "..", "..", "shared", "seed",
                                                     "BACKEND_CONFIGURATION.md")
SNAPSHOT = os.path.join(HERE, "seed_samples.md")

_IMPORT_AIECS = re.compile(r"^from aiecs(\.\w+)+ import (.+)$")


def _blocks(text):
    return re.findall(r"```(\w*)\n(.*?)```", text, re.S)


def load_blocks():
    path = SEED if os.path.exists(SEED) else SNAPSHOT
    with open(path, encoding="utf-8") as f:
        return _blocks(f.read())


BLOCKS = load_blocks()
PY = [code for lang, code in BLOCKS if lang == "python"]
DOTENV = [code for lang, code in BLOCKS if lang == "bash"][0]


def rewrite(code):
    """Only import lines change; returns (new code, number of lines changed)."""
    out, changed = [], 0
    for line in code.split("\n"):
        m = _IMPORT_AIECS.match(line)
        if m:
            line = f"from kgstore import {m.group(2)}"
            changed += 1
        elif line == "from dotenv import load_dotenv":
            line = "from kgstore import load_dotenv"
            changed += 1
        out.append(line)
    return "\n".join(out), changed


def sample(title_words):
    """The one Python sample whose text contains every given word."""
    hits = [i for i, c in enumerate(PY) if all(w in c for w in title_words)]
    assert len(hits) == 1, (title_words, hits)
    return hits[0]


def prior_imports(idx):
    """The kgstore imports of every sample before idx (a reader's session)."""
    lines = []
    for code in PY[:idx]:
        for line in rewrite(code)[0].split("\n"):
            if line.startswith(("from kgstore import", "import ")):
                lines.append(line)
    return "\n".join(lines)


async def run_sample(idx, ns=None, prelude=True):
    ns = {} if ns is None else ns
    if prelude:
        exec(prior_imports(idx), ns)
    code, _ = rewrite(PY[idx])
    compiled = compile(code, f"<seed sample {idx}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    res = eval(compiled, ns)
    if asyncio.iscoroutine(res):
        await res
    return ns


async def close_all(ns):
    for v in list(ns.values()):
        if isinstance(v, GraphStore):
            await v.close()


async def roundtrip(store, eid="sample-check"):
    await store.add_entity(Entity(eid, "Check", {"ok": True}))
    got = await store.get_entity(eid)
    assert got is not None and got.properties == {"ok": True}
    await store.delete_entity(eid)
    assert await store.get_entity(eid) is None


def fresh_db(pg, name, monkeypatch, owner="postgres"):
    """A new database on the test server, and DB_* pointing at it."""
    pg.psql(f"DROP DATABASE IF EXISTS {name}")
    pg.psql(f"CREATE DATABASE {name} OWNER {owner}")
    for k, v in pg.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DB_NAME", name)


def need_local(pg):
    if not pg.local_port:
        pytest.skip("127.0.0.1:5432 is taken by another program; the samples naming localhost:5432 "
                    "cannot reach the test server")


def seed_sqlite_file(path, n=50):
    async def go():
        s = SQLiteGraphStore(path)
        await s.initialize()
        await s.add_entities_bulk([Entity(f"m{i}", "Person", {"i": i, "name": f"n{i}"}) for i in range(n)])
        await s.add_relations_bulk([Relation(f"k{i}", "KNOWS", f"m{i}", f"m{i + 1}", weight=i / n)
                                    for i in range(n - 1)])
        t = s.for_tenant("acme")
        await t.add_entity(Entity("m0", "Person", {"tenant": "acme"}))
        await s.close()
    asyncio.run(go())


# ---------------------------------------------------------------------------


def test_samples_found():
    assert len(PY) == 18
    for code in PY:
        new, changed = rewrite(code)
        assert new.count("aiecs") == 0
        assert changed == sum(1 for line in code.split("\n")
                              if line.startswith(("from aiecs", "from dotenv")))


def test_snapshot_matches_seed():
    if not os.path.exists(SEED):
        pytest.skip("the seed document is not checked out beside the repository")
    with open(SNAPSHOT, encoding="utf-8") as f:
        assert _blocks(f.read()) == BLOCKS, "seed_samples.md is stale: copy the seed's code blocks again"


def test_inmemory_configuration():
    async def go():
        ns = await run_sample(sample(["InMemoryGraphStore()", "Simple initialization"]))
        assert isinstance(ns["store"], kgstore.InMemoryGraphStore)
        await roundtrip(ns["store"])
        await close_all(ns)
    asyncio.run(go())


def test_sqlite_configuration_and_pragmas(tmp_cwd):
    async def go():
        idx = sample(["SQLiteGraphStore(", "File-based storage"])
        ns = await run_sample(idx)
        assert (tmp_cwd / "knowledge_graph.db").exists() and (tmp_cwd / "graph.db").exists()
        store = ns["store"]
        assert store.db_path == "graph.db" and store.backend == "sqlite"
        await roundtrip(store)
        # The tuning sample runs on that store (the document's order).
        ns = await run_sample(sample(["PRAGMA journal_mode = WAL"]), ns, prelude=False)
        async with store.conn.execute("PRAGMA cache_size") as cur:
            assert await cur.fetchone() == (-64000,)
        # A different value reopens the file with it; the data stays.
        await store.add_entity(Entity("kept", "Check"))
        await store.conn.execute("PRAGMA cache_size = -128000")
        async with store.conn.execute("PRAGMA cache_size") as cur:
            assert await cur.fetchone() == (-128000,)
        assert (await store.get_entity("kept")).entity_type == "Check"
        with pytest.raises(kgstore.UnsupportedError):
            await store.conn.execute("SELECT * FROM entities")
        await close_all(ns)
    asyncio.run(go())


def test_postgres_basic_and_pooling(pg, tmp_cwd):
    need_local(pg)

    async def go():
        for words in (["PostgresGraphStore(", 'database="knowledge_graph"\n)'], ["min_pool_size=5,   # Minimum"]):
            ns = await run_sample(sample(words))
            store = ns["store"]
            assert store.backend == "postgresql"
            await roundtrip(store)
            if "min_pool_size" in PY[sample(words)]:
                st = store.get_pool_stats()
                assert st["min_size"] == 5 and st["max_size"] == 20
            await close_all(ns)
    asyncio.run(go())


def test_postgres_ssl_sample_reports_unreachable_host():
    # As written it names postgres.example.com, which does not resolve
    # here: the binding must say so with its connection error class.
    async def go():
        with pytest.raises(GraphConnectionError) as ei:
            await run_sample(sample(['sslmode="require"']))
        assert "postgres.example.com" in str(ei.value)
        assert isinstance(ei.value, ConnectionError)
    asyncio.run(go())


def test_postgres_shared_pool(pg, monkeypatch):
    fresh_db(pg, "kg_sample_pool", monkeypatch)

    async def go():
        ns = await run_sample(sample(["DatabaseManager(...)"]))
        store, dbm = ns["store"], ns["db_manager"]
        assert dbm.pool is not None
        await roundtrip(store)
        other = kgstore.PostgresGraphStore(pool=dbm.pool)
        await other.initialize()
        await store.add_entity(Entity("shared", "Check"))
        assert (await other.get_entity("shared")) is not None
        assert dbm.get_pool_stats()["size"] >= 1
        await other.close()
        await close_all(ns)
        await dbm.close()
    asyncio.run(go())


def test_postgres_pgvector_sample(pg, monkeypatch):
    fresh_db(pg, "kg_sample_vec", monkeypatch)

    async def go():
        # The test server has no pgvector: the store says so and searches
        # in the client, as the original carried on without the extension.
        with pytest.warns(RuntimeWarning, match="vector"):
            ns = await run_sample(sample(["enable_pgvector=True  # Enable vector extension"]))
        store = ns["store"]
        await store.add_entity(Entity("v1", "Doc", embedding=[1.0, 0.0]))
        await store.add_entity(Entity("v2", "Doc", embedding=[0.0, 1.0]))
        hits = await store.vector_search([0.9, 0.1], max_results=1)
        assert [e.id for e, _ in hits] == ["v1"]
        await close_all(ns)
    asyncio.run(go())


def test_environment_variables_sample(pg, tmp_cwd, monkeypatch):
    need_local(pg)
    for k in ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "ENABLE_PGVECTOR"):
        monkeypatch.delenv(k, raising=False)
    # The document's .env file, as written. load_dotenv writes os.environ
    # itself, so the environment is put back by hand afterwards.
    (tmp_cwd / ".env").write_text(DOTENV)
    saved = dict(os.environ)

    async def go():
        with pytest.warns(RuntimeWarning, match="vector"):
            ns = await run_sample(sample(["load_dotenv()"]))
        assert os.environ["DB_USER"] == "graph_user"
        store = ns["store"]
        assert store.enable_pgvector is True
        await roundtrip(store)
        await close_all(ns)
    try:
        asyncio.run(go())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_migration_sample(pg, tmp_cwd, monkeypatch):
    seed_sqlite_file(str(tmp_cwd / "old_graph.db"))
    fresh_db(pg, "kg_sample_migrate", monkeypatch)

    async def go():
        ns = await run_sample(sample(["GraphStorageMigrator()"]))
        target = ns["target"]
        st = await target.get_stats()
        assert st["entity_count"] == 50 and st["relation_count"] == 49
        r = await target.get_relation("k0")
        assert r.weight == 0.0
        assert (await target.get_entity("m0", context=kgstore.TenantContext("acme"))).properties == {
            "tenant": "acme"}
        check = await ns["migrator"].verify_migration(ns["source"], target)
        assert check["equal"]
        await close_all(ns)
    asyncio.run(go())


def test_manual_migration_sample(pg, tmp_cwd, monkeypatch):
    seed_sqlite_file(str(tmp_cwd / "src.db"))
    fresh_db(pg, "kg_sample_stream", monkeypatch)

    async def go():
        # The document never defines these two: any source and target.
        ns = {"source_store": SQLiteGraphStore("src.db"), "target_store": kgstore.PostgresGraphStore(...)}
        ns = await run_sample(sample(["GraphStreamExporter(source_store)"]), ns)
        assert (tmp_cwd / "migration.jsonl.gz").exists()
        with open(tmp_cwd / "migration.jsonl.gz", "rb") as f:
            assert f.read(2) == b"\x1f\x8b"
        st = await ns["target_store"].get_stats()
        assert st["entity_count"] == 50 and st["relation_count"] == 49
        assert await ns["target_store"].list_tenants() == ["acme"]
        await close_all(ns)
    asyncio.run(go())


def test_development_and_testing_samples():
    async def go():
        ns = await run_sample(sample(["Use InMemory for fast iteration"]))
        assert ns["store"].backend == "memory"
        await roundtrip(ns["store"])
        await close_all(ns)
        ns = await run_sample(sample(["Use SQLite for test isolation"]))
        assert ns["store"].backend == "sqlite"
        await roundtrip(ns["store"])
        await close_all(ns)
    asyncio.run(go())


def test_staging_sample_is_not_valid_python():
    # "host=os.getenv(...), ..." puts a positional argument after a keyword
    # one: Python refuses it before any library is involved. Recorded here so
    # a fixed seed turns this test red and gets a real run.
    code, _ = rewrite(PY[sample(["Use PostgreSQL matching production"])])
    with pytest.raises(SyntaxError, match="positional argument follows keyword argument"):
        compile(code, "<staging>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_production_sample(pg, monkeypatch):
    fresh_db(pg, "kg_sample_prod", monkeypatch)

    async def go():
        with pytest.warns(RuntimeWarning, match="vector"):
            ns = await run_sample(sample(["Full production configuration"]))
        store = ns["store"]
        st = store.get_pool_stats()
        assert st["min_size"] == 10 and st["max_size"] == 50
        await roundtrip(store)
        await close_all(ns)
    asyncio.run(go())


def test_pool_sizing_sample(pg, monkeypatch):
    fresh_db(pg, "kg_sample_sizing", monkeypatch)

    async def go():
        ns = await run_sample(sample(["Rule of thumb"]))
        store = ns["store"]  # the sample builds it; initializing is the reader's next line
        await store.initialize()
        assert store.get_pool_stats()["max_size"] == 20
        await close_all(ns)
    asyncio.run(go())


def test_get_graph_store_sample(pg, monkeypatch):
    fresh_db(pg, "kg_sample_env", monkeypatch)

    async def go():
        ns = await run_sample(sample(["def get_graph_store():"]))
        expect = {"production": "postgresql", "staging": "postgresql", "testing": "sqlite",
                  "development": "memory"}
        for env, backend in expect.items():
            monkeypatch.setenv("ENVIRONMENT", env)
            store = ns["get_graph_store"]()
            await store.initialize()
            assert store.backend == backend
            await roundtrip(store, f"check-{env}")
            await store.close()
    asyncio.run(go())


def test_graceful_degradation_sample(pg, monkeypatch, tmp_path):
    """The sample over the tests' server, then a real outage: the server is
    halted, reads are answered by the fallback, and after a restart the
    store recovers. A server of its own, so the others are not disturbed."""
    from conftest import PG_SCRIPT, PgServer, sh

    sockdir = "/tmp/kgpydg%d" % os.getpid()
    sh("sh", PG_SCRIPT, "start", sockdir)
    try:
        srv = PgServer(sockdir)
        for k, v in srv.env().items():
            monkeypatch.setenv(k, v)

        async def go():
            ns = await run_sample(sample(["GracefulDegradationStore(primary, enable_fallback=True)"]))
            store = ns["store"]
            assert store.get_degradation_status()["state"] == "normal"
            await store.add_entity(Entity("warm", "Check", {"v": 1}))
            assert (await store.get_entity("warm")).properties == {"v": 1}
            assert store.last_call_degraded() is False

            sh("sh", PG_SCRIPT, "halt", sockdir)
            got, errors = None, 0
            for _ in range(10):  # connection failures until the switch
                try:
                    got = await store.get_entity("warm")
                    if store.get_degradation_status()["state"] == "degraded":
                        break
                except GraphConnectionError:
                    errors += 1
            st = store.get_degradation_status()
            assert st["state"] == "degraded", st
            assert got is not None and got.properties == {"v": 1}  # warmed into the fallback
            # The sample sets no journal_path: writes are refused while
            # degraded (rather than lost, as in the original).
            with pytest.raises(GraphConnectionError, match="journal_path"):
                await store.add_entity(Entity("new", "Check"))

            sh("sh", PG_SCRIPT, "resume", sockdir)
            assert await store.try_recover() is True
            assert store.get_degradation_status()["state"] == "normal"
            assert (await store.get_entity("warm")).properties == {"v": 1}
            assert store.last_call_degraded() is False
            await close_all(ns)

            # With a journal, writes taken while degraded reach the primary.
            primary = kgstore.PostgresGraphStore(...)
            store = kgstore.GracefulDegradationStore(primary, journal_path=str(tmp_path / "journal"),
                                                     max_failures=1)
            await store.initialize()
            sh("sh", PG_SCRIPT, "halt", sockdir)
            for _ in range(5):
                try:
                    await store.get_entity("warm")
                except GraphConnectionError:
                    pass
                if store.is_degraded:
                    break
            assert store.is_degraded
            await store.add_entity(Entity("journaled", "Check", {"while": "down"}))
            with pytest.raises(ValueError):  # a request error, not an outage
                await store.add_entity(Entity("journaled", "Check"))
            assert store.get_degradation_status()["pending"] >= 1
            sh("sh", PG_SCRIPT, "resume", sockdir)
            assert await store.try_recover() is True
            await store.close()
            direct = kgstore.PostgresGraphStore(...)
            await direct.initialize()
            assert (await direct.get_entity("journaled")).properties == {"while": "down"}
            await direct.close()
        asyncio.run(go())
    finally:
        sh("sh", PG_SCRIPT, "stop", sockdir, check=False)
