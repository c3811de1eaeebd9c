// The raw-syscall stub page. The supervisor reserves an address
// (FAULT_STUB_PAGE, hex) and its seccomp filter lets every syscall whose
// instruction pointer lies in that page through, so that syscalls the shim
// already handled are not faulted a second time by the seccomp layer.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shim/src/shim_internal.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

namespace fault::shim {

StubFn g_stub = nullptr;

bool MapStubPage(const char* env, bool* failed) {
  *failed = false;
  if (env == nullptr || env[0] == 0) return false;
#if defined(__x86_64__)
  // long stub(long nr, long a1, ..., long a6), System V calling convention:
  //   mov rax, rdi; mov rdi, rsi; mov rsi, rdx; mov rdx, rcx;
  //   mov r10, r8;  mov r8, r9;   mov r9, [rsp+8]; syscall; ret
  static const unsigned char kCode[] = {
      0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6,
      0x48, 0x89, 0xca, 0x4d, 0x89, 0xc2, 0x4d, 0x89, 0xc8,
      0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3};
  char* end = nullptr;
  errno = 0;
  unsigned long long addr = strtoull(env, &end, 16);
  if (errno != 0 || end == env || *end != 0 || addr == 0 ||
      (addr & 4095) != 0) {
    Warn("fault: FAULT_STUB_PAGE=", env,
         " is not a page-aligned hex address; the shim leaves the "
         "seccomp-covered "
         "syscall families to the seccomp layer\n");
    *failed = true;
    return false;
  }
  void* want = reinterpret_cast<void*>(addr);
  void* p = mmap(want, 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED || p != want) {
    if (p != MAP_FAILED) munmap(p, 4096);
    Warn(
        "fault: cannot map the raw-syscall stub page at FAULT_STUB_PAGE=", env,
        "; the shim leaves the seccomp-covered syscall families to the seccomp "
        "layer\n");
    *failed = true;
    return false;
  }
  memcpy(p, kCode, sizeof(kCode));
  if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0) {
    munmap(p, 4096);
    Warn(
        "fault: cannot make the raw-syscall stub page executable; the shim "
        "leaves the seccomp-covered syscall families to the seccomp layer\n");
    *failed = true;
    return false;
  }
  __builtin___clear_cache(static_cast<char*>(p),
                          static_cast<char*>(p) + sizeof(kCode));
  g_stub = reinterpret_cast<StubFn>(p);
  return true;
#else
  Warn(
      "fault: the raw-syscall stub is only implemented on x86-64; the shim "
      "leaves the seccomp-covered syscall families to the seccomp layer\n");
  *failed = true;
  return false;
#endif
}

}  // namespace fault::shim
