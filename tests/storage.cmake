sl_unit_test(test_storage LIBS sl_storage PkgConfig::LMDB)
