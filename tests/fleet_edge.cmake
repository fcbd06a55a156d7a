# The fleet's edge: registry core (table, store, checks, API) and gateway logic.
sl_unit_test(test_fleet_registry LIBS fleet_registry_core)
sl_unit_test(test_fleet_gateway LIBS fleet_gateway_core)
target_compile_definitions(test_fleet_gateway PRIVATE
    GW_ROUTES_FILE="${CMAKE_SOURCE_DIR}/fleet/gateway/routes.yaml")

sl_fuzz_target(fuzz_gateway_config fuzz_gateway_config.c LIBS fleet_gateway_core)
sl_fuzz_target(fuzz_registry_api fuzz_registry_api.c LIBS fleet_registry_core)
