# fleet/common: SQLite layer, outbox, passwords, TOTP, refresh tokens, sagas.
sl_unit_test(test_fleet_common LIBS sightline-fleet-common)
