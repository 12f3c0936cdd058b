# Runs `kgstore bench` on small graphs and checks the shape of what it
# prints, never a timing: every figure is a JSON object with backend,
# operation, n, median, unit, raw_median and ratio; kgstore and the raw
# engines agree on the answers (no WARNING about path or neighbor counts);
# --report also writes the markdown tables and the SVG plot; bad options are
# refused with a message.
#   cmake -DKGSTORE=path/to/kgstore [-DPG_URI=postgresql://...] [-DWORK=dir] -P cli_bench_smoke.cmake
if(NOT WORK)
  set(WORK ${CMAKE_CURRENT_BINARY_DIR}/cli_bench_smoke.d)
endif()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(num "-?[0-9.]+(e[+-]?[0-9]+)?")

function(check_rows out backend n ops)
  foreach(op ${ops})
    if(NOT out MATCHES "{\"backend\":\"${backend}\",\"operation\":\"${op}\",\"n\":${n},\"median\":${num},\"unit\":\"[a-z/]+\",\"raw_median\":${num},\"ratio\":${num}")
      message(FATAL_ERROR "no ${backend} ${op} row (n = ${n}) with a raw figure and a ratio in:\n${out}")
    endif()
  endforeach()
endfunction()

set(core_ops add_entity_1k batch_insert_10k load_relations bulk_load get_entity neighbors find_paths_d5
             find_paths_reach_d5)

# 1. The default rows on the memory backend, as before (median_s kept).
execute_process(COMMAND ${KGSTORE} bench --backend memory --n 300 --runs 1 --json
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kgstore bench exited with ${rc}:\n${out}\n${err}")
endif()
check_rows("${out}" memory 300 "${core_ops}")
foreach(op add_entity_1k get_entity find_paths_d5 batch_insert_10k)
  if(NOT out MATCHES "\"operation\":\"${op}\",\"n\":300,[^\n]*\"median_s\":${num}")
    message(FATAL_ERROR "no median_s in the ${op} row:\n${out}")
  endif()
endforeach()
# Memory growth may round to 0 on a graph this small: the ratio may be null.
if(NOT out MATCHES "\"operation\":\"store_memory\",\"n\":300,\"median\":${num},\"unit\":\"bytes\",\"raw_median\":${num},\"ratio\":(${num}|null)")
  message(FATAL_ERROR "no store_memory row:\n${out}")
endif()
if(NOT out MATCHES "\"operation\":\"peak_rss\",\"n\":300,\"median\":[0-9]+[^\n]*\"unit\":\"bytes\",\"raw_median\":null,\"ratio\":null")
  message(FATAL_ERROR "no peak_rss row:\n${out}")
endif()

# 2. The whole report on the embedded backends (and PostgreSQL when given).
set(backends memory sqlite)
set(env "")
if(PG_URI)
  list(APPEND backends postgres)
  set(env ${CMAKE_COMMAND} -E env KG_BENCH_PG_URI=${PG_URI})
else()
  set(env ${CMAKE_COMMAND} -E env --unset=KG_BENCH_PG_URI)
endif()
execute_process(COMMAND ${env} ${KGSTORE} bench --report --scale 200,400 --vector-n 300 --runs 1 --json
                        --markdown=${WORK}/perf.md --svg ${WORK}/perf.svg
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kgstore bench --report exited with ${rc}:\n${out}\n${err}")
endif()
if(out MATCHES "WARNING")
  message(FATAL_ERROR "kgstore and a raw engine disagree:\n${out}")
endif()
foreach(b ${backends})
  check_rows("${out}" ${b} 200 "${core_ops};read_threads_1;read_threads_2;read_threads_4;mixed_reads;mixed_writes")
  check_rows("${out}" ${b} 400 "${core_ops}")
  check_rows("${out}" ${b} 300 "vector_search_d64")
  foreach(m bm25 jaccard cosine levenshtein)
    if(NOT out MATCHES "{\"backend\":\"${b}\",\"operation\":\"text_search_${m}\",\"n\":200,\"median\":${num},\"unit\":\"s\",\"raw_median\":null,\"ratio\":null")
      message(FATAL_ERROR "no ${b} text_search_${m} row in:\n${out}")
    endif()
  endforeach()
endforeach()
if(PG_URI)
  check_rows("${out}" postgres 200 "get_entity_batch")
else()
  if(NOT out MATCHES "{\"backend\":\"postgres\",\"n\":200,\"skipped\":true,\"reason\":\"no server given")
    message(FATAL_ERROR "postgres without a server is not reported as skipped:\n${out}")
  endif()
endif()
file(READ ${WORK}/perf.md md)
foreach(want "### Against AIECS" "### Every figure" "### Targets" "| memory | get_entity | 200 |"
             "| sqlite | bulk_load | 400 |" "| memory | find_paths_reach_d5 | 400 |"
             "memory find_paths d5, joined pairs <= 2x the bare CSR search")
  string(FIND "${md}" "${want}" at)
  if(at LESS 0)
    message(FATAL_ERROR "the markdown lacks '${want}':\n${md}")
  endif()
endforeach()
file(READ ${WORK}/perf.svg svg)
if(NOT svg MATCHES "^<svg xmlns=\"http://www.w3.org/2000/svg\"" OR NOT svg MATCHES "</svg>\n$"
   OR NOT svg MATCHES "<polyline ")
  message(FATAL_ERROR "perf.svg is not a plot with lines:\n${svg}")
endif()

# 3. Bad options: a message, exit 1, nothing run.
foreach(bad "--backend;nope" "--scale;12x" "--runs;0" "--pin=-5" "extra")
  execute_process(COMMAND ${KGSTORE} bench ${bad} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "kgstore bench: |usage:" OR out MATCHES "operation")
    message(FATAL_ERROR "kgstore bench ${bad}: exit ${rc}, stdout:\n${out}\nstderr:\n${err}")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})
