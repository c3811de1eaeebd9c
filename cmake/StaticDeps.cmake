# FAULT_STATIC_DEPS: link abseil, protobuf and yaml-cpp from Debian's static
# archives instead of their shared libraries.
#
# Why: with the shared libraries `fault` loads 42 of them (abseil alone is
# ~30 small ones), and the dynamic loader's symbol lookup and relocation of
# them was most of `fault exec`'s start-up (about 10 ms of a `/bin/true`
# run). Linked from the archives, only libstdc++, libc, libm, libgcc_s,
# libseccomp, libbpf, libelf and libz are left to load.
#
# How: the packages' imported targets stay as they are (so every
# target_link_libraries keeps naming absl::status, yaml-cpp, ...), only the
# file each one points to is swapped for the `.a` beside the `.so`. Their
# INTERFACE_LINK_LIBRARIES already say which archive needs which, so CMake
# orders the link line correctly. Protobuf comes from FindProtobuf, which has
# its own switch (Protobuf_USE_STATIC_LIBS, set before find_package).

# Points imported target `tgt` at the static archive beside its shared
# library, for every imported configuration, when that archive exists.
function(fault_use_static_archive tgt)
  get_target_property(type ${tgt} TYPE)
  if(NOT type STREQUAL "SHARED_LIBRARY" AND NOT type STREQUAL "UNKNOWN_LIBRARY")
    return()
  endif()
  get_target_property(configs ${tgt} IMPORTED_CONFIGURATIONS)
  if(NOT configs)
    set(configs "")
  endif()
  foreach(cfg IN LISTS configs ITEMS "")
    if(cfg STREQUAL "")
      set(prop IMPORTED_LOCATION)
    else()
      string(TOUPPER "${cfg}" ucfg)
      set(prop IMPORTED_LOCATION_${ucfg})
    endif()
    get_target_property(loc ${tgt} ${prop})
    if(NOT loc OR loc MATCHES "\\.a$")
      continue()
    endif()
    string(REGEX REPLACE "\\.so(\\.[0-9.]+)?$" ".a" archive "${loc}")
    if(NOT archive STREQUAL loc AND EXISTS "${archive}")
      set_target_properties(${tgt} PROPERTIES ${prop} "${archive}")
    else()
      message(FATAL_ERROR
        "FAULT_STATIC_DEPS: no static archive for ${tgt} (${loc}); "
        "configure with -DFAULT_STATIC_DEPS=OFF")
    endif()
  endforeach()
endfunction()

# Every abseil target with a library file, and yaml-cpp.
function(fault_use_static_deps)
  get_directory_property(imported IMPORTED_TARGETS)
  foreach(tgt IN LISTS imported)
    if(tgt MATCHES "^absl::" OR tgt STREQUAL "yaml-cpp" OR
       tgt STREQUAL "yaml-cpp::yaml-cpp")
      get_target_property(aliased ${tgt} ALIASED_TARGET)
      if(NOT aliased)
        fault_use_static_archive(${tgt})
      endif()
    endif()
  endforeach()
  # libprotobuf.a needs zlib (gzip streams) and threads, which the shared
  # library brought along itself. (Protobuf_USE_STATIC_LIBS finds the
  # archive in a fresh build directory; this covers one whose cache still
  # names the shared library.)
  if(TARGET protobuf::libprotobuf)
    fault_use_static_archive(protobuf::libprotobuf)
    find_package(ZLIB REQUIRED)
    set_property(TARGET protobuf::libprotobuf APPEND PROPERTY
                 INTERFACE_LINK_LIBRARIES ZLIB::ZLIB Threads::Threads)
  endif()
endfunction()
