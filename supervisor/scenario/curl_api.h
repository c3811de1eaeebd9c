// libcurl, loaded with dlopen when a scenario runs.
//
// Linking libcurl into `fault` costs every start about 4 ms (it pulls in
// some thirty shared libraries: TLS, HTTP/2, SSH, LDAP, Kerberos, ...), and
// `fault exec` starts around every test binary. So `fault` only includes
// <curl/curl.h> for its types and loads libcurl.so.4 (Debian's
// libcurl4-openssl-dev names it) the first time `fault scenario run` needs
// it.
//
//   absl::StatusOr<const CurlApi*> curl = LoadCurl();
//   CURLM* m = (*curl)->multi_init();
//
// Thread-safe: LoadCurl loads once.
#ifndef FAULT_SUPERVISOR_SCENARIO_CURL_API_H_
#define FAULT_SUPERVISOR_SCENARIO_CURL_API_H_

#include <curl/curl.h>

#include "absl/status/statusor.h"

namespace fault::scenario {

struct CurlApi {
  CURLcode (*global_init)(long flags);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
  CURLM* (*multi_init)();
  CURLMcode (*multi_setopt)(CURLM*, CURLMoption, ...);
  CURLMcode (*multi_add_handle)(CURLM*, CURL*);
  CURLMcode (*multi_remove_handle)(CURLM*, CURL*);
  CURLMcode (*multi_perform)(CURLM*, int*);
  CURLMcode (*multi_poll)(CURLM*, curl_waitfd*, unsigned int, int, int*);
  CURLMsg* (*multi_info_read)(CURLM*, int*);
  CURLMcode (*multi_cleanup)(CURLM*);
  char* (*version)();
};

// Loads libcurl once ($FAULT_LIBCURL names another file); the error says
// which file and why, and which package provides it.
absl::StatusOr<const CurlApi*> LoadCurl();

}  // namespace fault::scenario

#endif  // FAULT_SUPERVISOR_SCENARIO_CURL_API_H_
