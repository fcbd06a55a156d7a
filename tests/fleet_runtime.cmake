# The fleet runtime (fleet/runtime): unit tests of its tokens, JSON helpers,
# circuit breaker and backoff; a fuzz target over what it parses from the
# network; integration tests against the real Sightline binary and a real
# nats-server. Included by tests/CMakeLists.txt.
sl_unit_test(test_sf_jwt LIBS sightline-fleet-rt)
sl_unit_test(test_sf_client LIBS sightline-fleet-rt)

sl_fuzz_target(fuzz_sf_token fuzz_sf_token.c LIBS sightline-fleet-rt)

find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(SL_IT_DIR ${CMAKE_CURRENT_SOURCE_DIR}/integration)
add_test(NAME integration_fleet_runtime
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_fleet_runtime.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:fleet-echo>)
set_tests_properties(integration_fleet_runtime PROPERTIES
                     LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)
add_test(NAME integration_fleet_bus
         COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_fleet_bus.py $<TARGET_FILE:sightline>
                 $<TARGET_FILE:fleet-echo>)
set_tests_properties(integration_fleet_bus PROPERTIES
                     LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)
# The registry client against the real registry service (fleet/registry).
if(TARGET fleet-registry)
    add_test(NAME integration_fleet_registry_client
             COMMAND ${Python3_EXECUTABLE} ${SL_IT_DIR}/test_fleet_registry.py
                     $<TARGET_FILE:fleet-registry> $<TARGET_FILE:fleet-echo>)
    set_tests_properties(integration_fleet_registry_client PROPERTIES
                         LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)
endif()
