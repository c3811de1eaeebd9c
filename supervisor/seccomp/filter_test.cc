#include "supervisor/seccomp/filter.h"

#include <sys/syscall.h>

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "supervisor/seccomp/bpf_eval.h"
#include "supervisor/seccomp/families.h"

namespace fault::seccomp {
namespace {

constexpr uint32_t kX86 = static_cast<uint32_t>(Arch::kX86_64);
constexpr uint32_t kI386 = 0x40000003;  // AUDIT_ARCH_I386
constexpr uint64_t kStub = 0x7f0000100000ULL;

// x86_64 syscall numbers, spelled out so the tests do not depend on the
// build machine.
constexpr int kRead = 0, kWrite = 1, kOpen = 2, kClose = 3, kFsync = 74,
              kGetpid = 39, kConnect = 42, kSendmsg = 46, kOpenat = 257,
              kMmap = 9;

uint32_t Eval(const CompiledFilter& f, int nr, uint64_t ip = 0x401000,
              std::array<uint64_t, 6> args = {}, uint32_t arch = kX86) {
  FakeSeccompData d;
  d.nr = nr;
  d.arch = arch;
  d.instruction_pointer = ip;
  d.args = args;
  absl::StatusOr<EvalResult> r = EvaluateBpf(f.program, d);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->ret : 0xdeadbeef;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Compares against testdata/<name>.txt; FAULT_UPDATE_GOLDEN=1 rewrites it.
void ExpectGolden(const std::string& name, const std::string& text) {
  const std::string path =
      std::string(FAULT_SECCOMP_TESTDATA) + "/" + name + ".txt";
  if (getenv("FAULT_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << text;
  }
  EXPECT_EQ(ReadFile(path), text)
      << "golden " << path
      << " differs; rerun with FAULT_UPDATE_GOLDEN=1 to update";
}

TEST(FamiliesTest, X86_64NumbersMatchTheKernelAbi) {
  EXPECT_THAT(FamilySyscalls(Family::kWrite, Arch::kX86_64),
              testing::ElementsAre(1, 20, 18, 296, 328));
  EXPECT_THAT(FamilySyscalls(Family::kOpen, Arch::kX86_64),
              testing::ElementsAre(2, 257, 85, 437));
  EXPECT_THAT(FamilySyscalls(Family::kConnect, Arch::kX86_64),
              testing::ElementsAre(42));
  EXPECT_THAT(FamilySyscalls(Family::kFsync, Arch::kX86_64),
              testing::ElementsAre(74));
  EXPECT_THAT(FamilySyscalls(Family::kRename, Arch::kX86_64),
              testing::ElementsAre(82, 264, 316));
  EXPECT_EQ(FamilyOfSyscall(kOpenat, Arch::kX86_64), Family::kOpen);
  EXPECT_EQ(FamilyOfSyscall(kGetpid, Arch::kX86_64), Family::kUnspecified);
}

TEST(FamiliesTest, Aarch64HasNoLegacyPathCalls) {
  // openat = 56, no open/creat on aarch64.
  EXPECT_THAT(FamilySyscalls(Family::kOpen, Arch::kAarch64),
              testing::ElementsAre(56, 437));
  EXPECT_THAT(FamilySyscalls(Family::kWrite, Arch::kAarch64),
              testing::ElementsAre(64, 66, 68, 70, 287));
}

TEST(FamiliesTest, ParseFamilyNamesTheChoices) {
  EXPECT_EQ(*ParseFamily("fsync"), Family::kFsync);
  EXPECT_EQ(ParseFamily("fsnyc").status().message(),
            "unknown syscall family \"fsnyc\" (expected one of open, read, "
            "write, fsync, "
            "fdatasync, connect, accept, send, recv, close, unlink, rename, "
            "mkdir, ftruncate, io_uring)");
  EXPECT_EQ(*ParseFamily("io_uring"), Family::kIoUring);
  EXPECT_EQ(FamilyName(Family::kIoUring), "io_uring");
}

TEST(FamiliesTest, IoUringIsTheRingSetupOnly) {
  EXPECT_THAT(FamilySyscalls(Family::kIoUring, Arch::kX86_64),
              testing::ElementsAre(425));
  EXPECT_THAT(FamilySyscalls(Family::kIoUring, Arch::kAarch64),
              testing::ElementsAre(425));
  EXPECT_EQ(FamilyOfSyscall(425, Arch::kX86_64), Family::kIoUring);
  // io_uring_enter and io_uring_register act on a ring that was set up.
  EXPECT_EQ(FamilyOfSyscall(426, Arch::kX86_64), Family::kUnspecified);
  EXPECT_EQ(FamilyOfSyscall(427, Arch::kX86_64), Family::kUnspecified);
}

TEST(FilterTest, EmptyFilterAllowsEverythingOnNrAlone) {
  absl::StatusOr<CompiledFilter> f = FilterSpec(Arch::kX86_64).Compile();
  ASSERT_TRUE(f.ok()) << f.status();
  for (int nr : {kRead, kWrite, kGetpid, 334, 450}) {
    FakeSeccompData d{.nr = nr, .arch = kX86, .instruction_pointer = kStub + 8};
    absl::StatusOr<EvalResult> r = EvaluateBpf(f->program, d);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->ret, kRetAllow);
    EXPECT_FALSE(r->read_ip);
    EXPECT_FALSE(r->read_args);
  }
  ExpectGolden("empty_x86_64", Disassemble(f->program));
}

TEST(FilterTest, UncoveredSyscallsAllowedRegardlessOfIpAndArgs) {
  absl::StatusOr<CompiledFilter> f =
      FilterSpec(Arch::kX86_64)
          .NotifyFamilies(FamilyBit(Family::kWrite) |
                          FamilyBit(Family::kFsync) |
                          FamilyBit(Family::kConnect))
          .AllowFromStubPage(kStub)
          .Compile();
  ASSERT_TRUE(f.ok()) << f.status();
  const std::vector<int> covered = f->notified;
  for (int nr = 0; nr < 460; ++nr) {
    if (std::find(covered.begin(), covered.end(), nr) != covered.end())
      continue;
    for (uint64_t ip : {uint64_t{0}, kStub, kStub + 2, kStub + 4095,
                        uint64_t{0x401000}, ~uint64_t{0}}) {
      FakeSeccompData d{.nr = nr,
                        .arch = kX86,
                        .instruction_pointer = ip,
                        .args = {ip, ~ip, 1, 2, 3, 4}};
      absl::StatusOr<EvalResult> r = EvaluateBpf(f->program, d);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->ret, kRetAllow) << "nr " << nr;
      // Decided on nr and arch alone: the kernel's constant-action cache
      // can keep the syscall at native cost.
      ASSERT_FALSE(r->read_ip) << "nr " << nr;
      ASSERT_FALSE(r->read_args) << "nr " << nr;
    }
  }
}

TEST(FilterTest, CoveredSyscallsNotifiedUnlessFromTheStubPage) {
  absl::StatusOr<CompiledFilter> f =
      FilterSpec(Arch::kX86_64)
          .NotifyFamilies(FamilyBit(Family::kWrite) | FamilyBit(Family::kFsync))
          .AllowFromStubPage(kStub)
          .Compile();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(f->notified, testing::ElementsAre(1, 18, 20, 74, 296, 328));
  for (int nr : f->notified) {
    EXPECT_EQ(Eval(*f, nr, 0x401000), kRetUserNotif) << nr;
    EXPECT_EQ(Eval(*f, nr, kStub), kRetAllow) << nr;
    EXPECT_EQ(Eval(*f, nr, kStub + 2), kRetAllow) << nr;  // after `syscall`
    EXPECT_EQ(Eval(*f, nr, kStub + 4095), kRetAllow) << nr;
    EXPECT_EQ(Eval(*f, nr, kStub + 4096), kRetUserNotif) << nr;
    EXPECT_EQ(Eval(*f, nr, kStub - 1), kRetUserNotif) << nr;
    // Same low bits, other high word: not the stub page.
    EXPECT_EQ(Eval(*f, nr, (kStub & 0xffffffffULL) + 2), kRetUserNotif) << nr;
  }
  ExpectGolden("write_fsync_stub_x86_64", Disassemble(f->program));
}

TEST(FilterTest, EvenFromStubNotifiesTheShimsOwnCallsOfThoseSyscalls) {
  absl::StatusOr<CompiledFilter> f =
      FilterSpec(Arch::kX86_64)
          .NotifyFamilies(FamilyBit(Family::kConnect) | FamilyBit(Family::kWrite))
          .AllowFromStubPage(kStub)
          .EvenFromStubFamilies(FamilyBit(Family::kConnect))
          .EvenFromStub(kGetpid)  // not covered: stays allowed
          .Compile();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(Eval(*f, kConnect, 0x401000), kRetUserNotif);
  EXPECT_EQ(Eval(*f, kConnect, kStub + 2), kRetUserNotif);
  EXPECT_EQ(Eval(*f, kWrite, 0x401000), kRetUserNotif);
  EXPECT_EQ(Eval(*f, kWrite, kStub + 2), kRetAllow);
  EXPECT_EQ(Eval(*f, kGetpid, kStub + 2), kRetAllow);
  EXPECT_EQ(Eval(*f, kGetpid, 0x401000), kRetAllow);
  EXPECT_THAT(f->notified, testing::Not(testing::Contains(kGetpid)));
}

TEST(FilterTest, WithoutStubPageEveryCoveredCallIsNotified) {
  absl::StatusOr<CompiledFilter> f =
      FilterSpec(Arch::kX86_64).NotifyFamily(Family::kConnect).Compile();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Eval(*f, kConnect, kStub + 2), kRetUserNotif);
  EXPECT_EQ(Eval(*f, kConnect, 0), kRetUserNotif);
  ExpectGolden("connect_x86_64", Disassemble(f->program));
}

TEST(FilterTest, WrongArchAndX32AreKilled) {
  absl::StatusOr<CompiledFilter> f =
      FilterSpec(Arch::kX86_64).NotifyFamily(Family::kWrite).Compile();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Eval(*f, kGetpid, 0, {}, kI386), kRetKillProcess);
  EXPECT_EQ(Eval(*f, kWrite, 0, {}, static_cast<uint32_t>(Arch::kAarch64)),
            kRetKillProcess);
  EXPECT_EQ(Eval(*f, 0x40000000 | kGetpid), kRetKillProcess);  // x32 ABI
  EXPECT_EQ(Eval(*f, 0x40000000 | kWrite), kRetKillProcess);
}

TEST(FilterTest, WrongArchActionIsConfigurable) {
  absl::StatusOr<CompiledFilter> f = FilterSpec(Arch::kX86_64)
                                         .NotifyFamily(Family::kWrite)
                                         .OnWrongArch(kRetErrno | 38)
                                         .Compile();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Eval(*f, kGetpid, 0, {}, kI386), kRetErrno | 38);
  EXPECT_EQ(RetName(kRetErrno | 38), "ERRNO(38)");
}

TEST(FilterTest, Aarch64HasNoX32Check) {
  absl::StatusOr<CompiledFilter> f = FilterSpec(Arch::kAarch64)
                                         .NotifyFamily(Family::kFsync)
                                         .AllowFromStubPage(kStub)
                                         .Compile();
  ASSERT_TRUE(f.ok());
  const uint32_t arm = static_cast<uint32_t>(Arch::kAarch64);
  EXPECT_EQ(Eval(*f, 82, 0x1000, {}, arm), kRetUserNotif);  // fsync on aarch64
  EXPECT_EQ(Eval(*f, 82, kStub + 4, {}, arm), kRetAllow);
  EXPECT_EQ(Eval(*f, 74, 0x1000, {}, arm), kRetAllow);
  EXPECT_EQ(Eval(*f, 82, 0x1000, {}, kX86), kRetKillProcess);
  ExpectGolden("fsync_stub_aarch64", Disassemble(f->program));
}

TEST(FilterTest, ArgumentConditions) {
  // Notify sendmsg except on fd 7 (the listener hand-off socket), and
  // write only on fd 1.
  absl::StatusOr<CompiledFilter> f =
      FilterSpec(Arch::kX86_64)
          .NotifyIf(kSendmsg, ArgMatch{.index = 0,
                                       .mask = 0xffffffff,
                                       .value = 7,
                                       .not_equal = true})
          .NotifyIf(kWrite, ArgMatch{.index = 0, .value = 1})
          .AllowFromStubPage(kStub)
          .Compile();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(Eval(*f, kSendmsg, 0x401000, {7}), kRetAllow);
  EXPECT_EQ(Eval(*f, kSendmsg, 0x401000, {0xffffffff00000007ULL}),
            kRetAllow);  // int fd
  EXPECT_EQ(Eval(*f, kSendmsg, 0x401000, {8}), kRetUserNotif);
  EXPECT_EQ(Eval(*f, kSendmsg, kStub + 2, {8}), kRetAllow);
  EXPECT_EQ(Eval(*f, kWrite, 0x401000, {1}), kRetUserNotif);
  EXPECT_EQ(Eval(*f, kWrite, 0x401000, {2}), kRetAllow);
  EXPECT_EQ(Eval(*f, kWrite, 0x401000, {0x100000001ULL}),
            kRetAllow);  // high word differs
  ExpectGolden("arg_conditions_x86_64", Disassemble(f->program));
}

TEST(FilterTest, NotifyAfterNotifyIfDropsConditions) {
  FilterSpec spec(Arch::kX86_64);
  spec.NotifyIf(kClose, ArgMatch{.index = 0, .value = 3}).Notify(kClose);
  absl::StatusOr<CompiledFilter> f = spec.Compile();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Eval(*f, kClose, 0x401000, {4}), kRetUserNotif);
}

TEST(FilterTest, ErrorsAreStickyAndNamed) {
  EXPECT_EQ(FilterSpec(Arch::kX86_64)
                .AllowFromStubPage(kStub + 12)
                .Compile()
                .status()
                .message(),
            "stub page 0x7f000010000c is not aligned to 4096 bytes");
  EXPECT_EQ(FilterSpec(Arch::kX86_64)
                .NotifyIf(kWrite, ArgMatch{.index = 6})
                .Notify(kRead)
                .Compile()
                .status()
                .message(),
            "argument index 6 for syscall 1 is out of range 0..5");
  EXPECT_EQ(FilterSpec(Arch::kX86_64)
                .NotifyFamilies(uint64_t{1} << 20)
                .Compile()
                .status()
                .message(),
            "families mask 0x100000 has bits outside families 1..15");
}

TEST(FilterTest, IoUringNotifiesTheRingSetupOnly) {
  absl::StatusOr<CompiledFilter> f =
      FilterSpec(Arch::kX86_64)
          .NotifyFamilies(FamilyBit(Family::kIoUring))
          .AllowFromStubPage(kStub)
          .Compile();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(f->notified, testing::ElementsAre(425));
  EXPECT_EQ(Eval(*f, 425, 0x401000, {8, 0x7ffc0000}), kRetUserNotif);
  EXPECT_EQ(Eval(*f, 426), kRetAllow);  // io_uring_enter
  EXPECT_EQ(Eval(*f, 427), kRetAllow);  // io_uring_register
  EXPECT_EQ(Eval(*f, kConnect), kRetAllow);
  ExpectGolden("io_uring_x86_64", Disassemble(f->program));
}

TEST(FilterTest, EveryFamilyCompilesAndStaysSmall) {
  absl::StatusOr<CompiledFilter> f = FilterSpec(Arch::kX86_64)
                                         .NotifyFamilies(0xfffe)
                                         .AllowFromStubPage(kStub)
                                         .Compile();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->notified.size(), 35u);
  // 6 (arch, x32) + 2 per syscall + ret ALLOW + 7 (stub page tail).
  EXPECT_EQ(f->program.size(), 6u + 2 * 35 + 1 + 7);
  EXPECT_EQ(Eval(*f, kMmap), kRetAllow);
  EXPECT_EQ(Eval(*f, kOpen), kRetUserNotif);
  EXPECT_EQ(Eval(*f, kOpenat, kStub + 2), kRetAllow);
}

TEST(BpfEvalTest, RejectsWhatTheKernelWouldRefuse) {
  std::vector<sock_filter> off_end = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)};
  EXPECT_EQ(EvaluateBpf(off_end, {}).status().message(),
            "instruction 1: ran past the end of the program");
  std::vector<sock_filter> bad_load = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64),
                                       BPF_STMT(BPF_RET | BPF_K, kRetAllow)};
  EXPECT_EQ(EvaluateBpf(bad_load, {}).status().message(),
            "instruction 0: load outside seccomp_data");
  std::vector<sock_filter> div0 = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0),
                                   BPF_STMT(BPF_RET | BPF_K, kRetAllow)};
  EXPECT_EQ(EvaluateBpf(div0, {}).status().message(),
            "instruction 0: division by zero");
  std::vector<sock_filter> jump_out = {
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0),
      BPF_STMT(BPF_RET | BPF_K, kRetAllow)};
  EXPECT_EQ(EvaluateBpf(jump_out, {}).status().message(),
            "instruction 0: jump past the end");
}

TEST(BpfEvalTest, ScratchMemoryAndAlu) {
  std::vector<sock_filter> p = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),   // a = nr
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 5),  // a += 5
      BPF_STMT(BPF_ST, 3),                     // M[3] = a
      BPF_STMT(BPF_LDX | BPF_MEM, 3),          // x = M[3]
      BPF_STMT(BPF_MISC | BPF_TXA, 0),         // a = x
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  FakeSeccompData d{.nr = 37};
  EXPECT_EQ(EvaluateBpf(p, d)->ret, 42u);
}

}  // namespace
}  // namespace fault::seccomp
