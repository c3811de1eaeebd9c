/*
 * The C API that libfault_shim.so exports besides the libc functions it
 * wraps. Programs normally use it through fault/scoped_policy.h, which
 * resolves these symbols at run time so that a program runs (without
 * faults) when the shim is not preloaded.
 */
#ifndef FAULT_SHIM_H_
#define FAULT_SHIM_H_

#ifdef __cplusplus
extern "C" {
#endif

/* Applies the policy named `name` to the calling thread until the matching
 * fault_scope_pop(), in addition to the process-wide (active) policies.
 * Scopes nest (at most FAULT_SCOPE_MAX deep).
 * Returns 0 when the policy exists in the current table, 1 when the name is
 * pushed but no such policy exists (a warning is written once to stderr;
 * the thread runs without that policy), -1 when nothing was pushed (null
 * name or too deep; errno EINVAL / E2BIG). */
int fault_scope_push(const char* name);

/* Removes the innermost scope of the calling thread (no-op when empty). */
void fault_scope_pop(void);

/* 1 when the shim has a policy table mapped, else 0. */
int fault_shim_active(void);

#define FAULT_SCOPE_MAX 8

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* FAULT_SHIM_H_ */
