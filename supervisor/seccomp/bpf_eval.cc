#include "supervisor/seccomp/bpf_eval.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace fault::seccomp {

absl::StatusOr<EvalResult> EvaluateBpf(const std::vector<sock_filter>& program,
                                       const FakeSeccompData& data) {
  static_assert(sizeof(FakeSeccompData) == 64, "seccomp_data is 64 bytes");
  if (program.empty() || program.size() > BPF_MAXINSNS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "program length ", program.size(), " outside 1..", BPF_MAXINSNS));
  }
  unsigned char bytes[sizeof(FakeSeccompData)];
  std::memcpy(bytes, &data, sizeof(bytes));

  EvalResult result;
  uint32_t a = 0;
  uint32_t x = 0;
  uint32_t mem[BPF_MEMWORDS] = {};
  size_t pc = 0;
  auto error = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("instruction ", pc, ": ", std::string(why)));
  };
  while (true) {
    if (pc >= program.size()) return error("ran past the end of the program");
    if (++result.steps > BPF_MAXINSNS) return error("too many steps");
    const sock_filter& f = program[pc];
    switch (f.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        if (f.k % 4 != 0 || f.k + 4 > sizeof(bytes))
          return error("load outside seccomp_data");
        std::memcpy(&a, bytes + f.k, 4);
        if (f.k == 8 || f.k == 12) result.read_ip = true;
        if (f.k >= 16) result.read_args = true;
        break;
      case BPF_LD | BPF_W | BPF_LEN:
        a = sizeof(bytes);
        break;
      case BPF_LDX | BPF_W | BPF_LEN:
        x = sizeof(bytes);
        break;
      case BPF_LD | BPF_IMM:
        a = f.k;
        break;
      case BPF_LDX | BPF_IMM:
        x = f.k;
        break;
      case BPF_LD | BPF_MEM:
        if (f.k >= BPF_MEMWORDS) return error("scratch index out of range");
        a = mem[f.k];
        break;
      case BPF_LDX | BPF_MEM:
        if (f.k >= BPF_MEMWORDS) return error("scratch index out of range");
        x = mem[f.k];
        break;
      case BPF_ST:
        if (f.k >= BPF_MEMWORDS) return error("scratch index out of range");
        mem[f.k] = a;
        break;
      case BPF_STX:
        if (f.k >= BPF_MEMWORDS) return error("scratch index out of range");
        mem[f.k] = x;
        break;
      case BPF_MISC | BPF_TAX:
        x = a;
        break;
      case BPF_MISC | BPF_TXA:
        a = x;
        break;
      case BPF_RET | BPF_K:
        result.ret = f.k;
        return result;
      case BPF_RET | BPF_A:
        result.ret = a;
        return result;
      case BPF_JMP | BPF_JA:
        if (pc + 1 + f.k >= program.size()) return error("jump past the end");
        pc += 1 + f.k;
        continue;
      default: {
        const uint16_t cls = BPF_CLASS(f.code);
        if (cls == BPF_ALU) {
          const uint32_t operand = BPF_SRC(f.code) == BPF_X ? x : f.k;
          switch (BPF_OP(f.code)) {
            case BPF_ADD:
              a += operand;
              break;
            case BPF_SUB:
              a -= operand;
              break;
            case BPF_MUL:
              a *= operand;
              break;
            case BPF_DIV:
              if (operand == 0) return error("division by zero");
              a /= operand;
              break;
            case BPF_MOD:
              if (operand == 0) return error("division by zero");
              a %= operand;
              break;
            case BPF_OR:
              a |= operand;
              break;
            case BPF_AND:
              a &= operand;
              break;
            case BPF_XOR:
              a ^= operand;
              break;
            case BPF_LSH:
              a = operand >= 32 ? 0 : a << operand;
              break;
            case BPF_RSH:
              a = operand >= 32 ? 0 : a >> operand;
              break;
            case BPF_NEG:
              a = 0 - a;
              break;
            default:
              return error("unknown ALU operation");
          }
          break;
        }
        if (cls == BPF_JMP) {
          const uint32_t operand = BPF_SRC(f.code) == BPF_X ? x : f.k;
          bool taken;
          switch (BPF_OP(f.code)) {
            case BPF_JEQ:
              taken = a == operand;
              break;
            case BPF_JGT:
              taken = a > operand;
              break;
            case BPF_JGE:
              taken = a >= operand;
              break;
            case BPF_JSET:
              taken = (a & operand) != 0;
              break;
            default:
              return error("unknown jump");
          }
          const size_t next = pc + 1 + (taken ? f.jt : f.jf);
          if (next >= program.size()) return error("jump past the end");
          pc = next;
          continue;
        }
        return error(absl::StrCat("instruction code 0x", absl::Hex(f.code),
                                  " is not allowed in seccomp filters"));
      }
    }
    ++pc;
  }
}

}  // namespace fault::seccomp
