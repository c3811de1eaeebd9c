#include "supervisor/cli/paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>
#include <system_error>

namespace fault::cli {

std::string FindShimLibrary() {
  if (const char* env = std::getenv("FAULT_SHIM"); env != nullptr && *env != '\0') {
    return access(env, R_OK) == 0 ? std::string(env) : std::string();
  }
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::filesystem::path> candidates;
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path() / "lib" / "libfault_shim.so");
    candidates.push_back(exe.parent_path() / "libfault_shim.so");
  }
  candidates.push_back("/usr/local/lib/fault/libfault_shim.so");
  candidates.push_back("/usr/lib/fault/libfault_shim.so");
  for (const auto& c : candidates) {
    if (access(c.c_str(), R_OK) == 0) {
      return std::filesystem::weakly_canonical(c, ec).string();
    }
  }
  return "";
}

}  // namespace fault::cli
