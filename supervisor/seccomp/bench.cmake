# Benchmarks (FAULT_BENCH): tools/bench/seccomp_*.
add_executable(seccomp_roundtrip ${PROJECT_SOURCE_DIR}/tools/bench/seccomp_roundtrip.cc)
target_link_libraries(seccomp_roundtrip PRIVATE fault_seccomp)

add_executable(seccomp_workload ${PROJECT_SOURCE_DIR}/tools/bench/seccomp_workload.c)
set_target_properties(seccomp_workload PROPERTIES C_COMPILER_LAUNCHER "")
target_compile_options(seccomp_workload PRIVATE -O2 -fno-sanitize=all)
target_link_options(seccomp_workload PRIVATE -static -fno-sanitize=all)
