# Integration tests: Python scripts that start the real binary on ephemeral
# loopback ports and talk to it over HTTP.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(SL_IT_DIR ${CMAKE_CURRENT_SOURCE_DIR}/integration)

add_test(NAME integration_traces_api
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_traces_api.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:otlp-gen> ${CMAKE_CURRENT_SOURCE_DIR}/data/otlp)
add_test(NAME integration_durability
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_durability.py $<TARGET_FILE:sightline>)
add_test(NAME integration_config
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_config.py $<TARGET_FILE:sightline>)
add_test(NAME integration_grpc
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_grpc.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:otlp-gen> ${CMAKE_CURRENT_SOURCE_DIR}/grpc)
add_test(NAME integration_grpc_zstd
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_grpc_zstd.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:otlp-gen>)
set_tests_properties(integration_grpc_zstd PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME integration_map_full
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_map_full.py $<TARGET_FILE:sightline>)
add_test(NAME integration_disk_full
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_disk_full.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:otlp-gen>)
set_tests_properties(integration_disk_full PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME integration_auth
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_auth.py $<TARGET_FILE:sightline>
                 ${CMAKE_CURRENT_SOURCE_DIR}/grpc)
add_test(NAME integration_limits
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_limits.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:otlp-gen> ${CMAKE_CURRENT_SOURCE_DIR}/grpc)
add_test(NAME integration_series_limit
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_series_limit.py $<TARGET_FILE:sightline>)
add_test(NAME integration_backpressure
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_backpressure.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:otlp-gen>)
add_test(NAME integration_tls
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_tls.py $<TARGET_FILE:sightline>
                 ${CMAKE_CURRENT_SOURCE_DIR}/grpc)
add_test(NAME integration_slow_clients
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_slow_clients.py $<TARGET_FILE:sightline>)
set_tests_properties(integration_traces_api integration_durability integration_config
                     integration_grpc integration_grpc_zstd integration_map_full
                     integration_disk_full
                     integration_slow_clients
                     integration_auth integration_limits integration_series_limit
                     integration_backpressure
                     integration_tls PROPERTIES
    LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)

add_test(NAME integration_metrics_ingest
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_metrics_ingest.py $<TARGET_FILE:sightline>
                 ${CMAKE_CURRENT_SOURCE_DIR}/data/otlp)
set_tests_properties(integration_metrics_ingest PROPERTIES
    LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)
