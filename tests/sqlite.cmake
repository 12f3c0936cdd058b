# The SQLite backend: the conformance suite on a file and in memory.
if(KG_SQLITE_SOURCES)
  add_test(NAME conformance_sqlite_file COMMAND conformance sqlite:${CMAKE_CURRENT_BINARY_DIR}/conformance.db)
  add_test(NAME conformance_sqlite_memory COMMAND conformance sqlite::memory:)
endif()
