# kapsl_set_warnings(target): the warning set every kapsl target compiles with.
function(kapsl_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)
  # Clang checks the lock annotations (src/core/thread_annotations.h, src/core/mutex.h).
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety)
  endif()
  if(KAPSL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(KAPSL_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(KAPSL_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(KAPSL_SANITIZE STREQUAL "fuzzer")
  # libFuzzer's coverage instrumentation everywhere, ASan + UBSan; the fuzz targets alone
  # link libFuzzer's main (fuzz/CMakeLists.txt). Clang only.
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "KAPSL_SANITIZE=fuzzer needs Clang (the fuzz preset uses clang-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT KAPSL_SANITIZE STREQUAL "")
  message(FATAL_ERROR "KAPSL_SANITIZE must be '', 'address', 'thread' or 'fuzzer', not '${KAPSL_SANITIZE}'")
endif()
