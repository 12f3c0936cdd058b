# The Python binding (python/): pytest from Debian's python3-pytest runs the
# seed's code samples and the conformance cases through Python, on memory,
# SQLite and the shared PostgreSQL test server (fixture postgres_server).
# Needs add_subdirectory(python) in the top-level CMakeLists.txt, which
# builds kgstore._native into <build>/python/kgstore.
if(TARGET kgstore_python)
  set(KG_PY_DIR ${CMAKE_BINARY_DIR}/python)
  # PYTHONMALLOC=malloc: Python objects on the C heap, so the leak test
  # (test_leaks.py) sees them too.
  set(KG_PY_ENV "PYTHONPATH=${KG_PY_DIR}" "PYTHONDONTWRITEBYTECODE=1" "PYTHONMALLOC=malloc")
  if(KG_PG_SOURCES)
    list(APPEND KG_PY_ENV "KG_PG_DIR=${KG_PG_DIR}")
  else()
    list(APPEND KG_PY_ENV "KG_PYTHON_NO_PG=1")
  endif()
  if(KG_SANITIZE)
    # The interpreter is not built with ASan: its runtime must come first.
    # LeakSanitizer is off here: the interpreter keeps its own allocations
    # at exit, and every stack passes through it, so no suppression could
    # tell ours apart; test_leaks.py checks the binding's heap instead (in
    # the non-sanitized builds). ASan/UBSan still check every access.
    if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
      execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libclang_rt.asan-x86_64.so
                      OUTPUT_VARIABLE KG_ASAN_RT OUTPUT_STRIP_TRAILING_WHITESPACE)
    else()
      execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                      OUTPUT_VARIABLE KG_ASAN_RT OUTPUT_STRIP_TRAILING_WHITESPACE)
    endif()
    list(APPEND KG_PY_ENV "LD_PRELOAD=${KG_ASAN_RT}"
         "ASAN_OPTIONS=detect_leaks=0" "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
         # a sanitizer abort must end the run, not meet faulthandler
         "PYTEST_ADDOPTS=-p no:faulthandler")
  endif()
  find_program(KG_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  add_test(NAME python
           COMMAND ${KG_PYTHON3} -m pytest -q -rfE --tb=short ${CMAKE_SOURCE_DIR}/python/tests
           WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(python PROPERTIES ENVIRONMENT "${KG_PY_ENV}" TIMEOUT 900)
  if(KG_PG_SOURCES)
    set_tests_properties(python PROPERTIES FIXTURES_REQUIRED postgres_server)
  endif()
  # The example script, end to end.
  add_test(NAME python_example
           COMMAND ${KG_PYTHON3} ${CMAKE_SOURCE_DIR}/python/examples/quickstart.py
           WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(python_example PROPERTIES ENVIRONMENT "${KG_PY_ENV}" TIMEOUT 120)
endif()
