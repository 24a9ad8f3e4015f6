# Helpers for unibuf's own tests.
include(GoogleTest)

# unibuf_add_gtest(<name> SOURCES <files...> LABELS <labels...> [LIBS <targets...>] [ENV <VAR=value...>])
# One GoogleTest executable, registered as one ctest test carrying LABELS.
function(unibuf_add_gtest name)
  cmake_parse_arguments(arg "" "TIMEOUT" "SOURCES;LABELS;LIBS;ENV" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE unibuf::unibuf unibuf_project_options GTest::gtest GTest::gtest_main ${arg_LIBS})
  add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 600)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${arg_LABELS}" TIMEOUT ${arg_TIMEOUT})
  if(arg_ENV)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${arg_ENV}")
  endif()
endfunction()

# unibuf_add_compile_fail(<file.cpp> [FLAGS "<compiler flags>"])
# Two tests: <stem>.twin must compile, <stem>.fail must be rejected with the file's expect-error regex.
function(unibuf_add_compile_fail file)
  cmake_parse_arguments(arg "" "FLAGS" "" ${ARGN})
  get_filename_component(stem ${file} NAME_WE)
  get_filename_component(src ${file} ABSOLUTE)
  foreach(mode twin fail)
    add_test(NAME compile_fail.${stem}.${mode}
      COMMAND ${CMAKE_COMMAND} -DCXX=${CMAKE_CXX_COMPILER} -DSRC=${src} -DINCLUDE=${PROJECT_SOURCE_DIR}/include
              -DMODE=${mode} "-DFLAGS=${arg_FLAGS}" -P ${PROJECT_SOURCE_DIR}/cmake/UnibufCompileFail.cmake)
    set_tests_properties(compile_fail.${stem}.${mode} PROPERTIES LABELS compile_fail)
  endforeach()
endfunction()
