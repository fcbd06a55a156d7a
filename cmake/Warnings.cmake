# The project's warning set (see STYLE.md). sl_warnings(target) applies it;
# SIGHTLINE_WERROR turns warnings into errors (on by default, as in CI).
option(SIGHTLINE_WERROR "Treat warnings as errors" ON)

set(SL_WARNING_FLAGS
    -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wpointer-arith -Wcast-qual -Wwrite-strings -Wformat=2 -Wvla
    -Wimplicit-fallthrough -Wundef)

function(sl_warnings target)
    target_compile_options(${target} PRIVATE ${SL_WARNING_FLAGS})
    if(SIGHTLINE_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
endfunction()
