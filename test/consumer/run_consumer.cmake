# Builds and runs one outside project that uses unibuf the way a consumer would.
#   MODE=find_package      builds INSTALL_PREREQUISITES (comma-separated targets) in UNIBUF_BINARY_DIR,
#                          installs that build tree into WORK_DIR/prefix, then
#                          configures/builds/runs find_package/ against that prefix only
#   MODE=add_subdirectory  configures/builds/runs add_subdirectory/, which adds UNIBUF_SOURCE_DIR
#   MODE=dropin            compiles dropin/main.cpp with `CXX -std=c++20 -I include` and runs it
# Invoked as: cmake -DMODE=... -DUNIBUF_SOURCE_DIR=... -DUNIBUF_BINARY_DIR=... -DWORK_DIR=...
#                   -DCXX=... -DGENERATOR=... [-DMAKE_PROGRAM=...] [-DINSTALL_PREREQUISITES=a,b]
#                   -P run_consumer.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var MODE UNIBUF_SOURCE_DIR WORK_DIR CXX)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${var} is not set")
  endif()
endforeach()
set(consumers ${CMAKE_CURRENT_LIST_DIR})

# Runs a command; on failure prints it with its output and stops.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "consumer ${MODE}: ${what} failed (exit ${rc}):\n  ${cmd}\n${out}\n${err}")
  endif()
  message(STATUS "consumer ${MODE}: ${what}: ok")
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

# Configures, builds and runs (through its own ctest) an outside CMake project.
function(build_and_run project_dir)
  set(generator_args)
  if(GENERATOR)
    list(APPEND generator_args -G "${GENERATOR}")
  endif()
  if(MAKE_PROGRAM)
    list(APPEND generator_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
  run("configure ${project_dir}" ${CMAKE_COMMAND} -S ${project_dir} -B ${WORK_DIR}/build ${generator_args}
      "-DCMAKE_CXX_COMPILER=${CXX}" -DCMAKE_BUILD_TYPE=Debug
      # Only what this test provides may be found: no package registries.
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF ${ARGN})
  run("build" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
  run("run" ${CMAKE_CTEST_COMMAND} --test-dir ${WORK_DIR}/build --output-on-failure --timeout 120)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

if(MODE STREQUAL "find_package")
  if(NOT UNIBUF_BINARY_DIR)
    message(FATAL_ERROR "run_consumer.cmake: UNIBUF_BINARY_DIR is not set")
  endif()
  set(prefix ${WORK_DIR}/prefix)
  if(INSTALL_PREREQUISITES)
    # Generated files the install copies (normally built already by the build before ctest).
    string(REPLACE "," ";" targets "${INSTALL_PREREQUISITES}")
    run("build the install's prerequisites (${INSTALL_PREREQUISITES})"
        ${CMAKE_COMMAND} --build ${UNIBUF_BINARY_DIR} --target ${targets})
  endif()
  run("install the build tree into ${prefix}" ${CMAKE_COMMAND} --install ${UNIBUF_BINARY_DIR} --prefix ${prefix})
  foreach(installed include/unibuf/unibuf.hpp include/unibuf/backend/host/host_backend.hpp
                    share/unibuf/cmake/unibufConfig.cmake share/unibuf/cmake/unibufConfigVersion.cmake
                    share/unibuf/cmake/unibufTargets.cmake)
    if(NOT EXISTS ${prefix}/${installed})
      message(FATAL_ERROR "consumer find_package: the install lacks ${installed} (under ${prefix})")
    endif()
  endforeach()
  build_and_run(${consumers}/find_package "-DCMAKE_PREFIX_PATH=${prefix}" "-DEXPECTED_PREFIX=${prefix}")
elseif(MODE STREQUAL "add_subdirectory")
  # Tests, benchmarks, examples and install rules must default to OFF in a subproject; the
  # consumer project checks that. GPU backends are switched off to keep this test fast.
  build_and_run(${consumers}/add_subdirectory "-DUNIBUF_SOURCE_DIR=${UNIBUF_SOURCE_DIR}"
                -DUNIBUF_VULKAN=OFF -DUNIBUF_OPENGL=OFF)
elseif(MODE STREQUAL "dropin")
  # Header-only drop-in: no CMake, no defines, no libraries; just the include path.
  set(exe ${WORK_DIR}/unibuf_dropin)
  run("compile with -std=c++20 -I include" ${CXX} -std=c++20 -Wall -Wextra -Wpedantic -Werror
      -I ${UNIBUF_SOURCE_DIR}/include ${consumers}/dropin/main.cpp -o ${exe})
  run("run" ${exe})
  message(STATUS "${run_output}")
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()
