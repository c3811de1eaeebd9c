#include "supervisor/scenario/curl_api.h"

#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fault::scenario {
namespace {

absl::StatusOr<const CurlApi*> LoadOnce() {
  const char* env = std::getenv("FAULT_LIBCURL");
  const std::string path = env != nullptr && *env != '\0' ? env : "libcurl.so.4";
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* why = dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load ", path, " (", why ? why : "unknown error",
                     "); scenarios need libcurl (Debian: libcurl4)"));
  }
  auto api = std::make_unique<CurlApi>();
  bool ok = true;
  std::string missing;
  auto get = [&](auto* fn, const char* name) {
    void* s = dlsym(h, name);
    if (s == nullptr) {
      ok = false;
      missing = name;
    }
    *fn = reinterpret_cast<std::remove_reference_t<decltype(*fn)>>(s);
  };
  get(&api->global_init, "curl_global_init");
  get(&api->easy_init, "curl_easy_init");
  get(&api->easy_setopt, "curl_easy_setopt");
  get(&api->easy_getinfo, "curl_easy_getinfo");
  get(&api->easy_cleanup, "curl_easy_cleanup");
  get(&api->easy_strerror, "curl_easy_strerror");
  get(&api->slist_append, "curl_slist_append");
  get(&api->slist_free_all, "curl_slist_free_all");
  get(&api->multi_init, "curl_multi_init");
  get(&api->multi_setopt, "curl_multi_setopt");
  get(&api->multi_add_handle, "curl_multi_add_handle");
  get(&api->multi_remove_handle, "curl_multi_remove_handle");
  get(&api->multi_perform, "curl_multi_perform");
  get(&api->multi_poll, "curl_multi_poll");
  get(&api->multi_info_read, "curl_multi_info_read");
  get(&api->multi_cleanup, "curl_multi_cleanup");
  get(&api->version, "curl_version");
  if (!ok) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has no ", missing, ": libcurl 7.66 or later is needed (curl_multi_poll)"));
  }
  if (api->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return absl::FailedPreconditionError(absl::StrCat(path, ": curl_global_init failed"));
  return api.release();  // lives as long as the process
}

}  // namespace

absl::StatusOr<const CurlApi*> LoadCurl() {
  static std::once_flag once;
  static absl::StatusOr<const CurlApi*>* result = nullptr;
  std::call_once(once, [] { result = new absl::StatusOr<const CurlApi*>(LoadOnce()); });
  return *result;
}

}  // namespace fault::scenario
