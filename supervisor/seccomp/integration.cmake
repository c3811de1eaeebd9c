# Integration tests: static target programs (gcc -static) run under
# seccomp_driver, which installs the filter, runs NotifyLoop with a table it
# writes itself and drains the events.
set(FAULT_SECCOMP_TARGETS connect_target fsync_target fsync_loop mt_writer open_target
    partition_peer write_timing)
foreach(t ${FAULT_SECCOMP_TARGETS})
  add_executable(seccomp_${t} ${PROJECT_SOURCE_DIR}/tests/targets/seccomp/${t}.c)
  # Static and plain: no sanitizer runtime, no shim can see it.
  set_target_properties(seccomp_${t} PROPERTIES C_COMPILER_LAUNCHER "")
  target_compile_options(seccomp_${t} PRIVATE -O2 -fno-sanitize=all)
  target_link_options(seccomp_${t} PRIVATE -static -pthread -fno-sanitize=all)
  target_link_libraries(seccomp_${t} PRIVATE Threads::Threads)
endforeach()

# The same writer, dynamically linked, for the shim + seccomp ("both") case.
add_executable(seccomp_write_timing_dyn ${PROJECT_SOURCE_DIR}/tests/targets/seccomp/write_timing.c)
target_compile_options(seccomp_write_timing_dyn PRIVATE -O2 -fno-sanitize=all)
target_link_options(seccomp_write_timing_dyn PRIVATE -fno-sanitize=all)

add_executable(seccomp_driver testing/seccomp_driver.cc)
target_link_libraries(seccomp_driver PRIVATE fault_seccomp fault_policy CLI11::CLI11)

add_executable(seccomp_integration_test testing/integration_test.cc)
target_compile_definitions(seccomp_integration_test PRIVATE
  FAULT_SECCOMP_BIN_DIR="${FAULT_BIN_DIR}")
target_link_libraries(seccomp_integration_test PRIVATE
  absl::strings GTest::gtest GTest::gmock GTest::gtest_main)
foreach(t ${FAULT_SECCOMP_TARGETS})
  add_dependencies(seccomp_integration_test seccomp_${t})
endforeach()
add_dependencies(seccomp_integration_test seccomp_driver seccomp_write_timing_dyn)
if(TARGET fault_shim AND NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
  add_dependencies(seccomp_integration_test fault_shim)
  target_compile_definitions(seccomp_integration_test PRIVATE
    FAULT_SHIM_PATH="$<TARGET_FILE:fault_shim>")
endif()
gtest_discover_tests(seccomp_integration_test
  PROPERTIES LABELS integration TIMEOUT 60
  DISCOVERY_TIMEOUT 60)
