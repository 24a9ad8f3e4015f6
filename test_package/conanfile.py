# Consumes the unibuf package as a user would: CMakeDeps + CMakeToolchain, find_package(unibuf),
# one program per target the package was created with; each is built and run.
import os
import tempfile

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout


class UnibufTestConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        # Builds outside the source tree, so test_package/ stays as committed: a new temporary
        # folder, unless the conf tools.cmake.cmake_layout:test_folder names one.
        cmake_layout(self, build_folder=tempfile.mkdtemp(prefix="unibuf-test-package-"))

    def generate(self):
        tc = CMakeToolchain(self)
        tc.user_presets_path = False  # no CMakeUserPresets.json written into test_package/
        tc.generate()

    def _programs(self):
        opts = self.dependencies[self.tested_reference_str.split("/")[0]].options
        programs = ["unibuf_test_core"]
        if opts.vulkan:
            programs.append("unibuf_test_vulkan")
        if opts.opengl:
            programs.append("unibuf_test_opengl")
        return programs

    def build(self):
        cmake = CMake(self)
        cmake.configure(variables={"UNIBUF_EXPECT_TARGETS": ";".join(self._programs())})
        cmake.build()

    def test(self):
        if not can_run(self):
            return
        for program in self._programs():
            self.run(os.path.join(self.cpp.build.bindir, program), env="conanrun")
