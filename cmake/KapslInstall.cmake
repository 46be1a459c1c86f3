# Install rules and the exported CMake package: another project does
#   find_package(kapsl REQUIRED)  +  target_link_libraries(app PRIVATE kapsl::kapsl)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# kapsl::server (include/kapsl/server.h) is a static library with cpp-httplib compiled in;
# consumers link spdlog and nlohmann_json with it (kapslConfig.cmake finds them).
set_target_properties(kapsl_server PROPERTIES EXPORT_NAME server)
install(TARGETS kapsl kapsl_server EXPORT kapslTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES "${KAPSL_LLAMA_SOURCE_DIR}/vendor/cpp-httplib/LICENSE"
  DESTINATION ${CMAKE_INSTALL_DATADIR}/kapsl/cpp-httplib)
install(DIRECTORY include/kapsl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT kapslTargets NAMESPACE kapsl:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kapsl)

# libkapsl.so needs libonnxruntime.so.1 at run time; ship it (and its notices) beside it.
get_target_property(_kapsl_ort_lib onnxruntime::onnxruntime IMPORTED_LOCATION)
install(FILES "${_kapsl_ort_lib}" DESTINATION ${CMAKE_INSTALL_LIBDIR})
get_filename_component(_kapsl_ort_prefix "${_kapsl_ort_lib}/../.." ABSOLUTE)
install(FILES "${_kapsl_ort_prefix}/LICENSE" "${_kapsl_ort_prefix}/ThirdPartyNotices.txt"
  DESTINATION ${CMAKE_INSTALL_DATADIR}/kapsl/onnxruntime OPTIONAL)

configure_package_config_file(cmake/kapslConfig.cmake.in "${CMAKE_CURRENT_BINARY_DIR}/kapslConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kapsl)
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/kapslConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/kapslConfig.cmake" "${CMAKE_CURRENT_BINARY_DIR}/kapslConfigVersion.cmake"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kapsl)
