# The SQLite backend: the conformance suite on a file and in memory (both
# tenant layouts), and the SIGKILL durability test
# (scripts/sqlite-durability-long.sh runs it longer).
if(KG_SQLITE_SOURCES)
  add_test(NAME conformance_sqlite_file COMMAND conformance sqlite:${CMAKE_CURRENT_BINARY_DIR}/conformance.db)
  add_test(NAME conformance_sqlite_memory COMMAND conformance sqlite::memory:)
  # The original's "separate schema" layout: a tenant's rows in tables of its own.
  add_test(NAME conformance_sqlite_tables
           COMMAND conformance "sqlite:${CMAKE_CURRENT_BINARY_DIR}/conformance_tables.db?tenancy=tables")
  add_test(NAME conformance_sqlite_memory_tables COMMAND conformance "sqlite::memory:?tenancy=tables")

  add_executable(sqlite_crash sqlite_crash.c)
  target_include_directories(sqlite_crash PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(sqlite_crash PRIVATE kgstore_static)
  # 100 kills at random moments of bulk loads; bounded to about a minute.
  add_test(NAME sqlite_crash_recovery COMMAND sqlite_crash ${CMAKE_CURRENT_BINARY_DIR}/sqlite_crash.db 100 40)
  set_tests_properties(sqlite_crash_recovery PROPERTIES TIMEOUT 120)
endif()
