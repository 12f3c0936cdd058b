#!/usr/bin/env python3
"""kgstore from Python: the README's quick start, with asyncio.

    PYTHONPATH=build/python python3 python/examples/quickstart.py [sqlite-file]

Builds a small graph, asks it questions, runs several lookups at once,
writes in a transaction and per tenant, then exports it and migrates it into
a SQLite file (a temporary one unless a path is given).
"""
import asyncio
import os
import sys
import tempfile

from kgstore import (DuplicateError, Entity, GraphStorageMigrator, GraphStreamExporter, InMemoryGraphStore,
                     Relation, SQLiteGraphStore, TenantContext)


async def main(sqlite_path):
    store = InMemoryGraphStore()
    await store.initialize()

    await store.add_entity(Entity("alice", "Person", {"name": "Alice", "skills": ["c", "sql"]}))
    await store.add_entity(Entity("bob", "Person", {"name": "Bob"}))
    await store.add_entity(Entity("acme", "Company", {"name": "ACME"}, embedding=[0.1, 0.9, 0.0]))
    await store.add_relation(Relation("r1", "WORKS_FOR", "alice", "acme", weight=0.9))
    await store.add_relation(Relation("r2", "KNOWS", "bob", "alice", {"since": 2019}))

    for e in await store.get_neighbors("alice"):
        print(f"alice -> {e.id} ({e.entity_type})")
    for p in await store.find_paths("bob", "acme", max_depth=3):
        print("path:", " -> ".join(p.get_entity_ids()), "via", p.get_relation_types())

    # Several coroutines at once; None for an id that is not there.
    found = await asyncio.gather(*(store.get_entity(i) for i in ("alice", "bob", "nobody")))
    print("lookups:", [e.id if e else None for e in found])

    try:
        await store.add_entity(Entity("alice", "Person"))
    except DuplicateError as err:  # a ValueError, with the library's message
        print("refused:", err)

    async with store.transaction() as tx:
        await tx.add_entity(Entity("carol", "Person", {"name": "Carol"}))
        await tx.add_relation(Relation("r3", "KNOWS", "carol", "bob"))

    acme = TenantContext("acme-corp")
    await store.add_entity(Entity("alice", "Employee", {"badge": 7}), context=acme)
    print("tenant view of alice:", (await store.get_entity("alice", context=acme)).properties)

    hits = await store.text_search("alice", max_results=2)
    print("text search:", [(e.id, round(s, 3)) for e, s in hits])
    print("stats:", await store.get_stats())

    with tempfile.TemporaryDirectory() as d:
        out = await GraphStreamExporter(store).export_to_file(os.path.join(d, "graph.jsonl"), compress=True)
        print(f"exported {out['entity_count']} entities, {out['relation_count']} relations to "
              f"{os.path.basename(out['filepath'])}")
        target = SQLiteGraphStore(sqlite_path or os.path.join(d, "graph.db"))
        res = await GraphStorageMigrator().migrate(store, target, batch_size=1000)
        print(f"migrated to SQLite: {res['entity_count']} entities, {res['relation_count']} relations, "
              f"verified={res['verified']}")
        await target.close()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
