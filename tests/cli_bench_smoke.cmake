# Runs `kgstore bench` on a small graph and checks the JSON lines.
execute_process(COMMAND ${KGSTORE} bench --backend memory --n 300 --runs 1 --json
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kgstore bench exited with ${rc}:\n${out}")
endif()
foreach(op add_entity_1k get_entity find_paths_d5 batch_insert_10k)
  if(NOT out MATCHES "{\"backend\":\"memory\",\"operation\":\"${op}\",\"n\":300,\"median_s\":[0-9.e+-]+")
    message(FATAL_ERROR "no ${op} row in:\n${out}")
  endif()
endforeach()
