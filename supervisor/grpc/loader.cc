#include "supervisor/grpc/loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fault::grpc_module {
namespace {

constexpr char kFileName[] = "fault-grpc.so";

std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path().parent_path() / "lib" / kFileName).string());
    out.push_back((exe.parent_path() / kFileName).string());
  }
  out.push_back(absl::StrCat("/usr/local/lib/fault/", kFileName));
  out.push_back(absl::StrCat("/usr/lib/fault/", kFileName));
  return out;
}

absl::StatusOr<const Module*> LoadOnce() {
  const char* env = std::getenv("FAULT_GRPC_MODULE");
  std::string path = FindModule();
  if (path.empty()) {
    if (env != nullptr && *env != '\0') {
      return absl::NotFoundError(
          absl::StrCat("FAULT_GRPC_MODULE names ", env, ", which cannot be read"));
    }
    return absl::NotFoundError(absl::StrCat(
        "the gRPC module ", kFileName, " is not installed (looked in ",
        absl::StrJoin(Candidates(), ", "), "; set FAULT_GRPC_MODULE to its path)"));
  }
  // RTLD_LOCAL: the module's copies of protobuf and abseil stay its own.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load the gRPC module ", path, ": ", why ? why : "unknown error"));
  }
  auto entry = reinterpret_cast<EntryPoint>(dlsym(handle, kEntryPointName));
  if (entry == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not fault's gRPC module (no ", kEntryPointName, ")"));
  }
  const Module* module = entry();
  if (module == nullptr || module->abi_version != kAbiVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the gRPC module ", path, " was built for another version of fault (interface ",
        module ? module->abi_version : 0, ", this fault needs ", kAbiVersion,
        "); reinstall both from one build"));
  }
  return module;
}

}  // namespace

std::string FindModule() {
  if (const char* env = std::getenv("FAULT_GRPC_MODULE"); env != nullptr && *env != '\0') {
    return access(env, R_OK) == 0 ? std::string(env) : std::string();
  }
  std::error_code ec;
  for (const std::string& c : Candidates()) {
    if (access(c.c_str(), R_OK) == 0) return std::filesystem::weakly_canonical(c, ec).string();
  }
  return "";
}

absl::StatusOr<const Module*> Load() {
  static std::once_flag once;
  static absl::StatusOr<const Module*>* result = nullptr;
  std::call_once(once, [] { result = new absl::StatusOr<const Module*>(LoadOnce()); });
  return *result;
}

}  // namespace fault::grpc_module
