// Where fault finds its own files at run time.
#ifndef FAULT_SUPERVISOR_CLI_PATHS_H_
#define FAULT_SUPERVISOR_CLI_PATHS_H_

#include <string>

namespace fault::cli {

// The preload shim to use: $FAULT_SHIM when set, else libfault_shim.so in
// ../lib next to the running binary (the build tree and `make install`
// layouts), else the installed copies under /usr/local/lib and /usr/lib.
// Returns "" when none exists.
std::string FindShimLibrary();

}  // namespace fault::cli

#endif  // FAULT_SUPERVISOR_CLI_PATHS_H_
