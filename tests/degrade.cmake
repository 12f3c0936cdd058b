# Graceful degradation. unit_degrade (picked up as a unit test) runs the
# wrapper over a fault-injecting primary; pg_outage kills a real PostgreSQL
# server under a steady stream of writes, with a server of its own.
if(KG_PG_SOURCES)
  add_executable(pg_outage pg_outage.c)
  target_include_directories(pg_outage PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(pg_outage PRIVATE kgstore_static)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/pg_outage_srv)
  add_test(NAME pg_outage COMMAND pg_outage ${KG_PG_SCRIPT} ${dir} 500)
  add_test(NAME pg_outage_cleanup COMMAND ${KG_PG_SCRIPT} stop ${dir})
  set_tests_properties(pg_outage_cleanup PROPERTIES FIXTURES_CLEANUP pg_outage_srv)
  set_tests_properties(pg_outage PROPERTIES FIXTURES_SETUP pg_outage_srv TIMEOUT 600)
endif()

# A journal left by an application, replayed by hand with the kgstore command.
if(TARGET kgstore_cli AND KG_SQLITE_SOURCES)
  add_executable(degrade_journal_writer degrade_journal_writer.c)
  target_link_libraries(degrade_journal_writer PRIVATE kgstore_static)
  add_test(NAME cli_degrade
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli_degrade.sh $<TARGET_FILE:kgstore_cli>
                   $<TARGET_FILE:degrade_journal_writer> ${CMAKE_CURRENT_BINARY_DIR}/cli_degrade)
endif()
