# Why the module is built in a nested build (included from CMakeLists.txt).
#
# pip builds in an isolated environment under a new temporary path each time, and when that path
# changes scikit-build-core clears the CMake cache and CMakeFiles/, where the objects live; the
# compile commands would change too, since they name the Eigen and pybind11 headers inside that
# environment. So a second `pip install .` would compile everything again (the kernels, once per
# instruction set, are minutes of CPU). Instead, this outer build copies the Eigen and pybind11
# headers into <build-dir>/deps (a file is rewritten only when its contents change), configures
# the real build (this CMakeLists.txt with RNNKIT_SUPERBUILD=OFF) in <build-dir>/core, which
# scikit-build-core never clears, and builds and installs it. Its compile commands name only
# those copies, so what has not changed is not compiled again.

find_package(Python 3.9 REQUIRED COMPONENTS Interpreter)

set(RNNKIT_DEPS_DIR "${CMAKE_BINARY_DIR}/deps")
set(RNNKIT_CORE_BUILD_DIR "${CMAKE_BINARY_DIR}/core")

# Copies the directory src to dst, rewriting only the files whose contents differ, so that their
# timestamps (which the compiler's dependency files are checked against) stay as they were.
function(rnnkit_mirror_dir src dst)
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.26)
    execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_directory_if_different "${src}" "${dst}"
                    RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "rnnkit: could not copy ${src} to ${dst}")
    endif()
  else()
    # Older CMake copies when the timestamps differ: correct, but every pip install recompiles.
    file(COPY "${src}/" DESTINATION "${dst}")
  endif()
endfunction()

function(rnnkit_python_print code out)
  execute_process(COMMAND "${Python_EXECUTABLE}" -c "${code}" OUTPUT_VARIABLE value
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

# Eigen from the cmeel-eigen wheel (a build requirement); a system Eigen is used where it is.
rnnkit_python_print(
  "import cmeel, os; print(os.path.join(os.path.dirname(cmeel.__path__[0]), 'cmeel.prefix'))"
  cmeel_prefix)
if(cmeel_prefix AND EXISTS "${cmeel_prefix}/share/eigen3/cmake/Eigen3Config.cmake")
  rnnkit_mirror_dir("${cmeel_prefix}/include/eigen3" "${RNNKIT_DEPS_DIR}/eigen/include/eigen3")
  rnnkit_mirror_dir("${cmeel_prefix}/share/eigen3" "${RNNKIT_DEPS_DIR}/eigen/share/eigen3")
  set(eigen_dir "${RNNKIT_DEPS_DIR}/eigen/share/eigen3/cmake")
else()
  find_package(Eigen3 3.4 REQUIRED NO_MODULE)
  set(eigen_dir "${Eigen3_DIR}")
endif()

# pybind11 from its wheel (a build requirement); its CMake files find its headers relative to
# themselves, so the copy is a complete package.
rnnkit_python_print("import pybind11, os; print(os.path.dirname(pybind11.__file__))"
                    pybind11_root)
if(pybind11_root AND EXISTS "${pybind11_root}/share/cmake/pybind11/pybind11Config.cmake")
  rnnkit_mirror_dir("${pybind11_root}/include" "${RNNKIT_DEPS_DIR}/pybind11/include")
  rnnkit_mirror_dir("${pybind11_root}/share" "${RNNKIT_DEPS_DIR}/pybind11/share")
  set(pybind11_dir "${RNNKIT_DEPS_DIR}/pybind11/share/cmake/pybind11")
else()
  find_package(pybind11 CONFIG REQUIRED)
  set(pybind11_dir "${pybind11_DIR}")
endif()

# Everything that shapes the build is passed on; the nested build's cache keeps the rest
# (its compiler checks run only the first time).
set(core_args
  -DRNNKIT_SUPERBUILD=OFF
  "-DEigen3_DIR=${eigen_dir}"
  "-Dpybind11_DIR=${pybind11_dir}"
  "-DPython_EXECUTABLE=${Python_EXECUTABLE}")
string(TOUPPER "${CMAKE_BUILD_TYPE}" build_type_upper)
foreach(var IN ITEMS
    CMAKE_BUILD_TYPE CMAKE_CXX_COMPILER CMAKE_CXX_COMPILER_LAUNCHER CMAKE_CXX_FLAGS
    CMAKE_CXX_FLAGS_${build_type_upper} CMAKE_SHARED_LINKER_FLAGS CMAKE_MODULE_LINKER_FLAGS
    CMAKE_MAKE_PROGRAM CMAKE_TOOLCHAIN_FILE CMAKE_OSX_ARCHITECTURES CMAKE_OSX_DEPLOYMENT_TARGET
    CMAKE_INTERPROCEDURAL_OPTIMIZATION
    RNNKIT_WERROR RNNKIT_AMX_EMULATION SKBUILD_PROJECT_VERSION
    Python_ROOT_DIR Python_INCLUDE_DIR Python_LIBRARY Python_FIND_REGISTRY)
  if(DEFINED ${var})
    list(APPEND core_args "-D${var}=${${var}}")
  endif()
endforeach()

# A nested build made by another generator cannot be reused: start it again.
if(EXISTS "${RNNKIT_CORE_BUILD_DIR}/CMakeCache.txt")
  load_cache("${RNNKIT_CORE_BUILD_DIR}" READ_WITH_PREFIX core_ CMAKE_GENERATOR)
  if(NOT core_CMAKE_GENERATOR STREQUAL CMAKE_GENERATOR)
    file(REMOVE_RECURSE "${RNNKIT_CORE_BUILD_DIR}")
  endif()
endif()

message(STATUS "rnnkit: configuring the core in ${RNNKIT_CORE_BUILD_DIR}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -S "${CMAKE_SOURCE_DIR}" -B "${RNNKIT_CORE_BUILD_DIR}"
          -G "${CMAKE_GENERATOR}" --no-warn-unused-cli ${core_args}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "rnnkit: configuring the core in ${RNNKIT_CORE_BUILD_DIR} failed")
endif()

# Built every time; the nested build decides what is out of date. Its progress lines
# ([3/17] Building CXX object ...) show with `pip install -v .`.
add_custom_target(rnnkit_core ALL
  COMMAND "${CMAKE_COMMAND}" --build "${RNNKIT_CORE_BUILD_DIR}" --config "${CMAKE_BUILD_TYPE}"
  COMMENT "rnnkit: building the core in ${RNNKIT_CORE_BUILD_DIR}"
  USES_TERMINAL)

install(CODE "
  set(strip_arg)
  if(CMAKE_INSTALL_DO_STRIP)
    set(strip_arg --strip)
  endif()
  execute_process(
    COMMAND \"${CMAKE_COMMAND}\" --install \"${RNNKIT_CORE_BUILD_DIR}\"
            --config \"${CMAKE_BUILD_TYPE}\" --prefix \"\${CMAKE_INSTALL_PREFIX}\" \${strip_arg}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR \"rnnkit: installing the core from ${RNNKIT_CORE_BUILD_DIR} failed\")
  endif()
")
