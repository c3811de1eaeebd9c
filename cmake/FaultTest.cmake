# Test helpers. Every test carries a label so that CI can pick sets:
#   unit         pure in-process tests (also run under ASan+UBSan and TSan)
#   integration  real programs under `fault exec` (default preset only)
#   fuzz         bounded libFuzzer runs (fuzz preset only)

# Aggregate targets, so that a preset can build only what it runs:
#   fault_tsan_tests    unit tests also labelled `tsan` (threads worth checking)
#   fault_fuzz_targets  every libFuzzer binary
add_custom_target(fault_tsan_tests)
add_custom_target(fault_fuzz_targets)

# fault_unit_test(NAME SOURCES a_test.cc ... LIBS lib ... [LABELS tsan])
# Every test gets the label `unit`. LABELS tsan adds the binary to
# fault_tsan_tests; the tsan preset builds only those, so `ctest -L unit` there
# runs just them (gtest_discover_tests cannot carry a second label).
function(fault_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/generated)
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name}
    PROPERTIES LABELS unit
    DISCOVERY_TIMEOUT 60)
  if("tsan" IN_LIST T_LABELS)
    add_dependencies(fault_tsan_tests ${name})
  endif()
endfunction()

# fault_fuzz_target(NAME SOURCES fuzz.cc LIBS ... [CORPUS dir] [SECONDS n])
# Builds a libFuzzer binary and registers a bounded run of it as a test.
# The run's seed is FAULT_FUZZ_SEED (default 1, so that a CI run explores
# the same inputs every time; 0 lets libFuzzer pick one, for longer hunts).
# The run stops after FAULT_FUZZ_RUNS inputs or SECONDS, whichever comes
# first, so with a fixed seed it tries the same inputs on any machine that
# reaches the count in time.
set(FAULT_FUZZ_SEED 1 CACHE STRING "libFuzzer -seed for the bounded fuzz tests (0: random)")
set(FAULT_FUZZ_RUNS 100000 CACHE STRING "libFuzzer -runs for the bounded fuzz tests (-1: no limit)")
function(fault_fuzz_target name)
  cmake_parse_arguments(T "" "CORPUS;SECONDS" "SOURCES;LIBS" ${ARGN})
  if(NOT FAULT_FUZZ)
    return()
  endif()
  if(NOT T_SECONDS)
    set(T_SECONDS 60)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/generated)
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  add_dependencies(fault_fuzz_targets ${name})
  set(work ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
  set(seeds "")
  if(T_CORPUS)
    set(seeds ${T_CORPUS})
  endif()
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
      sh -c "mkdir -p ${work} && exec $<TARGET_FILE:${name}> -seed=${FAULT_FUZZ_SEED} -runs=${FAULT_FUZZ_RUNS} -max_total_time=${T_SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${work} ${seeds}")
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 600)
endfunction()
