# The PostgreSQL backend, against throwaway PostgreSQL 15 servers that the
# tests start themselves (scripts/pg-test-server.sh: initdb in the build
# tree, unix socket only), never against a server that happens to run.
if(KG_PG_SOURCES)
  set(KG_PG_SCRIPT ${CMAKE_SOURCE_DIR}/scripts/pg-test-server.sh)
  set(KG_PG_DIR ${CMAKE_CURRENT_BINARY_DIR}/pgtest)
  set(KG_PG_URI "postgresql:///kgtest?host=${KG_PG_DIR}&user=postgres")

  # The shared server: started before, stopped after (also when tests fail).
  add_test(NAME postgres_server_start COMMAND ${KG_PG_SCRIPT} start ${KG_PG_DIR})
  set_tests_properties(postgres_server_start PROPERTIES FIXTURES_SETUP postgres_server TIMEOUT 120)
  add_test(NAME postgres_server_stop COMMAND ${KG_PG_SCRIPT} stop ${KG_PG_DIR})
  set_tests_properties(postgres_server_stop PROPERTIES FIXTURES_CLEANUP postgres_server TIMEOUT 120)

  # The conformance suite in each tenancy mode, each in its own schema so
  # they may run side by side.
  add_test(NAME conformance_postgres COMMAND conformance ${KG_PG_URI})
  add_test(NAME conformance_postgres_rls COMMAND conformance "${KG_PG_URI}&tenancy=rls&schema=kg_conf_rls")
  add_test(NAME conformance_postgres_schema COMMAND conformance "${KG_PG_URI}&tenancy=schema&schema=kg_conf_sch")
  set(KG_PG_TESTS conformance_postgres conformance_postgres_rls conformance_postgres_schema)

  # Backend tests: pool, RLS, pgvector, concurrent schema set-up, the
  # original's database.
  foreach(name pg_pool pg_rls pg_vector pg_schema_race pg_original)
    add_executable(${name} ${name}.c)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} PRIVATE kgstore_static)
    add_test(NAME ${name} COMMAND ${name} ${KG_PG_URI})
    list(APPEND KG_PG_TESTS ${name})
  endforeach()
  set_tests_properties(${KG_PG_TESTS} PROPERTIES FIXTURES_REQUIRED postgres_server TIMEOUT 600)

  # Faults and replicas need servers of their own to stop and start.
  foreach(name pg_fault pg_replica)
    add_executable(${name} ${name}.c)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} PRIVATE kgstore_static)
    set(dir ${CMAKE_CURRENT_BINARY_DIR}/${name}_srv)
    add_test(NAME ${name} COMMAND ${name} ${KG_PG_SCRIPT} ${dir})
    add_test(NAME ${name}_cleanup COMMAND ${KG_PG_SCRIPT} stop ${dir})
    add_test(NAME ${name}_cleanup_standby COMMAND ${KG_PG_SCRIPT} stop ${dir}_standby)
    set_tests_properties(${name}_cleanup ${name}_cleanup_standby PROPERTIES FIXTURES_CLEANUP ${name}_srv)
    set_tests_properties(${name} PROPERTIES FIXTURES_SETUP ${name}_srv TIMEOUT 600)
  endforeach()

  # Fault injection (unit_faults) on the PostgreSQL backend as well.
  if(TARGET unit_faults)
    set_tests_properties(unit_faults PROPERTIES FIXTURES_REQUIRED postgres_server
      ENVIRONMENT "KG_TEST_PG_URI=${KG_PG_URI}&schema=kg_faults&min_pool_size=1")
  endif()
endif()
