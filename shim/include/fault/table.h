/*
 * The shared-memory policy table: the contract between the supervisor (which
 * writes it) and every reader (the preload shim inside the target, the seccomp
 * supervisor's engine).
 *
 * The segment is a memfd holding plain fixed-size records: no pointers, no
 * strings longer than a fixed bound. It starts with a header (magic, layout
 * version, total size), then the configuration, which the supervisor
 * publishes with a seqlock, then the mutable state (per-rule counters and the
 * event ring) that readers update with atomic operations.
 *
 * Readers never lock and never allocate: they copy what they need out of the
 * configuration between two reads of `seq`, and retry when the sequence was
 * odd or changed (a torn read). Writers serialise among themselves.
 *
 * Plain C so that C and C++ code, inside and outside the target, share it.
 * Atomic access uses the GCC/Clang __atomic builtins on the marked fields.
 */
#ifndef FAULT_TABLE_H_
#define FAULT_TABLE_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FAULT_TABLE_MAGIC 0x454c4241544c4146ULL /* "FALTABLE" little-endian */
#define FAULT_TABLE_VERSION 4u /* 2: target pool; 3: stream engine redirects;
                                  4: per-op rules, blackhole direction, http errors */

#define FAULT_MAX_RULES 64           /* policies in one table */
/* Targets of all policies together. They live in one pool in fault_config
 * rather than inside each fault_rule: readers copy whole rules onto their
 * stack on the hot path, so a rule must stay small however many targets a
 * policy lists. */
#define FAULT_MAX_TARGETS_TOTAL 1024
#define FAULT_MAX_SYSCALL_RULES 128  /* syscall-level faults, all policies */
#define FAULT_MAX_INTERVALS 8        /* schedule intervals per policy */
#define FAULT_MAX_PARTITIONS 8
#define FAULT_NAME_MAX 64            /* policy names, hostnames, sni, errno names */
#define FAULT_GLOB_MAX 256           /* path globs */
#define FAULT_PATTERN_MAX 64         /* payload mutation pattern/data */
#define FAULT_EVENT_RING_SIZE 8192   /* events, a power of two */
#define FAULT_ENGINE_NAME_MAX 48     /* abstract AF_UNIX name of the stream engine */

/* Environment variables the supervisor passes to the target. */
#define FAULT_ENV_TABLE "FAULT_TABLE"           /* path that opens the memfd: /proc/PID/fd/N */
#define FAULT_ENV_TABLE_FD "FAULT_TABLE_FD"     /* fallback: decimal fd of an inherited memfd */
#define FAULT_ENV_STUB_PAGE "FAULT_STUB_PAGE"   /* hex address for the raw-syscall stub page */

/* fault_target.kind */
enum fault_target_kind {
  FAULT_TARGET_ANY = 0,      /* any address (port and protocol may still apply) */
  FAULT_TARGET_CIDR = 1,     /* addr/prefix */
  FAULT_TARGET_HOSTNAME = 2, /* name from getaddrinfo answers */
  FAULT_TARGET_SNI = 3,      /* name from the TLS ClientHello */
};

/* fault_target.protocol: same numbers as fault.v1.Protocol */
enum fault_protocol {
  FAULT_PROTO_ANY = 0,
  FAULT_PROTO_TCP = 1,
  FAULT_PROTO_UDP = 2,
};

struct fault_target {
  uint8_t kind;      /* fault_target_kind */
  uint8_t protocol;  /* fault_protocol */
  uint8_t family;    /* AF_INET or AF_INET6 for CIDR, else 0 */
  uint8_t prefix_len;
  uint8_t addr[16];  /* network byte order; IPv4 in the first 4 bytes */
  uint16_t port_min; /* host byte order; 0..0: any */
  uint16_t port_max;
  int32_t priority;
  char name[FAULT_NAME_MAX]; /* hostname or sni pattern, "*.x" allowed */
};

/* Latency distributions: same numbers as fault.v1.Latency.Distribution. */
enum fault_distribution {
  FAULT_DIST_NONE = 0,
  FAULT_DIST_FIXED = 1,
  FAULT_DIST_UNIFORM = 2,
  FAULT_DIST_NORMAL = 3,
  FAULT_DIST_PARETO = 4,
  FAULT_DIST_PARETO_NORMAL = 5,
};

/* One direction of a link, already merged (policy-wide link + direction
 * override) by the compiler. */
struct fault_link {
  uint8_t distribution;  /* fault_distribution */
  uint8_t pad[3];
  uint32_t burst_loss;   /* packets lost in a row once a loss starts */
  int64_t fixed_ns, min_ns, max_ns, mean_ns, stddev_ns, scale_ns;
  double shape;
  int64_t jitter_ns;
  uint32_t loss_ppm;
  uint32_t ge_p_good_to_bad_ppm, ge_p_bad_to_good_ppm, ge_loss_good_ppm,
      ge_loss_bad_ppm; /* Gilbert-Elliott; all 0: off */
  uint32_t reorder_ppm, reorder_window;
  uint32_t duplicate_ppm;
  int64_t reorder_max_delay_ns;
  uint64_t rate_bps;     /* 0: unlimited */
  uint64_t rate_burst_bytes;
};

/* Schedule kinds: same numbers as fault.v1.Schedule.Kind (0 and 1: always). */
struct fault_schedule {
  uint32_t kind;
  uint32_t n_intervals;
  int64_t every_ns, duration_ns, ramp_ns, on_ns, off_ns;
  int64_t interval_start_ns[FAULT_MAX_INTERVALS]; /* resolved to absolute ns */
  int64_t interval_duration_ns[FAULT_MAX_INTERVALS];
};

/* fault_rule.flags */
#define FAULT_RULE_ACTIVE 0x1u      /* applies process-wide */
#define FAULT_RULE_HAS_SEED 0x2u
#define FAULT_RULE_BLACKHOLE 0x4u
#define FAULT_RULE_PER_OP 0x8u   /* one decision per read, not per flight */
#define FAULT_RULE_PROTOCOL 0x10u /* protocol faults: the stream engine holds them */

/* One policy, compiled. Network and DNS effects live here; syscall-level
 * faults are separate records pointing back at their rule. */
struct fault_rule {
  char name[FAULT_NAME_MAX];
  uint32_t flags;
  uint32_t n_targets;    /* 0: every destination */
  uint32_t first_target; /* index into fault_config.targets[] */
  uint32_t pad0;
  uint64_t seed;
  struct fault_schedule schedule;
  struct fault_link uplink;
  struct fault_link downlink;
  int64_t timeout_connect_ns, timeout_recv_ns;
  int32_t conn_error_errno; /* 0: none */
  uint32_t conn_error_ppm;
  uint64_t half_open_after_bytes;
  int64_t half_open_after_ns;
  int32_t half_open_errno; /* 0: stall */
  /* session budget; all limits 0: none */
  uint32_t budget_action;  /* fault.v1.SessionBudget.Action */
  int32_t budget_errno;
  uint64_t budget_max_tx, budget_max_rx, budget_max_ops;
  int64_t budget_max_duration_ns, budget_timeout_ns;
  /* payload mutation; kind 0: none */
  uint32_t mutation_kind, mutation_ppm, mutation_every_n, mutation_direction;
  uint32_t mutation_dry_run, mutation_count;
  uint64_t mutation_min_size, mutation_max_size, mutation_truncate_to,
      mutation_offset;
  uint32_t mutation_pattern_len, mutation_data_len;
  uint8_t mutation_pattern[FAULT_PATTERN_MAX];
  uint8_t mutation_data[FAULT_PATTERN_MAX];
  /* DNS */
  int64_t dns_delay_ns;
  uint32_t dns_timeout_ppm, dns_nxdomain_ppm;
  /* FAULT_RULE_BLACKHOLE: which directions (fault.v1.Direction; 0, 1: both) */
  uint32_t blackhole_direction;
  /* HTTP error responses (the proxy's forward path); status 0: none */
  uint32_t http_status;
  uint32_t http_error_ppm;
  uint32_t pad1;
};

/* Syscall families and actions: same numbers as fault.v1.SyscallFault. */
struct fault_syscall_rule {
  uint16_t rule;     /* index into rules[] (the owning policy) */
  uint8_t family;
  uint8_t action;    /* 1 deny, 2 delay */
  int32_t err;       /* errno for deny */
  int64_t delay_ns;
  uint32_t probability_ppm;
  uint32_t pad;
  uint64_t when_first, when_last, when_step;
  char path_glob[FAULT_GLOB_MAX]; /* empty: any path */
};

/* A connection handed to the stream engine (supervisor/stream). The shim
 * (or the seccomp supervisor) binds the target's socket to a loopback port P
 * and fills redirects[family][P] before it connects that socket to the
 * engine; the engine, accepting a connection from port P, claims the slot
 * and learns where the connection really goes. `state` is also a futex word
 * (shared, not private): a blocking connect waits on it until the engine has
 * connected the far end. */
enum fault_redirect_state {
  FAULT_REDIRECT_FREE = 0,
  FAULT_REDIRECT_ARMED = 1,       /* written by the target side */
  FAULT_REDIRECT_CLAIMED = 2,     /* the engine accepted it */
  FAULT_REDIRECT_OPEN = 3,        /* far end connected, handshake emulated */
  FAULT_REDIRECT_FAILED = 4,      /* `err` says why (connect or later) */
  FAULT_REDIRECT_CONNECTED = 5,   /* far end connected, handshake time left */
};

enum fault_redirect_kind {
  FAULT_REDIRECT_CONNECT = 1,  /* the engine connects to addr:port */
  FAULT_REDIRECT_ACCEPTED = 2, /* the far end is an accepted socket, passed to
                                  the engine over its control socket */
};

struct fault_redirect {
  uint32_t state;        /* fault_redirect_state (futex word) */
  int32_t err;           /* errno the connection ended with, 0: none */
  uint16_t rule;         /* rules[] index the target side picked */
  uint8_t kind;          /* fault_redirect_kind */
  uint8_t family;        /* AF_INET / AF_INET6 of addr */
  uint16_t port;         /* far end's port, host byte order */
  uint16_t pad;
  int32_t pid;           /* the target process */
  uint32_t pad2;
  int64_t handshake_ns;  /* connect: emulated handshake time */
  uint8_t addr[16];      /* far end's address (network byte order) */
};

#define FAULT_REDIRECT_PORTS 65536

/* The payload of the datagram that hands an accepted socket (SCM_RIGHTS) to
 * the stream engine's control socket. */
struct fault_handoff {
  uint16_t port;         /* loopback port of the target's replacement socket */
  uint8_t family_index;  /* 0: IPv4 (redirects[0]), 1: IPv6 */
  uint8_t pad;
  int32_t pid;
};

struct fault_partition {
  char a[FAULT_NAME_MAX];
  char b[FAULT_NAME_MAX];
  uint16_t rule;
};

/* The configuration, published under the seqlock. */
struct fault_config {
  uint64_t generation;      /* bumped by every publish */
  uint64_t families_mask;   /* syscall families the seccomp filter was built with */
  uint32_t n_rules;
  uint32_t n_syscall_rules;
  uint32_t n_partitions;
  uint32_t n_targets;       /* entries of targets[] in use, all rules */
  struct fault_rule rules[FAULT_MAX_RULES];
  struct fault_syscall_rule syscall_rules[FAULT_MAX_SYSCALL_RULES];
  struct fault_partition partitions[FAULT_MAX_PARTITIONS];
  /* Rule i owns targets[rules[i].first_target .. + rules[i].n_targets). */
  struct fault_target targets[FAULT_MAX_TARGETS_TOTAL];
};

/* Per-rule statistics and decision counters; updated with atomics by every
 * reader, read by the supervisor. Indexed like rules[] / syscall_rules[]. */
struct fault_counters {
  uint64_t rule_matched[FAULT_MAX_RULES];
  uint64_t rule_fired[FAULT_MAX_RULES];
  uint64_t rule_decisions[FAULT_MAX_RULES];  /* counter-based RNG stream position */
  uint64_t syscall_matched[FAULT_MAX_SYSCALL_RULES];
  uint64_t syscall_fired[FAULT_MAX_SYSCALL_RULES];
};

/* One injected fault. Fixed size; strings are bounded and NUL-terminated. */
struct fault_event {
  uint64_t seq;         /* written last (release): slot is complete when seq == index + 1 */
  int64_t time_ns;      /* CLOCK_REALTIME */
  int32_t pid, tid;
  uint16_t rule;        /* index into rules[] */
  uint16_t syscall_rule;/* index into syscall_rules[] + 1, or 0 */
  uint16_t op;          /* fault_op */
  uint16_t effect;      /* fault_effect */
  int64_t value;        /* sampled delay in ns, errno, bytes, ... per effect */
  uint8_t layer;        /* 1 shim, 2 seccomp, 3 stream engine */
  uint8_t pad[3];
  uint32_t generation;  /* low 32 bits of config.generation whose rules[] `rule`
                           indexes; 0: unknown (the current one) */
  char target[FAULT_NAME_MAX]; /* "127.0.0.1:8080", a hostname or a path */
};

enum fault_op {
  FAULT_OP_NONE = 0, FAULT_OP_CONNECT, FAULT_OP_ACCEPT, FAULT_OP_SEND,
  FAULT_OP_RECV, FAULT_OP_READ, FAULT_OP_WRITE, FAULT_OP_CLOSE, FAULT_OP_FSYNC,
  FAULT_OP_FDATASYNC, FAULT_OP_OPEN, FAULT_OP_DNS, FAULT_OP_UNLINK,
  FAULT_OP_RENAME, FAULT_OP_MKDIR, FAULT_OP_FTRUNCATE, FAULT_OP_IO_URING,
  FAULT_OP_COUNT
};

enum fault_effect {
  FAULT_EFFECT_NONE = 0, FAULT_EFFECT_LATENCY, FAULT_EFFECT_LOSS,
  FAULT_EFFECT_RATE, FAULT_EFFECT_TIMEOUT, FAULT_EFFECT_CONNECTION_ERROR,
  FAULT_EFFECT_HALF_OPEN, FAULT_EFFECT_BLACKHOLE, FAULT_EFFECT_REORDER,
  FAULT_EFFECT_DUPLICATE, FAULT_EFFECT_BUDGET, FAULT_EFFECT_MUTATION,
  FAULT_EFFECT_DNS_DELAY, FAULT_EFFECT_DNS_TIMEOUT, FAULT_EFFECT_DNS_NXDOMAIN,
  FAULT_EFFECT_DENY, FAULT_EFFECT_DELAY, FAULT_EFFECT_PARTITION,
  FAULT_EFFECT_HTTP_ERROR,
  FAULT_EFFECT_REDIS_ERROR, FAULT_EFFECT_POSTGRES_ERROR, FAULT_EFFECT_PROTOCOL_DROP,
  FAULT_EFFECT_COUNT
};

/* Multi-producer ring: a producer claims a slot with fetch_add on `head`; if
 * head - tail would exceed the size it counts a drop instead and never
 * blocks. The supervisor is the only consumer. */
struct fault_event_ring {
  uint64_t head;
  uint64_t tail;
  uint64_t drops;
  uint64_t pad[5];
  struct fault_event events[FAULT_EVENT_RING_SIZE];
};

struct fault_table {
  uint64_t magic;       /* FAULT_TABLE_MAGIC */
  uint32_t version;     /* FAULT_TABLE_VERSION */
  uint32_t size;        /* sizeof(struct fault_table) */
  uint64_t seq;         /* seqlock: odd while the writer is publishing */
  int64_t start_ns;     /* CLOCK_MONOTONIC at the start of the run (schedules) */
  uint64_t stub_page;   /* address reserved for the raw-syscall stub, 0: none */
  uint32_t supervisor_pid;
  uint32_t warned;      /* effects some shim of the run has warned about (atomic or):
                           one warning per run, not per process */
  uint32_t attached;    /* processes whose shim mapped this table (atomic add) */
  uint32_t attached_pad;
  /* The stream engine of the run: loopback ports of its IPv4 and IPv6
   * listeners (0: none) and its control socket's abstract name. Written
   * once, before the first configuration with network rules is published
   * (at start, or by the reload that brings the first); constant from then
   * on. */
  uint16_t engine_port4, engine_port6;
  uint32_t engine_pad;
  char engine_control[FAULT_ENGINE_NAME_MAX];
  struct fault_config config;
  struct fault_counters counters;
  struct fault_event_ring ring;
  /* Local ports of loopback TCP ([0]) and UDP ([1]) sockets through which
   * a shimmed process of this run sends (bit p % 64 of word p / 64; set and
   * cleared with atomic or/and by the shims). A receiver skips its downlink
   * link effects for traffic from such a port: the sender's uplink already
   * applied them, so loopback traffic between shimmed programs crosses the
   * emulated link once. */
  uint64_t loopback_ports[2][1024];
  /* Local ports of the stream engine's own connections to far ends (bit as
   * above). The engine applies both directions' effects to them, so a
   * shimmed process at the far end leaves them alone. */
  uint64_t engine_ports[1024];
  /* [0] IPv4, [1] IPv6 loopback ports; see struct fault_redirect. */
  struct fault_redirect redirects[2][FAULT_REDIRECT_PORTS];
};

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* FAULT_TABLE_H_ */
