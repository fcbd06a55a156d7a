# The span block codec (storage/block_codec.c): its unit test and its decode
# fuzz target. Both compile the codec source directly instead of linking
# sl_storage, so they build and run while the rest of storage is in flux.
# Included by tests/CMakeLists.txt.

set(SL_BLOCK_CODEC_SRC ${CMAKE_SOURCE_DIR}/storage/block_codec.c)

# The unit test #includes block_codec.c to reach its static helpers (the
# checksum, the column buffers), so the codec is not listed as a source.
add_executable(test_block_codec unit/test_block_codec.c)
target_include_directories(test_block_codec PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                                                    ${CMAKE_SOURCE_DIR}/storage)
target_link_libraries(test_block_codec PRIVATE sl_common PkgConfig::ZSTD)
sl_warnings(test_block_codec)
# A block written by the version-1 encoder (kept in the fuzz corpus), which
# the decoder must go on reading.
target_compile_definitions(test_block_codec PRIVATE
    SL_BLOCK_V1_SEED="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/fuzz_block_decode/v1-block-40")
add_test(NAME test_block_codec COMMAND test_block_codec)
set_tests_properties(test_block_codec PROPERTIES LABELS unit TIMEOUT 300)

# Mirrors sl_fuzz_target() in tests/CMakeLists.txt. The codec is built with
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION in both modes so that mutated
# inputs get past the block checksum, and so that a crash found by libFuzzer
# replays identically under ctest.
if(SIGHTLINE_FUZZ)
    add_executable(fuzz_block_decode fuzz/fuzz_block_decode.c ${SL_BLOCK_CODEC_SRC})
    target_compile_options(fuzz_block_decode PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_block_decode PRIVATE -fsanitize=fuzzer)
else()
    add_executable(fuzz_block_decode fuzz/fuzz_block_decode.c fuzz/replay_main.c
                                     ${SL_BLOCK_CODEC_SRC})
endif()
target_compile_definitions(fuzz_block_decode PRIVATE FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
target_include_directories(fuzz_block_decode PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                                                     ${CMAKE_SOURCE_DIR}/storage)
target_link_libraries(fuzz_block_decode PRIVATE sl_common PkgConfig::ZSTD)
sl_warnings(fuzz_block_decode)
if(NOT SIGHTLINE_FUZZ)
    add_test(NAME fuzz_block_decode
             COMMAND fuzz_block_decode ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/fuzz_block_decode)
    set_tests_properties(fuzz_block_decode PROPERTIES LABELS fuzz TIMEOUT 300)
endif()
