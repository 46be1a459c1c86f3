# Finds the dependencies provisioned by scripts/bootstrap-deps. The script is the one
# place that knows where its cache lives; ask it and append the answer to
# CMAKE_PREFIX_PATH. A user with their own ONNX Runtime / llama.cpp builds sets
# CMAKE_PREFIX_PATH to them (and KAPSL_USE_BOOTSTRAP_DEPS=OFF) instead.
option(KAPSL_USE_BOOTSTRAP_DEPS "Look for dependencies in scripts/bootstrap-deps' cache" ON)
if(KAPSL_USE_BOOTSTRAP_DEPS)
  execute_process(
    COMMAND "${PROJECT_SOURCE_DIR}/scripts/bootstrap-deps" --print-prefix
    OUTPUT_VARIABLE _kapsl_deps_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _kapsl_deps_rc)
  if(_kapsl_deps_rc EQUAL 0)
    list(APPEND CMAKE_PREFIX_PATH ${_kapsl_deps_prefix})
    list(GET _kapsl_deps_prefix 1 _kapsl_llama_prefix)
    # The llama.cpp source tree (vocab files, tools) sits beside its install prefix.
    get_filename_component(KAPSL_LLAMA_SOURCE_DIR "${_kapsl_llama_prefix}/../src" ABSOLUTE)
    # llama.cpp's common library has no CMake package: bootstrap-deps copies it beside.
    get_filename_component(KAPSL_LLAMA_COMMON_DIR "${_kapsl_llama_prefix}/../common" ABSOLUTE)
  endif()
endif()
set(KAPSL_LLAMA_SOURCE_DIR "${KAPSL_LLAMA_SOURCE_DIR}" CACHE PATH "llama.cpp source tree (models/ggml-vocab-*.gguf)")
set(KAPSL_LLAMA_COMMON_DIR "${KAPSL_LLAMA_COMMON_DIR}" CACHE PATH
  "llama.cpp's common library, as bootstrap-deps installs it: lib/libllama-common{,-base}.a, include/llama-common/")
set(KAPSL_ONNX_TESTDATA_DIR "/usr/share/libonnx-testdata/data" CACHE PATH "ONNX backend test data (Debian libonnx-testdata)")
