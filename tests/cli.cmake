# The kgstore command and the benchmark generator.
if(TARGET kgstore_cli)
  target_sources(unit_workload PRIVATE ${CMAKE_SOURCE_DIR}/bench/workload.c)
  target_include_directories(unit_workload PRIVATE ${CMAKE_SOURCE_DIR}/bench)
  # A small bench run prints the four rows as JSON lines.
  add_test(NAME cli_bench_smoke
           COMMAND ${CMAKE_COMMAND} -DKGSTORE=$<TARGET_FILE:kgstore_cli>
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/cli_bench_smoke.cmake)
endif()
