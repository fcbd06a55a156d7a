# Browser tests of the web UI: headless Chromium (Debian's chromium) driven
# by playwright-core (tests/ui/node_modules, installed by scripts/setup.sh)
# against the real binary serving ui-static/. Bounded: the script stops
# itself after 240 s, ctest after 300 s.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
find_program(SL_NODE node REQUIRED)
add_test(NAME ui_browser
         COMMAND ${SL_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/ui/e2e.mjs $<TARGET_FILE:sightline>
                 ${CMAKE_SOURCE_DIR}/ui-static)
set_tests_properties(ui_browser PROPERTIES LABELS browser TIMEOUT 300 RUN_SERIAL TRUE)

add_test(NAME integration_ui_files
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ui_files.py
                 $<TARGET_FILE:sightline>)
set_tests_properties(integration_ui_files PROPERTIES LABELS integration TIMEOUT 120 RUN_SERIAL TRUE)
