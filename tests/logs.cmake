# Logs: the block codec and token filter (storage/logs_codec.c), the /api/logs
# parameter parser (query/logs_params.c), the OTLP logs decoder
# (collector/decode_logs.c), their fuzz targets and the integration test.
# Included by tests/CMakeLists.txt.

set(SL_LOGS_CODEC_SRC ${CMAKE_SOURCE_DIR}/storage/logs_codec.c)

add_executable(test_logs_codec unit/test_logs_codec.c ${SL_LOGS_CODEC_SRC})
target_include_directories(test_logs_codec PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                                                   ${CMAKE_SOURCE_DIR}/storage)
target_link_libraries(test_logs_codec PRIVATE sl_common PkgConfig::ZSTD)
sl_warnings(test_logs_codec)
add_test(NAME test_logs_codec COMMAND test_logs_codec)
set_tests_properties(test_logs_codec PROPERTIES LABELS unit TIMEOUT 120)

set(SL_LOGS_PARAMS_SRCS ${CMAKE_SOURCE_DIR}/query/logs_params.c
                        ${CMAKE_SOURCE_DIR}/query/query_params.c)
add_executable(test_logs_params unit/test_logs_params.c ${SL_LOGS_PARAMS_SRCS})
target_include_directories(test_logs_params PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
    ${CMAKE_SOURCE_DIR}/query ${CMAKE_SOURCE_DIR}/storage)
target_link_libraries(test_logs_params PRIVATE sl_common PkgConfig::JANSSON)
sl_warnings(test_logs_params)
add_test(NAME test_logs_params COMMAND test_logs_params)
set_tests_properties(test_logs_params PROPERTIES LABELS unit TIMEOUT 120)

sl_unit_test(test_decode_logs LIBS sl_otlp PkgConfig::JANSSON m)
target_sources(test_decode_logs PRIVATE ${CMAKE_SOURCE_DIR}/collector/otlp_json.c
    ${CMAKE_SOURCE_DIR}/collector/decode_traces.c ${CMAKE_SOURCE_DIR}/collector/decode_logs.c)
target_include_directories(test_decode_logs PRIVATE ${CMAKE_SOURCE_DIR}/collector)
target_compile_definitions(test_decode_logs PRIVATE
    SL_TEST_OTLP_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data/otlp")

sl_fuzz_target(fuzz_logs_block fuzz_logs_block.c LIBS PkgConfig::ZSTD)
target_sources(fuzz_logs_block PRIVATE ${SL_LOGS_CODEC_SRC})
target_include_directories(fuzz_logs_block PRIVATE ${CMAKE_SOURCE_DIR}/storage)

sl_fuzz_target(fuzz_logs_params fuzz_logs_params.c LIBS PkgConfig::JANSSON)
target_sources(fuzz_logs_params PRIVATE ${SL_LOGS_PARAMS_SRCS})
target_include_directories(fuzz_logs_params PRIVATE ${CMAKE_SOURCE_DIR}/query
                                                    ${CMAKE_SOURCE_DIR}/storage)

# The OTLP logs protobuf path of the collector: depth check, unpack, records,
# limits, the WAL record read back.
sl_fuzz_target(fuzz_otlp_logs fuzz_otlp_logs.c LIBS sl_collector sl_storage sl_otlp PkgConfig::UV)
target_include_directories(fuzz_otlp_logs PRIVATE ${CMAKE_SOURCE_DIR}/collector
                           ${HTTP_PARSER_INCLUDE})

find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME integration_logs_api
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_logs_api.py
                 $<TARGET_FILE:sightline> ${CMAKE_CURRENT_SOURCE_DIR}/data/otlp)
set_tests_properties(integration_logs_api PROPERTIES LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)

# The logs storage engine through storage.h (WAL, cut, indexes, retention).
sl_unit_test(test_logs_store LIBS sl_storage)
