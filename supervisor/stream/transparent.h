// The socket helpers of the stream engine's transparent listeners
// (transparent.cc), apart from the loop so that they can be tested alone.
// Not a public interface.
#ifndef FAULT_SUPERVISOR_STREAM_TRANSPARENT_H_
#define FAULT_SUPERVISOR_STREAM_TRANSPARENT_H_

#include <sys/socket.h>

#include <cstdint>

namespace fault::stream {

// A non-blocking socket toward an upstream (`type`: SOCK_STREAM or
// SOCK_DGRAM), with SO_MARK `mark` when it is not 0 and the process may
// set it (CAP_NET_ADMIN); unmarked otherwise. -1 with errno when there is
// no socket.
int UpstreamSocket(int family, int type, uint32_t mark);

// A captured destination as the engine connects to it: an AF_INET one as
// is, a v4-mapped AF_INET6 one as AF_INET, another AF_INET6 one with its
// address, port and scope (nothing else, so that one destination always
// gives the same bytes). Sets *len to its length; false for any other
// family.
bool OriginAddress(const sockaddr_storage& origin, sockaddr_storage* out, socklen_t* len);

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_TRANSPARENT_H_
