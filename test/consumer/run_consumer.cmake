# Builds and runs one outside project that uses unibuf the way a consumer would.
#   MODE=find_package      builds INSTALL_PREREQUISITES (comma-separated targets) in UNIBUF_BINARY_DIR,
#                          installs that build tree into WORK_DIR/prefix, then
#                          configures/builds/runs find_package/ against that prefix only: the core,
#                          and unibuf::vulkan / unibuf::opengl where EXPECT_VULKAN / EXPECT_OPENGL
#                          are ON (then a missing target fails the test; OFF: a present one fails
#                          it; SKIP: neither checked nor built)
#   MODE=find_package_core configures unibuf anew with both backends off, builds and installs it as
#                          the README's Install section says (the layout of the default Conan package
#                          and of the vcpkg port without features), then the same consumer, which
#                          must find no backend
#   MODE=add_subdirectory  configures/builds/runs add_subdirectory/, which adds UNIBUF_SOURCE_DIR
#   MODE=fetchcontent      configures/builds/runs fetchcontent/ (FetchContent_Declare +
#                          FetchContent_MakeAvailable), the source given by FETCHCONTENT_SOURCE_DIR_UNIBUF
#   MODE=dropin            compiles dropin/main.cpp with `CXX -std=c++20 -I include` and runs it
#   MODE=dropin_tree       copies include/ and the host-backend example into a fresh tree, compiles it
#                          there with nothing but `CXX -std=c++20 -I include` and runs it
# Invoked as: cmake -DMODE=... -DUNIBUF_SOURCE_DIR=... -DUNIBUF_BINARY_DIR=... -DWORK_DIR=...
#                   -DCXX=... -DGENERATOR=... [-DMAKE_PROGRAM=...] [-DINSTALL_PREREQUISITES=a,b]
#                   [-DEXPECT_VULKAN=ON|OFF|SKIP] [-DEXPECT_OPENGL=ON|OFF|SKIP] -P run_consumer.cmake
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
  run("run" ${CMAKE_CTEST_COMMAND} --test-dir ${WORK_DIR}/build --output-on-failure --timeout 120 --no-tests=error)
  set(run_output "${run_output}" PARENT_SCOPE)  # ctest's summary
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

if(MODE STREQUAL "find_package_core")
  # The README's install commands, with both backends off.
  set(generator_args)
  if(GENERATOR)
    list(APPEND generator_args -G "${GENERATOR}")
  endif()
  if(MAKE_PROGRAM)
    list(APPEND generator_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
  set(UNIBUF_BINARY_DIR ${WORK_DIR}/unibuf-build)
  run("configure unibuf with both backends off" ${CMAKE_COMMAND} -S ${UNIBUF_SOURCE_DIR} -B ${UNIBUF_BINARY_DIR}
      ${generator_args} "-DCMAKE_CXX_COMPILER=${CXX}" -DUNIBUF_BUILD_TESTS=OFF -DUNIBUF_BUILD_BENCH=OFF
      -DUNIBUF_BUILD_EXAMPLES=OFF -DUNIBUF_VULKAN=OFF -DUNIBUF_OPENGL=OFF)
  run("build unibuf" ${CMAKE_COMMAND} --build ${UNIBUF_BINARY_DIR})
  set(INSTALL_PREREQUISITES "")
  set(EXPECT_VULKAN OFF)
  set(EXPECT_OPENGL OFF)
  set(MODE find_package)  # the rest is the find_package consumer's
endif()

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
  set(expected include/unibuf/unibuf.hpp include/unibuf/backend/host/host_backend.hpp
               share/unibuf/cmake/unibufConfig.cmake share/unibuf/cmake/unibufConfigVersion.cmake
               share/unibuf/cmake/unibufTargets.cmake)
  if(EXPECT_VULKAN STREQUAL "ON")
    list(APPEND expected include/unibuf/vulkan.hpp include/unibuf/ops/saxpy/saxpy.spv.hpp)
  endif()
  if(EXPECT_OPENGL STREQUAL "ON")
    list(APPEND expected include/unibuf/opengl.hpp include/unibuf/glad/glad/gl.h include/unibuf/glad/glad/egl.h)
  endif()
  foreach(installed IN LISTS expected)
    if(NOT EXISTS ${prefix}/${installed})
      message(FATAL_ERROR "consumer find_package: the install lacks ${installed} (under ${prefix})")
    endif()
  endforeach()
  if(EXPECT_OPENGL STREQUAL "OFF" AND EXISTS ${prefix}/include/unibuf/glad)
    message(FATAL_ERROR "consumer find_package: an install without the OpenGL backend holds its glad headers")
  endif()
  build_and_run(${consumers}/find_package "-DCMAKE_PREFIX_PATH=${prefix}" "-DEXPECTED_PREFIX=${prefix}"
                "-DEXPECT_VULKAN=${EXPECT_VULKAN}" "-DEXPECT_OPENGL=${EXPECT_OPENGL}"
                "-DUNIBUF_TEST_PACKAGE_DIR=${UNIBUF_SOURCE_DIR}/test_package")
  message(STATUS "${run_output}")  # the tests that ran: one per target
elseif(MODE STREQUAL "add_subdirectory")
  # Tests, benchmarks, examples and install rules must default to OFF in a subproject; the
  # consumer project checks that. GPU backends are switched off to keep this test fast.
  build_and_run(${consumers}/add_subdirectory "-DUNIBUF_SOURCE_DIR=${UNIBUF_SOURCE_DIR}"
                -DUNIBUF_VULKAN=OFF -DUNIBUF_OPENGL=OFF)
elseif(MODE STREQUAL "fetchcontent")
  # FETCHCONTENT_SOURCE_DIR_UNIBUF is CMake's own override of a declared source: the consumer's
  # FetchContent calls run as written, without a network.
  build_and_run(${consumers}/fetchcontent "-DFETCHCONTENT_SOURCE_DIR_UNIBUF=${UNIBUF_SOURCE_DIR}"
                -DUNIBUF_VULKAN=OFF -DUNIBUF_OPENGL=OFF)
elseif(MODE STREQUAL "dropin_tree")
  # A fresh tree with a copy of include/ and nothing else of unibuf: the headers must be complete
  # (nothing generated, nothing outside include/), and the host-backend example needs no defines,
  # libraries or flags beyond the include path.
  set(tree ${WORK_DIR}/tree)
  file(COPY ${UNIBUF_SOURCE_DIR}/include DESTINATION ${tree})
  file(COPY ${UNIBUF_SOURCE_DIR}/example/policies.cpp DESTINATION ${tree})
  set(exe ${tree}/unibuf_policies)
  run("compile the copied example with -std=c++20 -I include" ${CXX} -std=c++20 -I ${tree}/include
      ${tree}/policies.cpp -o ${exe})
  run("run" ${exe})
  string(LENGTH "${run_output}" printed)
  if(printed EQUAL 0)
    message(FATAL_ERROR "consumer dropin_tree: the example printed nothing")
  endif()
  message(STATUS "${run_output}")
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
