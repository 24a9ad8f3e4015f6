# Runs one compile-fail check: compiles SRC twice.
#   without UNIBUF_COMPILE_FAIL: the twin must compile;
#   with    -DUNIBUF_COMPILE_FAIL: must fail, and the output must match the regex given in SRC as
#   a line "// expect-error: <regex>".
# Invoked as: cmake -DCXX=... -DSRC=... -DINCLUDE=... -DMODE=twin|fail [-DFLAGS=...] -P UnibufCompileFail.cmake
file(STRINGS "${SRC}" expect REGEX "^// expect-error: ")
if(NOT expect)
  message(FATAL_ERROR "${SRC}: no '// expect-error: <regex>' line")
endif()
string(REGEX REPLACE "^// expect-error: " "" expect "${expect}")
separate_arguments(extra UNIX_COMMAND "${FLAGS}")
set(cmd "${CXX}" -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Werror ${extra} -I "${INCLUDE}" "${SRC}")
if(MODE STREQUAL "fail")
  list(APPEND cmd -DUNIBUF_COMPILE_FAIL)
endif()
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(MODE STREQUAL "twin")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the twin of ${SRC} must compile but failed:\n${err}")
  endif()
  message(STATUS "twin compiles: ${SRC}")
else()
  if(rc EQUAL 0)
    message(FATAL_ERROR "${SRC} with UNIBUF_COMPILE_FAIL compiled, but must be rejected with: ${expect}")
  endif()
  if(NOT err MATCHES "${expect}")
    message(FATAL_ERROR "${SRC} was rejected, but not with the expected message '${expect}'. Compiler said:\n${err}")
  endif()
  # One readable error per misuse: more than one "error:" line means a cascade, unless the file
  # explains why with "// allow-multiple-errors: <reason>".
  string(REGEX MATCHALL "error:" errs "${err}")
  list(LENGTH errs nerr)
  file(STRINGS "${SRC}" allow REGEX "^// allow-multiple-errors: ")
  if(nerr GREATER 1 AND NOT allow)
    message(FATAL_ERROR "${SRC} was rejected with the expected message but ${nerr} errors (a cascade). Compiler said:\n${err}")
  endif()
  message(STATUS "rejected as expected: ${expect}")
endif()
