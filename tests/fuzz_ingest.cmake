# Fuzz targets over the ingest path (protobuf -> spans -> WAL record -> spans)
# and the Jaeger query-string parsers.
sl_fuzz_target(fuzz_otlp_protobuf fuzz_otlp_protobuf.c LIBS sl_storage sl_otlp PkgConfig::ZSTD)
target_sources(fuzz_otlp_protobuf PRIVATE ${CMAKE_SOURCE_DIR}/collector/decode_traces.c)
target_include_directories(fuzz_otlp_protobuf PRIVATE ${CMAKE_SOURCE_DIR}/collector)

sl_fuzz_target(fuzz_query_params fuzz_query_params.c LIBS sl_storage PkgConfig::JANSSON)
target_sources(fuzz_query_params PRIVATE ${CMAKE_SOURCE_DIR}/query/query_params.c)
target_include_directories(fuzz_query_params PRIVATE ${CMAKE_SOURCE_DIR}/query)
