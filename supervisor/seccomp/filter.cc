#include "supervisor/seccomp/filter.h"

#include <linux/filter.h>

#include <cstddef>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fault::seccomp {
namespace {

// struct seccomp_data offsets (little-endian: the low word of a 64-bit field
// comes first).
constexpr uint32_t kOffNr = 0;
constexpr uint32_t kOffArch = 4;
constexpr uint32_t kOffIpLo = 8;
constexpr uint32_t kOffIpHi = 12;
constexpr uint32_t ArgLo(int i) { return 16 + 8 * i; }
constexpr uint32_t ArgHi(int i) { return 16 + 8 * i + 4; }

constexpr uint32_t kX32SyscallBit = 0x40000000U;
constexpr size_t kMaxInstructions = 4096;  // BPF_MAXINSNS

// A tiny assembler: jumps name labels; labels are resolved once all code is
// emitted. Conditional jumps must be forward and within 255 instructions
// (classic BPF); unconditional ones use the 32-bit `ja` offset.
class Assembler {
 public:
  int NewLabel() {
    labels_.push_back(-1);
    return static_cast<int>(labels_.size()) - 1;
  }
  void Bind(int label) { labels_[label] = static_cast<int>(code_.size()); }
  void Stmt(uint16_t code, uint32_t k) { Emit(code, k, -1, -1, -1); }
  // Conditional: jt/jf are labels, or -1 for "the next instruction".
  void Jump(uint16_t code, uint32_t k, int jt, int jf) {
    Emit(code, k, jt, jf, -1);
  }
  void Ja(int label) { Emit(BPF_JMP | BPF_JA, 0, -1, -1, label); }
  void Ret(uint32_t k) { Stmt(BPF_RET | BPF_K, k); }

  absl::StatusOr<std::vector<sock_filter>> Finish() const {
    std::vector<sock_filter> out;
    out.reserve(code_.size());
    for (size_t pc = 0; pc < code_.size(); ++pc) {
      const Insn& in = code_[pc];
      sock_filter f{in.code, 0, 0, in.k};
      auto offset = [&](int label) -> absl::StatusOr<int64_t> {
        if (label < 0) return 0;
        int target = labels_[label];
        if (target < 0) return absl::InternalError("unbound label in filter");
        int64_t off =
            static_cast<int64_t>(target) - static_cast<int64_t>(pc) - 1;
        if (off < 0) return absl::InternalError("backward jump in filter");
        return off;
      };
      if (in.ja >= 0) {
        absl::StatusOr<int64_t> off = offset(in.ja);
        if (!off.ok()) return off.status();
        f.k = static_cast<uint32_t>(*off);
      } else if (BPF_CLASS(in.code) == BPF_JMP) {
        absl::StatusOr<int64_t> jt = offset(in.jt);
        absl::StatusOr<int64_t> jf = offset(in.jf);
        if (!jt.ok()) return jt.status();
        if (!jf.ok()) return jf.status();
        if (*jt > 255 || *jf > 255) {
          return absl::InternalError("conditional jump out of range in filter");
        }
        f.jt = static_cast<uint8_t>(*jt);
        f.jf = static_cast<uint8_t>(*jf);
      }
      out.push_back(f);
    }
    if (out.size() > kMaxInstructions) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "seccomp filter has ", out.size(),
          " instructions; the kernel accepts at most ", kMaxInstructions));
    }
    return out;
  }

 private:
  struct Insn {
    uint16_t code;
    uint32_t k;
    int jt, jf, ja;
  };
  void Emit(uint16_t code, uint32_t k, int jt, int jf, int ja) {
    code_.push_back(Insn{code, k, jt, jf, ja});
  }
  std::vector<Insn> code_;
  std::vector<int> labels_;
};

std::string FieldName(uint32_t k) {
  switch (k) {
    case kOffNr:
      return "nr";
    case kOffArch:
      return "arch";
    case kOffIpLo:
      return "ip_lo";
    case kOffIpHi:
      return "ip_hi";
    default:
      break;
  }
  if (k >= 16 && k < 64 && k % 4 == 0) {
    return absl::StrCat("arg", (k - 16) / 8, (k % 8 == 0) ? "_lo" : "_hi");
  }
  return absl::StrCat(k);
}

}  // namespace

FilterSpec& FilterSpec::Notify(int nr) {
  if (nr < 0 && error_.empty())
    error_ = absl::StrCat("negative syscall number ", nr);
  rules_[nr] = SyscallRule{};
  return *this;
}

FilterSpec& FilterSpec::NotifyIf(int nr, ArgMatch match) {
  if (match.index < 0 || match.index > 5) {
    if (error_.empty()) {
      error_ = absl::StrCat("argument index ", match.index, " for syscall ", nr,
                            " is out of range 0..5");
    }
    return *this;
  }
  rules_[nr].notify_if.push_back(match);
  return *this;
}

FilterSpec& FilterSpec::NotifyFamily(Family family) {
  for (int nr : FamilySyscalls(family, arch_)) Notify(nr);
  return *this;
}

FilterSpec& FilterSpec::NotifyFamilies(uint64_t mask) {
  for (int f = 1; f <= kMaxFamily; ++f) {
    if (mask & (uint64_t{1} << f)) NotifyFamily(static_cast<Family>(f));
  }
  if ((mask >> (kMaxFamily + 1)) != 0 || (mask & 1)) {
    if (error_.empty()) {
      error_ =
          absl::StrFormat("families mask 0x%x has bits outside families 1..%d",
                          mask, kMaxFamily);
    }
  }
  return *this;
}

FilterSpec& FilterSpec::AllowFromStubPage(uint64_t page) {
  if (page % kStubPageSize != 0 && error_.empty()) {
    error_ = absl::StrFormat("stub page 0x%x is not aligned to %d bytes", page,
                             kStubPageSize);
  }
  stub_page_ = page;
  return *this;
}

FilterSpec& FilterSpec::EvenFromStub(int nr) {
  auto it = rules_.find(nr);
  if (it != rules_.end()) it->second.even_from_stub = true;
  return *this;
}

FilterSpec& FilterSpec::EvenFromStubFamilies(uint64_t mask) {
  for (int f = 1; f <= kMaxFamily; ++f) {
    if (!(mask & (uint64_t{1} << f))) continue;
    for (int nr : FamilySyscalls(static_cast<Family>(f), arch_)) EvenFromStub(nr);
  }
  return *this;
}

FilterSpec& FilterSpec::OnWrongArch(uint32_t seccomp_ret) {
  wrong_arch_ret_ = seccomp_ret;
  return *this;
}

absl::StatusOr<CompiledFilter> FilterSpec::Compile() const {
  if (!error_.empty()) return absl::InvalidArgumentError(error_);
  Assembler a;
  const int notify_tail = a.NewLabel();
  const int notify_always = a.NewLabel();

  // The wrong-architecture returns sit right after their tests so that the
  // conditional jumps stay short whatever the number of rules.
  const int arch_ok = a.NewLabel();
  a.Stmt(BPF_LD | BPF_W | BPF_ABS, kOffArch);
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(arch_), arch_ok, -1);
  a.Ret(wrong_arch_ret_);
  a.Bind(arch_ok);
  a.Stmt(BPF_LD | BPF_W | BPF_ABS, kOffNr);
  if (arch_ == Arch::kX86_64) {
    const int native_abi = a.NewLabel();
    a.Jump(BPF_JMP | BPF_JGE | BPF_K, kX32SyscallBit, -1, native_abi);
    a.Ret(wrong_arch_ret_);
    a.Bind(native_abi);
  }
  CompiledFilter out;
  bool any_even_from_stub = false;
  for (const auto& [nr, rule] : rules_) {
    out.notified.push_back(nr);
    const int next = a.NewLabel();
    const int tail = rule.even_from_stub && stub_page_ != 0 ? notify_always : notify_tail;
    any_even_from_stub |= tail == notify_always;
    if (rule.notify_if.empty()) {
      a.Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), -1, next);
      a.Ja(tail);
    } else {
      const int allow = a.NewLabel();
      a.Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), -1, next);
      for (const ArgMatch& m : rule.notify_if) {
        // A failed test of one condition allows the syscall; passing every
        // condition notifies it.
        const int pass = a.NewLabel();
        const uint32_t mask_hi = static_cast<uint32_t>(m.mask >> 32);
        const uint32_t mask_lo = static_cast<uint32_t>(m.mask);
        const uint32_t val_hi = static_cast<uint32_t>(m.value >> 32);
        const uint32_t val_lo = static_cast<uint32_t>(m.value);
        // Equality of both words; for not_equal, any differing word passes
        // and equality of both fails.
        const int differ = m.not_equal ? pass : allow;
        if (mask_hi != 0) {
          a.Stmt(BPF_LD | BPF_W | BPF_ABS, ArgHi(m.index));
          if (mask_hi != 0xffffffffU)
            a.Stmt(BPF_ALU | BPF_AND | BPF_K, mask_hi);
          a.Jump(BPF_JMP | BPF_JEQ | BPF_K, val_hi & mask_hi, -1, differ);
        }
        if (mask_lo != 0) {
          a.Stmt(BPF_LD | BPF_W | BPF_ABS, ArgLo(m.index));
          if (mask_lo != 0xffffffffU)
            a.Stmt(BPF_ALU | BPF_AND | BPF_K, mask_lo);
          a.Jump(BPF_JMP | BPF_JEQ | BPF_K, val_lo & mask_lo, -1, differ);
        }
        if (m.not_equal) a.Ja(allow);
        a.Bind(pass);
      }
      a.Ja(tail);
      a.Bind(allow);
      a.Ret(kRetAllow);
    }
    a.Bind(next);
  }
  a.Ret(kRetAllow);

  a.Bind(notify_tail);
  if (stub_page_ != 0) {
    const int notify = a.NewLabel();
    a.Stmt(BPF_LD | BPF_W | BPF_ABS, kOffIpHi);
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(stub_page_ >> 32),
           -1, notify);
    a.Stmt(BPF_LD | BPF_W | BPF_ABS, kOffIpLo);
    a.Stmt(BPF_ALU | BPF_AND | BPF_K,
           static_cast<uint32_t>(~(kStubPageSize - 1)));
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(stub_page_), -1,
           notify);
    a.Ret(kRetAllow);
    a.Bind(notify);
  }
  if (any_even_from_stub) a.Bind(notify_always);
  a.Ret(kRetUserNotif);

  absl::StatusOr<std::vector<sock_filter>> program = a.Finish();
  if (!program.ok()) return program.status();
  out.program = *std::move(program);
  out.arch = arch_;
  out.stub_page = stub_page_;
  return out;
}

std::string RetName(uint32_t ret) {
  const uint32_t action = ret & kRetActionFull;
  const uint32_t data = ret & kRetData;
  switch (action) {
    case kRetKillProcess:
      return "KILL_PROCESS";
    case kRetKillThread:
      return "KILL_THREAD";
    case kRetTrap:
      return absl::StrCat("TRAP(", data, ")");
    case kRetErrno:
      return absl::StrCat("ERRNO(", data, ")");
    case kRetUserNotif:
      return "USER_NOTIF";
    case kRetTrace:
      return absl::StrCat("TRACE(", data, ")");
    case kRetLog:
      return "LOG";
    case kRetAllow:
      return "ALLOW";
    default:
      return absl::StrFormat("0x%08x", ret);
  }
}

std::string Disassemble(const std::vector<sock_filter>& program) {
  std::string out;
  for (size_t pc = 0; pc < program.size(); ++pc) {
    const sock_filter& f = program[pc];
    std::string text;
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (BPF_MODE(f.code) == BPF_ABS) {
          text = absl::StrCat("ld [", FieldName(f.k), "]");
        } else if (BPF_MODE(f.code) == BPF_IMM) {
          text = absl::StrFormat("ld #0x%x", f.k);
        } else if (BPF_MODE(f.code) == BPF_MEM) {
          text = absl::StrCat("ld M[", f.k, "]");
        } else if (BPF_MODE(f.code) == BPF_LEN) {
          text = "ld #len";
        } else {
          text = absl::StrFormat("ld ?code=0x%x", f.code);
        }
        break;
      case BPF_LDX:
        text = BPF_MODE(f.code) == BPF_MEM ? absl::StrCat("ldx M[", f.k, "]")
                                           : absl::StrFormat("ldx #0x%x", f.k);
        break;
      case BPF_ST:
        text = absl::StrCat("st M[", f.k, "]");
        break;
      case BPF_STX:
        text = absl::StrCat("stx M[", f.k, "]");
        break;
      case BPF_ALU: {
        static constexpr const char* kOps[] = {"add", "sub", "mul", "div",
                                               "or",  "and", "lsh", "rsh",
                                               "neg", "mod", "xor"};
        const unsigned op = BPF_OP(f.code) >> 4;
        const char* name = op < std::size(kOps) ? kOps[op] : "alu?";
        text = BPF_SRC(f.code) == BPF_X
                   ? absl::StrCat(name, " x")
                   : absl::StrFormat("%s #0x%x", name, f.k);
        break;
      }
      case BPF_JMP: {
        if (BPF_OP(f.code) == BPF_JA) {
          text = absl::StrFormat("ja %04d", pc + 1 + f.k);
          break;
        }
        const char* name = "j?";
        switch (BPF_OP(f.code)) {
          case BPF_JEQ:
            name = "jeq";
            break;
          case BPF_JGT:
            name = "jgt";
            break;
          case BPF_JGE:
            name = "jge";
            break;
          case BPF_JSET:
            name = "jset";
            break;
        }
        text = absl::StrFormat("%s #0x%x jt %04d jf %04d", name, f.k,
                               pc + 1 + f.jt, pc + 1 + f.jf);
        break;
      }
      case BPF_RET:
        text = BPF_RVAL(f.code) == BPF_A ? "ret a"
                                         : absl::StrCat("ret ", RetName(f.k));
        break;
      case BPF_MISC:
        text = BPF_MISCOP(f.code) == BPF_TAX ? "tax" : "txa";
        break;
    }
    absl::StrAppendFormat(&out, "%04d: %s\n", pc, text);
  }
  return out;
}

}  // namespace fault::seccomp
