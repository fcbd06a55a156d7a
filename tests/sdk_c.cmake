# sdk-c integration tests (its unit tests live in sdk-c/tests/): the SDK
# exporting to the real binary (traces through the Jaeger API, collector down
# and back up), to a scripted OTLP receiver (retries, headers, encodings,
# endpoint rules, the logs and metrics payloads), and the example client and
# server pair. Included by tests/CMakeLists.txt.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(SL_IT_DIR ${CMAKE_CURRENT_SOURCE_DIR}/integration)
add_test(NAME integration_sdk_traces
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_sdk_traces.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:sdk-it-driver>)
add_test(NAME integration_sdk_export
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_sdk_export.py $<TARGET_FILE:sdk-it-driver>)
add_test(NAME integration_sdk_downup
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_sdk_downup.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:sdk-it-driver>)
add_test(NAME integration_sdk_example
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_sdk_example.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:sl-example-server> $<TARGET_FILE:sl-example-client>)
set_tests_properties(integration_sdk_traces integration_sdk_export integration_sdk_downup
                     integration_sdk_example PROPERTIES
                     LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)

# The SDK's parsers of untrusted input (traceparent, tracestate, the
# key=value lists of OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS,
# export responses' partial_success, Retry-After).
sl_fuzz_target(fuzz_sdk_parsers fuzz_sdk_parsers.c LIBS sightline-otel-static)
target_include_directories(fuzz_sdk_parsers PRIVATE ${CMAKE_SOURCE_DIR}/sdk-c/src)
