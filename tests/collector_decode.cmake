# Collector decoding: OTLP/JSON -> protobuf-c messages (collector/otlp_json.c)
# and OTLP traces -> span model (collector/decode_traces.c). The targets compile
# those sources directly instead of linking sl_collector, so that they build
# whatever state the rest of collector/ is in.
set(SL_COL_DECODE_SRCS
    ${CMAKE_SOURCE_DIR}/collector/otlp_json.c
    ${CMAKE_SOURCE_DIR}/collector/decode_traces.c)
set(SL_COL_DECODE_LIBS sl_otlp PkgConfig::JANSSON m)

foreach(t test_otlp_json test_decode_traces)
    sl_unit_test(${t} LIBS ${SL_COL_DECODE_LIBS})
    target_sources(${t} PRIVATE ${SL_COL_DECODE_SRCS})
    target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/collector)
    # The public OTLP example payloads, copied into tests/data/otlp/.
    target_compile_definitions(${t} PRIVATE
        SL_TEST_OTLP_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data/otlp")
endforeach()

sl_fuzz_target(fuzz_otlp_json fuzz_otlp_json.c LIBS ${SL_COL_DECODE_LIBS})
target_sources(fuzz_otlp_json PRIVATE ${SL_COL_DECODE_SRCS})
target_include_directories(fuzz_otlp_json PRIVATE ${CMAKE_SOURCE_DIR}/collector)
