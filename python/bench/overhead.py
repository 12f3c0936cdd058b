"""Per-call overhead and bulk-insert figures of the kgstore Python binding.

    PYTHONPATH=<build>/python python3 python/bench/overhead.py [--n 10000] [--runs 5]

Prints, as medians over the runs:
  get_entity on memory: raw (sync, store.raw.get_entity), async inline (the
  memory default), async offloaded (run_in_executor, offload=True); compare
  with the C call alone, `kgstore bench --backend memory` (its get_entity row);
  bulk insert of N entities on SQLite (a file, WAL) from Python, with the
  Entity objects built beforehand and with their building timed too; the
  entities carry the properties of ../shared/bench/WORKLOAD.md
  ({"name", "rank", "score", "tags"}).
"""
import argparse
import asyncio
import os
import statistics
import tempfile
import time

import kgstore
from kgstore import Entity, InMemoryGraphStore, SQLiteGraphStore


def per_call(fn, ids, reps):
    t = time.perf_counter()
    for _ in range(reps):
        for i in ids:
            fn(i)
    return (time.perf_counter() - t) / (reps * len(ids))


async def per_call_async(fn, ids, reps):
    t = time.perf_counter()
    for _ in range(reps):
        for i in ids:
            await fn(i)
    return (time.perf_counter() - t) / (reps * len(ids))


def make_entities(n, prefix="e"):
    # WORKLOAD.md's entity properties.
    return [Entity(f"{prefix}{i}", "Person", {"name": f"entity {i}", "rank": i, "score": round(i / 7, 6),
                                              "tags": [f"t{i % 10}", f"t{i % 7}"]})
            for i in range(n)]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    n = args.n

    rows = {}
    store = InMemoryGraphStore()
    await store.initialize()
    await store.add_entities_bulk(make_entities(n))
    ids = [f"e{i}" for i in range(n)]
    raw = store.raw
    off = InMemoryGraphStore(offload=True)
    await off.initialize()
    await off.add_entities_bulk(make_entities(2000))
    oids = ids[:2000]
    for _ in range(args.runs):
        rows.setdefault("memory get_entity raw (sync)", []).append(per_call(raw.get_entity, ids, 5))
        rows.setdefault("memory get_entity async (inline)", []).append(
            await per_call_async(store.get_entity, ids, 5))
        rows.setdefault("memory get_entity async (offload=True, executor)", []).append(
            await per_call_async(off.get_entity, oids, 1))
        rows.setdefault("python loop, no call (baseline)", []).append(per_call(len, ids, 5))
    await store.close()
    await off.close()

    with tempfile.TemporaryDirectory() as d:
        s = SQLiteGraphStore(os.path.join(d, "get.db"))
        await s.initialize()
        await s.add_entities_bulk(make_entities(2000))
        for _ in range(args.runs):
            rows.setdefault("sqlite get_entity raw (sync)", []).append(per_call(s.raw.get_entity, oids, 1))
            rows.setdefault("sqlite get_entity async (executor)", []).append(
                await per_call_async(s.get_entity, oids, 1))
        await s.close()
        for run in range(args.runs):
            path = os.path.join(d, f"bulk{run}.db")
            s = SQLiteGraphStore(path)
            await s.initialize()
            ents = make_entities(n)
            t = time.perf_counter()
            await s.add_entities_bulk(ents)
            rows.setdefault(f"sqlite bulk insert {n} (Entity objects ready)", []).append(time.perf_counter() - t)
            path2 = os.path.join(d, f"bulk{run}b.db")
            s2 = SQLiteGraphStore(path2)
            await s2.initialize()
            t = time.perf_counter()
            await s2.add_entities_bulk(make_entities(n, "f"))
            rows.setdefault(f"sqlite bulk insert {n} (incl. building Entity objects)", []).append(
                time.perf_counter() - t)
            got = await s.get_stats()
            assert got["entity_count"] == n, got
            await s.close()
            await s2.close()

    print(f"kgstore {kgstore.__version__} Python binding, medians of {args.runs} runs")
    for k, v in rows.items():
        m = statistics.median(v)
        if "bulk" in k:
            print(f"  {k:55s} {m * 1e3:9.2f} ms")
        else:
            print(f"  {k:55s} {m * 1e6:9.3f} us")


if __name__ == "__main__":
    asyncio.run(main())
