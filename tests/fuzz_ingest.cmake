# Fuzz targets over the ingest path (protobuf -> spans -> WAL record -> spans)
# and the Jaeger query-string parsers.
sl_fuzz_target(fuzz_otlp_protobuf fuzz_otlp_protobuf.c LIBS sl_storage sl_otlp PkgConfig::ZSTD)
target_sources(fuzz_otlp_protobuf PRIVATE ${CMAKE_SOURCE_DIR}/collector/decode_traces.c
               ${CMAKE_SOURCE_DIR}/collector/pb_traces.c ${CMAKE_SOURCE_DIR}/collector/pb_common.c)
target_include_directories(fuzz_otlp_protobuf PRIVATE ${CMAKE_SOURCE_DIR}/collector)

sl_fuzz_target(fuzz_query_params fuzz_query_params.c LIBS sl_storage PkgConfig::JANSSON)
target_sources(fuzz_query_params PRIVATE ${CMAKE_SOURCE_DIR}/query/query_params.c)
target_include_directories(fuzz_query_params PRIVATE ${CMAKE_SOURCE_DIR}/query)

# Request-body decompression with the running limit.
sl_fuzz_target(fuzz_inflate fuzz_inflate.c LIBS sl_storage PkgConfig::ZLIB PkgConfig::ZSTD
               PkgConfig::UV)
target_sources(fuzz_inflate PRIVATE ${CMAKE_SOURCE_DIR}/collector/inflate.c)
target_include_directories(fuzz_inflate PRIVATE ${CMAKE_SOURCE_DIR}/collector
                           ${HTTP_PARSER_INCLUDE})
target_link_libraries(fuzz_inflate PRIVATE sl_otlp)

# The whole OTLP/HTTP receiver over a loopback socket (framing, routing,
# decoding, commit).
sl_fuzz_target(fuzz_http_ingest fuzz_http_ingest.c LIBS sl_collector sl_storage)
