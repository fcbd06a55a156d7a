# The metrics engine: storage (codecs, appender, windows, read path), the OTLP
# metrics translation, and fuzz targets for the chunk decoder and for OTLP
# metrics conversion. Included by tests/CMakeLists.txt.
sl_unit_test(test_metrics_storage LIBS sl_storage PkgConfig::LMDB)
target_include_directories(test_metrics_storage PRIVATE ${CMAKE_SOURCE_DIR}/storage)
# Its block cache test reads from several threads: scripts/test.sh runs it
# under ThreadSanitizer too (label threads).
set_tests_properties(test_metrics_storage PROPERTIES LABELS "unit;threads")

sl_unit_test(test_decode_metrics LIBS sl_collector sl_storage sl_otlp PkgConfig::JANSSON m)
target_include_directories(test_decode_metrics PRIVATE ${CMAKE_SOURCE_DIR}/collector)
target_compile_definitions(test_decode_metrics PRIVATE
    SL_TEST_OTLP_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data/otlp")

# The written OTLP metrics and traces decoders against protobuf-c.
sl_unit_test(test_pb_decoders LIBS sl_collector sl_storage sl_otlp)
target_include_directories(test_pb_decoders PRIVATE ${CMAKE_SOURCE_DIR}/collector)

sl_fuzz_target(fuzz_metrics_chunk fuzz_metrics_chunk.c LIBS sl_storage PkgConfig::LMDB)
target_include_directories(fuzz_metrics_chunk PRIVATE ${CMAKE_SOURCE_DIR}/storage)

sl_fuzz_target(fuzz_otlp_metrics fuzz_otlp_metrics.c LIBS sl_collector sl_storage sl_otlp)
target_include_directories(fuzz_otlp_metrics PRIVATE ${CMAKE_SOURCE_DIR}/collector)
