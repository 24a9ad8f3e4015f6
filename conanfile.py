# Conan 2 recipe of unibuf: the package is what `cmake --install` lays out, nothing else.
#
#   conan create . -s compiler.cppstd=20                                   # core + host backend
#   conan create . -s compiler.cppstd=20 -o "unibuf/*:vulkan=True" -o "unibuf/*:opengl=True"
#
# What each part needs from the system (Conan provides none of it):
#   core (unibuf::unibuf)      a C++20 compiler and threads; nothing else.
#   vulkan (unibuf::vulkan)    the Vulkan headers with Vulkan-Hpp (vulkan/vulkan.hpp), found by CMake's
#                              FindVulkan when the package is created and again when it is consumed
#                              (Debian: libvulkan-dev). The loader is opened at run time
#                              (libvulkan.so.1, Debian: libvulkan1) and a driver is needed to run.
#   opengl (unibuf::opengl)    to create the package: a Python 3 with the glad 2 generator (Debian:
#                              python3-glad, or `pip install glad2`) and EGL (Debian: libegl-dev); the
#                              generated glad loader headers are installed in the package. To run:
#                              libEGL.so.1 and an OpenGL 4.3+ driver (opened at run time).
#
# CMake consumers get the installed package config itself (unibufConfig.cmake and its targets:
# unibuf::unibuf, unibuf::vulkan, unibuf::opengl), so there is one definition of the targets;
# package_info also describes them as components for Conan's other generators.
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load
from conan.errors import ConanException


def _project_version(root):
    """The version in the root CMakeLists.txt's project() call, so the two never differ."""
    import re
    text = load(None, os.path.join(root, "CMakeLists.txt"))
    m = re.search(r"project\(\s*unibuf\s+VERSION\s+([0-9][0-9.]*)", text)
    if not m:
        raise ConanException("unibuf: no 'project(unibuf VERSION x.y.z' in CMakeLists.txt")
    return m.group(1)


class UnibufConan(ConanFile):
    name = "unibuf"
    description = "Header-only C++20 unified CPU/GPU buffers (host, Vulkan and OpenGL backends)"
    topics = ("gpu", "vulkan", "opengl", "buffers", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"vulkan": [True, False], "opengl": [True, False]}
    default_options = {"vulkan": False, "opengl": False}
    # The sources come from this tree: what `cmake --install` needs, and no tests or benchmarks.
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "README.md", "LICENSE*"
    no_copy_source = True

    def set_version(self):
        self.version = self.version or _project_version(self.recipe_folder)

    def layout(self):
        cmake_layout(self)

    def validate(self):
        # Only the consumer's settings matter for a header library; a cppstd left unset is allowed
        # (the exported target asks for cxx_std_20 itself).
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)

    def package_id(self):
        # The headers do not depend on compiler, build type or architecture; the options choose which
        # targets (and, for opengl, which generated loader headers) the package holds, so they stay.
        self.info.settings.clear()

    def generate(self):
        tc = CMakeToolchain(self)
        on_off = lambda b: "ON" if b else "OFF"
        tc.cache_variables["UNIBUF_VULKAN"] = on_off(self.options.vulkan)
        tc.cache_variables["UNIBUF_OPENGL"] = on_off(self.options.opengl)
        tc.cache_variables["UNIBUF_INSTALL"] = "ON"
        tc.cache_variables["UNIBUF_REGENERATE_SPIRV"] = "OFF"  # the SPIR-V headers ship in include/
        for part in ("TESTS", "BENCH", "EXAMPLES"):
            tc.cache_variables["UNIBUF_BUILD_" + part] = "OFF"
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()  # generates the glad loader headers when opengl=True; nothing otherwise

    def package(self):
        CMake(self).install()
        copy(self, "LICENSE*", src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))

    def package_info(self):
        # CMake: find_package(unibuf CONFIG) loads the installed config from the package folder.
        self.cpp_info.set_property("cmake_file_name", "unibuf")
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs = [""]
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []

        # Other generators: the same three targets as components.
        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "unibuf::unibuf")
        core.includedirs = ["include"]
        core.bindirs = []
        core.libdirs = []
        core.builddirs = [""]
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]
        if self.options.vulkan:
            vk = self.cpp_info.components["vulkan"]
            vk.set_property("cmake_target_name", "unibuf::vulkan")
            vk.requires = ["core"]
            vk.includedirs = []
            vk.bindirs = []
            vk.libdirs = []
            if self.settings.os in ("Linux", "FreeBSD"):
                vk.system_libs = ["dl"]
        if self.options.opengl:
            gl = self.cpp_info.components["opengl"]
            gl.set_property("cmake_target_name", "unibuf::opengl")
            gl.requires = ["core"]
            gl.includedirs = [os.path.join("include", "unibuf", "glad")]
            gl.bindirs = []
            gl.libdirs = []
            if self.settings.os in ("Linux", "FreeBSD"):
                gl.system_libs = ["dl"]
