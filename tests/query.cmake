# Query module unit tests. They are built from the query sources they test
# (not from sl_query) so that they do not depend on storage or the server
# compiling: query_params.c and jaeger_json.c only need storage.h's types.
set(SL_QUERY_TEST_INCLUDES
    ${CMAKE_CURRENT_SOURCE_DIR}
    ${CMAKE_SOURCE_DIR}/query
    ${CMAKE_SOURCE_DIR}/storage)

add_executable(test_query_params unit/test_query_params.c
    ${CMAKE_SOURCE_DIR}/query/query_params.c)
target_include_directories(test_query_params PRIVATE ${SL_QUERY_TEST_INCLUDES})
target_link_libraries(test_query_params PRIVATE sl_common PkgConfig::JANSSON)
sl_warnings(test_query_params)
add_test(NAME test_query_params COMMAND test_query_params)
set_tests_properties(test_query_params PROPERTIES LABELS unit TIMEOUT 120)

add_executable(test_jaeger_json unit/test_jaeger_json.c
    ${CMAKE_SOURCE_DIR}/query/jaeger_json.c)
target_include_directories(test_jaeger_json PRIVATE ${SL_QUERY_TEST_INCLUDES})
target_link_libraries(test_jaeger_json PRIVATE sl_common PkgConfig::JANSSON)
sl_warnings(test_jaeger_json)
add_test(NAME test_jaeger_json COMMAND test_jaeger_json)
set_tests_properties(test_jaeger_json PROPERTIES LABELS unit TIMEOUT 120)
