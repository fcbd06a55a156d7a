# The fleet's edge: registry core (table, store, checks, API) and gateway logic.
sl_unit_test(test_fleet_registry LIBS fleet_registry_core)
sl_unit_test(test_fleet_gateway LIBS fleet_gateway_core)
target_compile_definitions(test_fleet_gateway PRIVATE
    GW_ROUTES_FILE="${CMAKE_SOURCE_DIR}/fleet/gateway/routes.yaml")

sl_fuzz_target(fuzz_gateway_config fuzz_gateway_config.c LIBS fleet_gateway_core)
sl_fuzz_target(fuzz_registry_api fuzz_registry_api.c LIBS fleet_registry_core)

# The real binaries on loopback: the registry API, the gateway (with Sightline
# for the trace check), the load generator with its faults.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME integration_fleet_registry_api
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet_registry_api.py
                 $<TARGET_FILE:fleet-registry> $<TARGET_FILE:fleet-echo>)
add_test(NAME integration_fleet_gateway
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet_gateway.py
                 $<TARGET_FILE:sightline> $<TARGET_FILE:fleet-registry>
                 $<TARGET_FILE:fleet-gateway> $<TARGET_FILE:fleet-echo>)
add_test(NAME integration_fleet_loadgen
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet_loadgen.py
                 $<TARGET_FILE:fleet-registry> $<TARGET_FILE:fleet-gateway>
                 $<TARGET_FILE:fleet-echo> $<TARGET_FILE:fleet-loadgen>
                 ${CMAKE_SOURCE_DIR}/fleet/gateway/routes.yaml)
set_tests_properties(integration_fleet_registry_api integration_fleet_gateway
                     integration_fleet_loadgen PROPERTIES
                     LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)
