// fault::ScopedPolicy: applies a named policy to the current thread for the
// lifetime of the object, when the program runs under libfault_shim.so.
//
//   {
//     fault::ScopedPolicy p("flaky_db");
//     if (!p.active()) GTEST_SKIP() << "not running under fault";
//     RunQueries();  // only this thread sees flaky_db's faults
//   }
//
// Header-only. The shim's C API (fault/shim.h) is looked up with
// dlsym(RTLD_DEFAULT) at run time, so the program links and runs without
// the shim: then the object does nothing, active() is false and one note is
// written to stderr per process. Thread-compatible: use one object per
// thread; destroy it on the thread that created it.
#ifndef FAULT_SCOPED_POLICY_H_
#define FAULT_SCOPED_POLICY_H_

#include <dlfcn.h>
#include <stdio.h>

namespace fault {

class ScopedPolicy {
 public:
  explicit ScopedPolicy(const char* name) {
    Api& api = GetApi();
    if (api.push == nullptr || api.pop == nullptr) {
      NoteAbsent(name);
      return;
    }
    int rc = api.push(name);
    pushed_ = rc >= 0;
    active_ = rc == 0 && (api.shim_active == nullptr || api.shim_active() == 1);
  }
  ~ScopedPolicy() {
    if (pushed_) GetApi().pop();
  }
  ScopedPolicy(const ScopedPolicy&) = delete;
  ScopedPolicy& operator=(const ScopedPolicy&) = delete;

  // True when the shim is loaded, has a table, and knows the policy.
  bool active() const { return active_; }

 private:
  struct Api {
    int (*push)(const char*);
    void (*pop)();
    int (*shim_active)();
  };
  static Api& GetApi() {
    static Api api = [] {
      Api a;
      a.push = reinterpret_cast<int (*)(const char*)>(
          dlsym(RTLD_DEFAULT, "fault_scope_push"));
      a.pop =
          reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "fault_scope_pop"));
      a.shim_active =
          reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "fault_shim_active"));
      return a;
    }();
    return api;
  }
  static void NoteAbsent(const char* name) {
    static bool noted = [name] {
      fprintf(stderr,
              "fault: ScopedPolicy(\"%s\") has no effect: libfault_shim.so is "
              "not loaded (run the program under `fault exec`)\n",
              name ? name : "");
      return true;
    }();
    (void)noted;
  }

  bool pushed_ = false;
  bool active_ = false;
};

}  // namespace fault

#endif  // FAULT_SCOPED_POLICY_H_
