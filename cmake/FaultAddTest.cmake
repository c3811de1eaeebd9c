# fault_add_test(NAME name COMMAND program [args...] [FAULT_ARGS args...])
#
# A ctest entry that runs `program` under `fault exec --control unix`: the
# test code changes its own faults while it runs (fault::testing, or any
# client of FAULT_CONTROL; docs/control.md). `program` may be a target name.
# FAULT_ARGS go to `fault exec` before `--` (policy files, --layer, ...).
# Inside this project the `fault` target is used; elsewhere `fault` is looked
# up on PATH (or set FAULT_EXECUTABLE).
function(fault_add_test)
  cmake_parse_arguments(A "" "NAME" "COMMAND;FAULT_ARGS" ${ARGN})
  if(NOT A_NAME OR NOT A_COMMAND)
    message(FATAL_ERROR "fault_add_test: NAME and COMMAND are required")
  endif()
  if(TARGET fault)
    set(fault_program $<TARGET_FILE:fault>)
  else()
    find_program(FAULT_EXECUTABLE fault REQUIRED)
    set(fault_program ${FAULT_EXECUTABLE})
  endif()
  list(POP_FRONT A_COMMAND program)
  if(TARGET ${program})
    set(program $<TARGET_FILE:${program}>)
  endif()
  add_test(NAME ${A_NAME}
    COMMAND ${fault_program} exec --quiet --control unix ${A_FAULT_ARGS} -- ${program}
      ${A_COMMAND})
endfunction()
