# The fleet's edge: registry core (table, store, checks, API) and gateway logic.
sl_unit_test(test_fleet_registry LIBS fleet_registry_core)
