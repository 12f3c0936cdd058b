"""The binding frees what it allocates: every operation is repeated many
times and the C heap (glibc's mallinfo2, which counts the library's and the
binding's allocations; PYTHONMALLOC=malloc puts Python objects there too)
must not grow with the number of repetitions. A leak of one record per call
would add hundreds of kilobytes; the bound below allows for allocator
noise only.

Skipped under AddressSanitizer, whose allocator mallinfo2 does not see
(those runs check memory errors instead)."""
import asyncio
import ctypes
import gc
import os

import pytest

import kgstore
from kgstore import Entity, InMemoryGraphStore, Relation, SQLiteGraphStore, _native

ASAN = "asan" in os.environ.get("LD_PRELOAD", "")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


def heap_in_use():
    libc = ctypes.CDLL(None)
    f = libc.mallinfo2
    f.restype = _Mallinfo2
    gc.collect()
    m = f()
    return m.uordblks + m.hblkhd


def growth(fn, reps):
    for _ in range(reps):  # warm-up: caches, free lists, interned strings
        fn()
    before = heap_in_use()
    for _ in range(reps):
        fn()
    return heap_in_use() - before


@pytest.mark.skipif(ASAN, reason="mallinfo2 does not see AddressSanitizer's heap")
@pytest.mark.parametrize("uri", ["memory:", "sqlite::memory:"])
def test_no_growth_over_repeated_calls(uri, tmp_path):
    s = _native.open(uri)
    s.add_entities([Entity(f"e{i}", "T", {"i": i, "s": "x" * 50}, embedding=[1.0, 2.0]) for i in range(50)])
    s.add_relations([Relation(f"r{i}", "R", f"e{i}", f"e{i + 1}", {"w": i}) for i in range(49)])
    view = s.tenant("t1")
    counter = [0]

    def ops():
        counter[0] += 1
        n = counter[0]
        e = s.get_entity("e1")
        assert e.properties["i"] == 1 and e.embedding == [1.0, 2.0] and e.created_at is not None
        assert s.get_entity("missing") is None
        s.neighbors("e1")
        s.relations_of("e1", direction="both")
        s.find_paths("e0", "e5", 6)
        s.traverse("e0", None, 3, 10)
        s.subgraph(["e1", "e2", "zz"])
        s.list_entities(limit=10)
        s.list_relations(limit=10)
        s.vector_search([1.0, 2.0], k=3)
        s.text_search("x", k=3)
        s.stats()
        view.add_entity(Entity("v", "T", {"n": n}))
        view.delete_entity("v")
        try:
            s.add_entity(Entity("e1", "T"))
        except kgstore.DuplicateError:
            pass
        try:
            s.add_relation(Relation("bad", "R", "e1", "nowhere"))
        except kgstore.NotFoundError:
            pass
        t = s.begin()
        t.add_entity(Entity("tx", "T"))
        t.delete_entity("e1")
        t.rollback()
        t = s.begin()
        t.add_entity(Entity("tx", "T"))
        t.commit()
        s.delete_entity("tx")

    grew = growth(ops, 1000)
    view.close()
    s.close()
    assert grew < 64 * 1024, f"heap grew by {grew} bytes over 1000 repetitions"


@pytest.mark.skipif(ASAN, reason="mallinfo2 does not see AddressSanitizer's heap")
def test_no_growth_async_and_open_close(tmp_path):
    path = str(tmp_path / "l.db")

    def cycle():
        async def go():
            for s in (InMemoryGraphStore(), SQLiteGraphStore(path)):
                await s.initialize()
                await s.upsert_entity(Entity("a", "T", {"k": "v"}))
                await s.get_entity("a")
                await s.close()
        asyncio.run(go())

    grew = growth(cycle, 40)
    assert grew < 256 * 1024, f"heap grew by {grew} bytes over 40 open/close cycles"
