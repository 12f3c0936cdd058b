# The kgstore command and the benchmark generator.
if(TARGET kgstore_cli)
  target_sources(unit_workload PRIVATE ${CMAKE_SOURCE_DIR}/bench/workload.c)
  target_include_directories(unit_workload PRIVATE ${CMAKE_SOURCE_DIR}/bench)
  # A small bench run prints the four rows as JSON lines.
  add_test(NAME cli_bench_smoke
           COMMAND ${CMAKE_COMMAND} -DKGSTORE=$<TARGET_FILE:kgstore_cli>
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/cli_bench_smoke.cmake)
  # The same on PostgreSQL, in a schema of its own (the bench clears its store).
  if(KG_PG_SOURCES)
    add_test(NAME cli_bench_smoke_postgres
             COMMAND ${CMAKE_COMMAND} -DKGSTORE=$<TARGET_FILE:kgstore_cli> "-DPG_URI=${KG_PG_URI}&schema=kg_bench_smoke"
                     -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli_bench_smoke_pg.d -P ${CMAKE_CURRENT_SOURCE_DIR}/cli_bench_smoke.cmake)
    set_tests_properties(cli_bench_smoke_postgres PROPERTIES FIXTURES_REQUIRED postgres_server TIMEOUT 300)
  endif()
endif()

# Every read subcommand on the WordNet demo store (needs wordnet-base and sqlite3).
if(TARGET kgstore_cli AND KG_SQLITE_SOURCES)
  add_test(NAME cli_commands
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli_commands.sh $<TARGET_FILE:kgstore_cli>
                   ${CMAKE_CURRENT_BINARY_DIR}/cli_commands)
  set_tests_properties(cli_commands PROPERTIES TIMEOUT 900)
endif()

# --json output is JSON whatever the strings hold (needs python3 and SQLite).
if(TARGET kgstore_cli AND KG_SQLITE_SOURCES)
  add_test(NAME cli_json
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli_json.sh $<TARGET_FILE:kgstore_cli>
                   ${CMAKE_CURRENT_BINARY_DIR}/cli_json)
endif()

# cmake --install, then a program outside the tree builds with pkg-config
# (not in the sanitizer build: a plain cc program cannot load an ASan library).
if(NOT KG_SANITIZE)
  add_test(NAME install_pkgconfig
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/install_test.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/install_test)
endif()
