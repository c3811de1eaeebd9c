// The layout shared by the capture programs (capture.bpf.c) and their
// loader (capture.cc): map keys and values, selector bits, counters. Plain
// C with fixed-width fields, so that both compilers lay it out alike.
#ifndef FAULT_EBPF_CAPTURE_ABI_H_
#define FAULT_EBPF_CAPTURE_ABI_H_

#ifdef __cplusplus
#include <cstdint>
typedef uint8_t fault_u8;
typedef uint16_t fault_u16;
typedef uint32_t fault_u32;
typedef uint64_t fault_u64;
#else
typedef __u8 fault_u8;
typedef __u16 fault_u16;
typedef __u32 fault_u32;
typedef __u64 fault_u64;
#endif

#define FAULT_MAX_NAMES 64       // exec names
#define FAULT_MAX_PATTERNS 16    // process names and prefixes together
#define FAULT_MAX_PIDS 65536
#define FAULT_MAX_CGROUPS 64
#define FAULT_MAX_CGROUP_LEVELS 16
#define FAULT_MAX_ORIGINS 65536

// cfg_select bits: a process is captured when any enabled selector matches.
#define FAULT_SEL_COMMS 1u    // process names and prefixes
#define FAULT_SEL_PIDS 4u     // PID trees and exec names (both fill sel_pids)
#define FAULT_SEL_CGROUPS 8u

#define FAULT_AF_INET 2
#define FAULT_AF_INET6 10
#define FAULT_IPPROTO_TCP 6
#define FAULT_IPPROTO_UDP 17

// Per-CPU counters.
#define FAULT_CNT_TCP4 0        // TCP connects redirected, by listener family
#define FAULT_CNT_TCP6 1
#define FAULT_CNT_UDP4 2        // UDP connects and datagrams redirected
#define FAULT_CNT_UDP6 3
#define FAULT_CNT_NO_STORAGE 4  // selected but not redirected: no socket storage
#define FAULT_CNT_MAP_FULL 5    // a map update failed
#define FAULT_COUNTERS 6

// A process name, zero-padded (the kernel's comm is at most 15 bytes).
struct fault_comm {
  char name[16];
};

// A process name or prefix, compared as two 64-bit words: the comm
// matches when (comm & mask) == value, word by word. An exact name masks
// all 16 bytes (its zero padding included); a prefix only its own bytes.
struct fault_pattern {
  fault_u64 mask[2];
  fault_u64 value[2];
};

// Where a captured socket was going. IPv4 destinations are kept as
// ::ffff:a.b.c.d with family FAULT_AF_INET.
struct fault_origin {
  fault_u32 ip6[4];   // network order
  fault_u16 port;     // network order
  fault_u16 family;   // FAULT_AF_INET or FAULT_AF_INET6
  fault_u32 tgid;
  char comm[16];
  fault_u8 proto;     // FAULT_IPPROTO_TCP or FAULT_IPPROTO_UDP
  fault_u8 pad[7];
};

// A client's end as the engine sees it (getpeername or recvfrom): IPv4 in
// mapped form, the port in host order.
struct fault_client_key {
  fault_u32 ip6[4];
  fault_u16 port;
  fault_u8 proto;
  fault_u8 pad;
};

#endif  // FAULT_EBPF_CAPTURE_ABI_H_
