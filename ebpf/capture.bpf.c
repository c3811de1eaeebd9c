// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
// Stealth capture: cgroup BPF programs, attached once to the cgroup2 root,
// that send the connections and datagrams of selected processes to the
// stream engine's loopback listeners and remember where they were going.
//
//   connect4/6   TCP and connected UDP: remember the destination in the
//                socket's storage and under its cookie, rewrite it to the
//                engine's listener. The engine finds the cookie of the
//                client it accepted through sock_diag. (A sockops program
//                could file it by port instead, but it would run for
//                every event of every TCP socket on the machine: about
//                0.65 us more per connect of processes not selected.)
//   sendmsg4/6   unconnected UDP: the same, per datagram, under
//                {address, port, UDP} (the socket is bound by then).
//   recvmsg4/6   replies from the engine appear to come from the original
//                destination; getpeername4/6 shows the original peer.
//   tp_btf       fork, exec and exit keep the PID-tree and exec-name
//                selections current, synchronously, before the new image runs.
//
// The configuration is read-only data set before load (see capture.cc);
// selections live in hash maps the loader fills. The types are the UAPI's
// (linux/bpf.h); the few kernel structures the tracepoints read are declared
// here with preserve_access_index, so libbpf relocates their offsets (CO-RE)
// against the running kernel's BTF.
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/socket.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ebpf/capture_abi.h"

#ifndef SOCK_STREAM
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// --- configuration (rodata) -------------------------------------------------

const volatile __u32 cfg_self_tgid = 0;     // fault itself: never captured
const volatile __u32 cfg_mark = 0;          // SO_MARK of the engine's upstreams
const volatile __u64 cfg_netns_cookie = 0;  // 0: every network namespace
const volatile __u32 cfg_select = 0;        // FAULT_SEL_* bits
const volatile __u32 cfg_patterns = 0;      // entries used in cfg_pattern
// Process names and prefixes, in read-only data: a few masked compares
// cost a fraction of a hash lookup, and every connect and send on the
// machine that is not selected pays this check.
const volatile struct fault_pattern cfg_pattern[FAULT_MAX_PATTERNS] = {};
const volatile __u32 cfg_cgroup_levels = 0; // deepest ancestor level to check
// The engine's listeners, network byte order; 0: that kind is not captured.
const volatile __u16 cfg_tcp4 = 0;
const volatile __u16 cfg_tcp6 = 0;
const volatile __u16 cfg_udp4 = 0;
const volatile __u16 cfg_udp6 = 0;

// --- maps --------------------------------------------------------------------

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FAULT_MAX_NAMES);
  __type(key, struct fault_comm);
  __type(value, __u8);
} sel_exec_names SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FAULT_MAX_PIDS);
  __type(key, __u32);
  __type(value, __u8);
} sel_pids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FAULT_MAX_CGROUPS);
  __type(key, __u64);
  __type(value, __u8);
} sel_cgroups SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct fault_origin);
} sk_origin SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, FAULT_MAX_ORIGINS);
  __type(key, struct fault_client_key);
  __type(value, struct fault_origin);
} origin_by_client SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, FAULT_MAX_ORIGINS);
  __type(key, __u64);
  __type(value, struct fault_origin);
} origin_by_cookie SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FAULT_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64* v = bpf_map_lookup_elem(&counters, &which);
  if (v) *v += 1;
}

// --- selection ---------------------------------------------------------------

static __always_inline int selected(void) {
  const __u32 sel = cfg_select;
  if (sel & FAULT_SEL_PIDS) {
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (bpf_map_lookup_elem(&sel_pids, &tgid)) return 1;
  }
  if (sel & FAULT_SEL_COMMS) {
    __u64 comm[2] = {};
    bpf_get_current_comm(comm, sizeof(comm));
    for (__u32 k = 0; k < FAULT_MAX_PATTERNS; ++k) {
      if (k >= cfg_patterns) break;
      if ((comm[0] & cfg_pattern[k].mask[0]) == cfg_pattern[k].value[0] &&
          (comm[1] & cfg_pattern[k].mask[1]) == cfg_pattern[k].value[1])
        return 1;
    }
  }
  if (sel & FAULT_SEL_CGROUPS) {
    for (int level = 1; level <= FAULT_MAX_CGROUP_LEVELS; ++level) {
      if (level > (int)cfg_cgroup_levels) break;
      __u64 id = bpf_get_current_ancestor_cgroup_id(level);
      if (id == 0) break;  // deeper than the task's own cgroup
      if (bpf_map_lookup_elem(&sel_cgroups, &id)) return 1;
    }
  }
  return 0;
}

// Whether this socket operation is one to look at at all: right network
// namespace, not fault's own, not an engine upstream.
static __always_inline int eligible(void* ctx, struct bpf_sock* sk) {
  if (cfg_netns_cookie != 0 && bpf_get_netns_cookie(ctx) != cfg_netns_cookie) return 0;
  if ((bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid) return 0;
  if (cfg_mark != 0 && sk && sk->mark == cfg_mark) return 0;
  return 1;
}

static __always_inline void fill_process(struct fault_origin* o) {
  o->tgid = bpf_get_current_pid_tgid() >> 32;
  bpf_get_current_comm(o->comm, sizeof(o->comm));
}

static __always_inline __u32 loopback4(void) { return bpf_htonl(0x7f000001); }

// Remembers in the socket's storage where it was going (an IPv4 address as
// ::ffff:a.b.c.d) and who sent it there. NULL: no storage (counted).
static __always_inline struct fault_origin* remember(struct bpf_sock* sk, __u32 a0, __u32 a1,
                                                     __u32 a2, __u32 a3, __u16 port,
                                                     __u16 family, __u8 proto) {
  struct fault_origin* o = bpf_sk_storage_get(&sk_origin, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!o) {
    count(FAULT_CNT_NO_STORAGE);
    return 0;
  }
  o->ip6[0] = a0;
  o->ip6[1] = a1;
  o->ip6[2] = a2;
  o->ip6[3] = a3;
  o->port = port;
  o->family = family;
  o->proto = proto;
  fill_process(o);
  return o;
}

// Files `o` under the socket's cookie.
static __always_inline void file_by_cookie(struct bpf_sock_addr* ctx, struct fault_origin* o) {
  __u64 cookie = bpf_get_socket_cookie(ctx);
  if (bpf_map_update_elem(&origin_by_cookie, &cookie, o, BPF_ANY) != 0) count(FAULT_CNT_MAP_FULL);
}

// Files `o` under the client's end as the engine will see it.
static __always_inline void file_by_client(struct fault_client_key* key, __u32 sport, __u8 proto,
                                           struct fault_origin* o) {
  key->port = (__u16)sport;
  key->proto = proto;
  if (bpf_map_update_elem(&origin_by_client, key, o, BPF_ANY) != 0) count(FAULT_CNT_MAP_FULL);
}

// Points an IPv6 socket's destination at the engine: [::1]:to, or
// ::ffff:127.0.0.1:to for a v4-mapped destination. One call per program
// (see fault_getpeername6 for why).
static __always_inline void redirect6(struct bpf_sock_addr* ctx, int mapped, __u16 to) {
  ctx->user_ip6[0] = 0;
  ctx->user_ip6[1] = 0;
  ctx->user_ip6[2] = mapped ? bpf_htonl(0xffff) : 0;
  ctx->user_ip6[3] = mapped ? loopback4() : bpf_htonl(1);
  ctx->user_port = to;
}

// Whether an IPv6 destination already is one of the engine's listeners.
static __always_inline int is_engine6(int mapped, __u32 a0, __u32 a1, __u32 a2, __u32 a3,
                                      __u16 port, __u16 p4, __u16 p6) {
  if (mapped) return a3 == loopback4() && port == p4;
  return a0 == 0 && a1 == 0 && a2 == 0 && a3 == bpf_htonl(1) && port == p6;
}

// --- connect -------------------------------------------------------------------

SEC("cgroup/connect4")
int fault_connect4(struct bpf_sock_addr* ctx) {
  const __u32 type = ctx->type;
  const __u32 dst = ctx->user_ip4;
  const __u16 port = (__u16)ctx->user_port;
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return 1;
  // Selection first: it is the cheaper test, and most processes fail it.
  if (!selected() || !eligible(ctx, sk)) return 1;
  __u16 to;
  if (type == SOCK_STREAM) to = cfg_tcp4;
  else if (type == SOCK_DGRAM) to = cfg_udp4;
  else return 1;
  if (to == 0) return 1;
  if (dst == loopback4() && (port == cfg_tcp4 || port == cfg_udp4)) return 1;
  struct fault_origin* o = remember(sk, 0, 0, bpf_htonl(0xffff), dst, port, FAULT_AF_INET,
                                    type == SOCK_STREAM ? FAULT_IPPROTO_TCP : FAULT_IPPROTO_UDP);
  if (!o) return 1;
  // The local port is assigned after this hook: the engine finds the
  // socket by its cookie (sock_diag, given the 4-tuple it sees).
  file_by_cookie(ctx, o);
  count(type == SOCK_DGRAM ? FAULT_CNT_UDP4 : FAULT_CNT_TCP4);
  ctx->user_ip4 = loopback4();
  ctx->user_port = to;
  return 1;
}

SEC("cgroup/connect6")
int fault_connect6(struct bpf_sock_addr* ctx) {
  const __u32 type = ctx->type;
  const __u32 a0 = ctx->user_ip6[0];
  const __u32 a1 = ctx->user_ip6[1];
  const __u32 a2 = ctx->user_ip6[2];
  const __u32 a3 = ctx->user_ip6[3];
  const __u16 port = (__u16)ctx->user_port;
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return 1;
  // Selection first: it is the cheaper test, and most processes fail it.
  if (!selected() || !eligible(ctx, sk)) return 1;
  // ::ffff:a.b.c.d reaches IPv4 through this IPv6 socket: redirect to the
  // IPv4 listener, in mapped form.
  const int mapped = a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff);
  __u16 to;
  if (type == SOCK_STREAM) to = mapped ? cfg_tcp4 : cfg_tcp6;
  else if (type == SOCK_DGRAM) to = mapped ? cfg_udp4 : cfg_udp6;
  else return 1;
  if (to == 0) return 1;
  if (is_engine6(mapped, a0, a1, a2, a3, port, cfg_tcp4, cfg_tcp6) ||
      is_engine6(mapped, a0, a1, a2, a3, port, cfg_udp4, cfg_udp6))
    return 1;
  struct fault_origin* o =
      remember(sk, a0, a1, a2, a3, port, mapped ? FAULT_AF_INET : FAULT_AF_INET6,
               type == SOCK_STREAM ? FAULT_IPPROTO_TCP : FAULT_IPPROTO_UDP);
  if (!o) return 1;
  file_by_cookie(ctx, o);
  count(type == SOCK_DGRAM ? FAULT_CNT_UDP6 : FAULT_CNT_TCP6);
  redirect6(ctx, mapped, to);
  return 1;
}

// --- unconnected UDP -----------------------------------------------------------

SEC("cgroup/sendmsg4")
int fault_sendmsg4(struct bpf_sock_addr* ctx) {
  const __u32 dst = ctx->user_ip4;
  const __u16 port = (__u16)ctx->user_port;
  struct bpf_sock* sk = ctx->sk;
  if (!sk || cfg_udp4 == 0) return 1;
  const __u32 src = sk->src_ip4;
  const __u32 sport = sk->src_port;
  // Selection first: it is the cheaper test, and most processes fail it.
  if (!selected() || !eligible(ctx, sk)) return 1;
  if (dst == loopback4() && port == cfg_udp4) return 1;
  struct fault_origin* o =
      remember(sk, 0, 0, bpf_htonl(0xffff), dst, port, FAULT_AF_INET, FAULT_IPPROTO_UDP);
  if (!o) return 1;
  struct fault_client_key key = {};
  key.ip6[2] = bpf_htonl(0xffff);
  key.ip6[3] = src != 0 ? src : loopback4();
  file_by_client(&key, sport, FAULT_IPPROTO_UDP, o);
  count(FAULT_CNT_UDP4);
  ctx->user_ip4 = loopback4();
  ctx->user_port = cfg_udp4;
  return 1;
}

SEC("cgroup/sendmsg6")
int fault_sendmsg6(struct bpf_sock_addr* ctx) {
  const __u32 a0 = ctx->user_ip6[0];
  const __u32 a1 = ctx->user_ip6[1];
  const __u32 a2 = ctx->user_ip6[2];
  const __u32 a3 = ctx->user_ip6[3];
  const __u16 port = (__u16)ctx->user_port;
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return 1;
  const __u32 s0 = sk->src_ip6[0];
  const __u32 s1 = sk->src_ip6[1];
  const __u32 s2 = sk->src_ip6[2];
  const __u32 s3 = sk->src_ip6[3];
  const __u32 sport = sk->src_port;
  // Selection first: it is the cheaper test, and most processes fail it.
  if (!selected() || !eligible(ctx, sk)) return 1;
  const int mapped = a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff);
  const __u16 to = mapped ? cfg_udp4 : cfg_udp6;
  if (to == 0) return 1;
  if (is_engine6(mapped, a0, a1, a2, a3, port, cfg_udp4, cfg_udp6)) return 1;
  struct fault_origin* o = remember(sk, a0, a1, a2, a3, port,
                                    mapped ? FAULT_AF_INET : FAULT_AF_INET6, FAULT_IPPROTO_UDP);
  if (!o) return 1;
  struct fault_client_key key = {};
  const int unbound = s0 == 0 && s1 == 0 && s2 == 0 && s3 == 0;
  if (mapped) {
    key.ip6[2] = bpf_htonl(0xffff);
    key.ip6[3] = unbound ? loopback4() : s3;
  } else if (unbound) {
    key.ip6[3] = bpf_htonl(1);
  } else {
    key.ip6[0] = s0;
    key.ip6[1] = s1;
    key.ip6[2] = s2;
    key.ip6[3] = s3;
  }
  file_by_client(&key, sport, FAULT_IPPROTO_UDP, o);
  count(FAULT_CNT_UDP6);
  redirect6(ctx, mapped, to);
  return 1;
}

// --- the client sees the original peer -----------------------------------------

// Rewrites the source of a datagram from the engine, or the peer of a
// redirected socket, to the destination the client asked for.
static __always_inline void show_origin4(struct bpf_sock_addr* ctx, __u16 listener) {
  const __u32 ip = ctx->user_ip4;
  const __u16 port = (__u16)ctx->user_port;
  struct bpf_sock* sk = ctx->sk;
  if (!sk || listener == 0) return;
  if (ip != loopback4() || port != listener) return;
  struct fault_origin* o = bpf_sk_storage_get(&sk_origin, sk, 0, 0);
  if (!o || o->family != FAULT_AF_INET) return;
  ctx->user_ip4 = o->ip6[3];
  ctx->user_port = o->port;
}

static __always_inline void show_origin6(struct bpf_sock_addr* ctx, __u16 listener4,
                                         __u16 listener6) {
  const __u32 a0 = ctx->user_ip6[0];
  const __u32 a1 = ctx->user_ip6[1];
  const __u32 a2 = ctx->user_ip6[2];
  const __u32 a3 = ctx->user_ip6[3];
  const __u16 port = (__u16)ctx->user_port;
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return;
  const int from4 = a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff) && a3 == loopback4() &&
                    listener4 != 0 && port == listener4;
  const int from6 = a0 == 0 && a1 == 0 && a2 == 0 && a3 == bpf_htonl(1) && listener6 != 0 &&
                    port == listener6;
  if (!from4 && !from6) return;
  struct fault_origin* o = bpf_sk_storage_get(&sk_origin, sk, 0, 0);
  if (!o) return;
  ctx->user_ip6[0] = o->ip6[0];
  ctx->user_ip6[1] = o->ip6[1];
  ctx->user_ip6[2] = o->ip6[2];
  ctx->user_ip6[3] = o->ip6[3];
  ctx->user_port = o->port;
}

SEC("cgroup/recvmsg4")
int fault_recvmsg4(struct bpf_sock_addr* ctx) {
  show_origin4(ctx, cfg_udp4);
  return 1;
}

SEC("cgroup/recvmsg6")
int fault_recvmsg6(struct bpf_sock_addr* ctx) {
  show_origin6(ctx, cfg_udp4, cfg_udp6);
  return 1;
}

SEC("cgroup/getpeername4")
int fault_getpeername4(struct bpf_sock_addr* ctx) {
  const __u32 type = ctx->type;
  show_origin4(ctx, type == SOCK_STREAM ? cfg_tcp4 : cfg_udp4);
  return 1;
}

SEC("cgroup/getpeername6")
int fault_getpeername6(struct bpf_sock_addr* ctx) {
  const __u32 type = ctx->type;
  // One call: inlined twice, clang would share variable ctx offsets between
  // the copies, which the verifier refuses.
  const __u16 l4 = type == SOCK_STREAM ? cfg_tcp4 : cfg_udp4;
  const __u16 l6 = type == SOCK_STREAM ? cfg_tcp6 : cfg_udp6;
  show_origin6(ctx, l4, l6);
  return 1;
}

// --- process tree and exec names -------------------------------------------------

struct signal_struct {
  struct {
    int counter;
  } live;
} __attribute__((preserve_access_index));

struct task_struct {
  int pid;
  int tgid;
  char comm[16];
  struct signal_struct* signal;
} __attribute__((preserve_access_index));

SEC("tp_btf/sched_process_fork")
int BPF_PROG(fault_fork, struct task_struct* parent, struct task_struct* child) {
  __u32 ptgid = parent->tgid;
  __u32 ctgid = child->tgid;
  if (ptgid == ctgid) return 0;  // a new thread: same process
  if (!bpf_map_lookup_elem(&sel_pids, &ptgid)) return 0;
  __u8 one = 1;
  if (bpf_map_update_elem(&sel_pids, &ctgid, &one, BPF_ANY) != 0) count(FAULT_CNT_MAP_FULL);
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(fault_exec, struct task_struct* p) {
  struct fault_comm comm = {};
  bpf_probe_read_kernel_str(comm.name, sizeof(comm.name), p->comm);
  if (!bpf_map_lookup_elem(&sel_exec_names, &comm)) return 0;
  __u32 tgid = p->tgid;
  __u8 one = 1;
  if (bpf_map_update_elem(&sel_pids, &tgid, &one, BPF_ANY) != 0) count(FAULT_CNT_MAP_FULL);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(fault_exit, struct task_struct* p) {
  // The last thread of the process: its PID may be reused from now on.
  if (p->signal->live.counter != 0) return 0;
  __u32 tgid = p->tgid;
  bpf_map_delete_elem(&sel_pids, &tgid);
  return 0;
}
