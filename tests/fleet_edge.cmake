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

# The run command itself (scripts/run.sh --fleet with its test options: a
# temporary data dir, free ports, this build, a short fault schedule): alerts
# fire and resolve, the health view marks a killed service down and up again,
# Ctrl-C leaves nothing behind. About 90 s of wall time, most of it waiting for
# the error-ratio alert's 1-minute rate window to forget the fault, with a
# dozen processes and the load generator on the machine meanwhile. Labelled
# no_tsan: scripts/test.sh's ThreadSanitizer pass skips it (it would be the
# third run of the same minute and a half, with a dozen TSan processes at once
# on a 2-core machine; the processes it starts are each covered under TSan by
# integration_fleet_e2e and integration_fleet_services); the ASan+UBSan and
# normal passes run it.
if(TARGET fleet-users AND TARGET fleet-gateway AND TARGET fleet-registry AND TARGET fleet-loadgen)
    add_test(NAME integration_fleet_run
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet_run.py
                     ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
    set_tests_properties(integration_fleet_run PROPERTIES
                         LABELS "integration;no_tsan" TIMEOUT 300 RUN_SERIAL TRUE
                         SKIP_RETURN_CODE 77)
endif()
