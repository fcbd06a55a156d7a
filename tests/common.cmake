sl_unit_test(test_common)
