# Alerting: rule files, templates, the evaluator's state machine over the
# in-memory querier, and the notifier; the rule-file fuzz target.
sl_unit_test(test_alerting LIBS sl_alerting sl_test_memq)
target_include_directories(test_alerting PRIVATE ${CMAKE_SOURCE_DIR}/alerting)

sl_fuzz_target(fuzz_rules_file fuzz_rules_file.c LIBS sl_alerting)

# The real binary with a real webhook receiver started by the test.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME integration_alerting
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_alerting.py
                 $<TARGET_FILE:sightline>)
set_tests_properties(integration_alerting PROPERTIES LABELS integration TIMEOUT 300)

# The live service graph and /api/fleet/health on the real binary.
add_test(NAME integration_fleet_health
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet_health.py
                 $<TARGET_FILE:sightline>)
set_tests_properties(integration_fleet_health PROPERTIES LABELS integration TIMEOUT 300)

# An alert over the span-derived error ratio, through a real webhook receiver.
add_test(NAME integration_alerting_red
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_alerting_red.py
                 $<TARGET_FILE:sightline>)
set_tests_properties(integration_alerting_red PROPERTIES LABELS integration TIMEOUT 300)

# The same rule file in Prometheus 2.42 and in Sightline over the same data;
# skipped when prometheus is not installed.
add_test(NAME integration_alerting_prom_diff
         COMMAND ${Python3_EXECUTABLE}
                 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_alerting_prom_diff.py
                 $<TARGET_FILE:sightline>)
set_tests_properties(integration_alerting_prom_diff PROPERTIES LABELS integration TIMEOUT 300
                     SKIP_RETURN_CODE 77)
