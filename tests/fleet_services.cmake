# The fleet's business services (fleet/auth, users, tenants, notifications,
# analytics) as real processes against a real nats-server, and the fleet's
# end-to-end test. Included by tests/CMakeLists.txt.
if(TARGET fleet-users)
    find_package(Python3 REQUIRED COMPONENTS Interpreter)
    add_test(NAME integration_fleet_services
             COMMAND ${Python3_EXECUTABLE}
                     ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet_services.py
                     $<TARGET_FILE:fleet-users> $<TARGET_FILE:fleet-auth>
                     $<TARGET_FILE:fleet-tenants> $<TARGET_FILE:fleet-notifications>
                     $<TARGET_FILE:fleet-analytics>)
    set_tests_properties(integration_fleet_services PROPERTIES
                         LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)
endif()

# End to end: nats-server, Sightline, the registry, every service and the
# gateway (once the edge's binaries are in the tree).
if(TARGET fleet-users AND TARGET fleet-gateway AND TARGET fleet-registry AND TARGET fleet-loadgen)
    add_test(NAME integration_fleet_e2e
             COMMAND ${Python3_EXECUTABLE}
                     ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet_e2e.py
                     $<TARGET_FILE:sightline> $<TARGET_FILE:fleet-registry>
                     $<TARGET_FILE:fleet-gateway> $<TARGET_FILE:fleet-users>
                     $<TARGET_FILE:fleet-auth> $<TARGET_FILE:fleet-tenants>
                     $<TARGET_FILE:fleet-notifications> $<TARGET_FILE:fleet-analytics>
                     ${CMAKE_SOURCE_DIR}/fleet/gateway/routes.yaml $<TARGET_FILE:fleet-loadgen>)
    set_tests_properties(integration_fleet_e2e PROPERTIES
                         LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)
endif()
