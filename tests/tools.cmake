# Export, import, migrate and verify (src/tools, include/kgstore/io.h).
# The unit_io_* programs are registered by the unit-test loop; here they get
# the fixture directory and, for the round trip, the PostgreSQL server.
foreach(name unit_io_formats unit_io_bad unit_io_migrate unit_io_roundtrip)
  if(TARGET ${name})
    target_compile_definitions(${name} PRIVATE KG_IO_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data/io")
  endif()
endforeach()
if(TARGET unit_io_roundtrip AND KG_PG_SOURCES)
  set_tests_properties(unit_io_roundtrip PROPERTIES
    FIXTURES_REQUIRED postgres_server
    ENVIRONMENT "KG_TEST_PG_URI=${KG_PG_URI}&schema=kg_io_roundtrip")
endif()
# The measuring program reads the benchmark workload's generator; under
# ctest its PostgreSQL leg (bulk insert, migration, verify) runs against the
# test server, in a schema of its own.
if(TARGET unit_io_bench)
  target_sources(unit_io_bench PRIVATE ${CMAKE_SOURCE_DIR}/bench/workload.c)
  target_include_directories(unit_io_bench PRIVATE ${CMAKE_SOURCE_DIR}/bench)
  if(KG_PG_SOURCES)
    set_tests_properties(unit_io_bench PROPERTIES
      FIXTURES_REQUIRED postgres_server
      ENVIRONMENT "KG_TEST_PG_URI=${KG_PG_URI}&schema=kg_io_bench")
  endif()
endif()
