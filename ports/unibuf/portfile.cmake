# unibuf overlay port: the package is what unibuf's own `cmake --install` lays out.
#   vcpkg install unibuf[vulkan,opengl] --overlay-ports=<unibuf>/ports
# Sources: this port lives in unibuf's tree (ports/unibuf/), whose root it builds.
set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../..")
if(NOT EXISTS "${SOURCE_PATH}/include/unibuf/unibuf.hpp")
    message(FATAL_ERROR "unibuf: ${SOURCE_PATH} is not unibuf's source tree; use this port as an overlay from ports/ of the tree")
endif()

set(VCPKG_BUILD_TYPE release)  # header-only: one configuration

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        vulkan UNIBUF_VULKAN
        opengl UNIBUF_OPENGL
)

set(GLAD_OPTIONS "")
if("opengl" IN_LIST FEATURES)
    # unibuf::opengl ships a glad 2 loader generated at build time (vcpkg's glad port is glad 1).
    # A Python 3 that has it already (the one vcpkg finds, else the system's), else glad2 from pip.
    vcpkg_find_acquire_program(PYTHON3)
    set(glad_python "")
    foreach(candidate IN ITEMS "${PYTHON3}" /usr/bin/python3 /usr/local/bin/python3)
        if(EXISTS "${candidate}")
            execute_process(COMMAND "${candidate}" -c "import glad.generator.c" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
            if(rc EQUAL 0)
                set(glad_python "${candidate}")
                break()
            endif()
        endif()
    endforeach()
    if(NOT glad_python)
        x_vcpkg_get_python_packages(PYTHON_VERSION 3 PACKAGES glad2 OUT_PYTHON_VAR glad_python)
    endif()
    message(STATUS "unibuf: the glad 2 generator of unibuf::opengl runs on ${glad_python}")
    list(APPEND GLAD_OPTIONS -DUNIBUF_GLAD=generate "-DUNIBUF_GLAD_PYTHON=${glad_python}")
endif()

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        ${GLAD_OPTIONS}
        -DUNIBUF_INSTALL=ON
        -DUNIBUF_BUILD_TESTS=OFF
        -DUNIBUF_BUILD_BENCH=OFF
        -DUNIBUF_BUILD_EXAMPLES=OFF
        -DUNIBUF_REGENERATE_SPIRV=OFF  # the SPIR-V headers ship in include/
    MAYBE_UNUSED_VARIABLES
        UNIBUF_REGENERATE_SPIRV  # read only with the vulkan feature
)
vcpkg_cmake_install()  # builds first: generates the glad headers of unibuf::opengl
vcpkg_cmake_config_fixup(PACKAGE_NAME unibuf CONFIG_PATH share/unibuf/cmake)

if(EXISTS "${SOURCE_PATH}/LICENSE")
    vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
else()
    file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
         "unibuf's source tree has no LICENSE file: its terms are not stated there.\n")
endif()
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
