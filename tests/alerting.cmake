# Alerting: rule files, templates, the evaluator's state machine over the
# in-memory querier, and the notifier; the rule-file fuzz target.
sl_unit_test(test_alerting LIBS sl_alerting sl_test_memq)
target_include_directories(test_alerting PRIVATE ${CMAKE_SOURCE_DIR}/alerting)

sl_fuzz_target(fuzz_rules_file fuzz_rules_file.c LIBS sl_alerting)
