# PromQL engine: unit tests over the in-memory querier, the parser fuzz
# target, and the differential-test driver (tests/integration/test_promql_diff.py
# runs it against a real Prometheus over the same OpenMetrics data).
add_library(sl_test_memq STATIC promql/memq.c)
target_include_directories(sl_test_memq PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/promql
                                               ${CMAKE_SOURCE_DIR}/promql)
target_link_libraries(sl_test_memq PUBLIC sl_promql sl_common)
sl_warnings(sl_test_memq)

sl_unit_test(test_promql LIBS sl_test_memq sl_promql)
target_include_directories(test_promql PRIVATE ${CMAKE_SOURCE_DIR}/promql)
# The series-major path of range queries against the step-wise one.
sl_unit_test(test_promql_rollup LIBS sl_test_memq sl_promql)

add_executable(promql_eval_tool promql/promql_eval_tool.c)
target_link_libraries(promql_eval_tool PRIVATE sl_test_memq sl_promql sl_common)
sl_warnings(promql_eval_tool)

sl_fuzz_target(fuzz_promql_parse fuzz_promql_parse.c LIBS sl_promql)
target_include_directories(fuzz_promql_parse PRIVATE ${CMAKE_SOURCE_DIR}/promql)

# The differential test against a real Prometheus (skipped, exit 77, when
# prometheus/promtool are not installed).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME integration_promql_diff
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_promql_diff.py
                 $<TARGET_FILE:promql_eval_tool> $<TARGET_FILE:sightline>)
set_tests_properties(integration_promql_diff PROPERTIES
    LABELS integration TIMEOUT 600 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)

# The Prometheus HTTP API on the real binary.
add_test(NAME integration_prom_api
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_prom_api.py
                 $<TARGET_FILE:sightline>)
set_tests_properties(integration_prom_api PROPERTIES LABELS integration TIMEOUT 300)
