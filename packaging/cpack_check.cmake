# Run by cpack (CPACK_PROJECT_CONFIG_FILE): a Debian package lives under
# /usr, and its units and config paths were written at configure time.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "this build directory installs under '${CPACK_PACKAGING_INSTALL_PREFIX}': "
                      "a Debian package needs one configured with -DCMAKE_INSTALL_PREFIX=/usr")
endif()
