// Arbitrary-precision signed integers for Starlark's `int` type.
//
// Sign-magnitude with 32-bit limbs (little-endian). Values that fit in the
// small-int range of Value never reach this class; it is the slow path.
// Bitwise operators follow two's-complement semantics on the infinite-width
// representation, as Python and the Starlark spec define them.
#ifndef FAULT_STARLARK_BIGINT_H_
#define FAULT_STARLARK_BIGINT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fault::starlark {

class BigInt {
 public:
  BigInt() = default;
  explicit BigInt(int64_t v);

  // Parses digits (no sign, no prefix, underscores not allowed) in `base`.
  static std::optional<BigInt> Parse(std::string_view digits, int base);

  bool IsZero() const { return mag_.empty(); }
  bool IsNegative() const { return neg_; }
  int Sign() const { return mag_.empty() ? 0 : (neg_ ? -1 : 1); }
  // Returns true and stores the value if it fits in int64.
  bool ToInt64(int64_t* out) const;
  double ToDouble() const;                            // may return +-inf
  static std::optional<BigInt> FromDouble(double d);  // d must be finite
  std::string ToString(int base = 10) const;
  size_t Limbs() const { return mag_.size(); }
  size_t BitLength() const;
  uint64_t Hash() const;

  static int Compare(const BigInt& a, const BigInt& b);
  static BigInt Add(const BigInt& a, const BigInt& b);
  static BigInt Sub(const BigInt& a, const BigInt& b);
  static BigInt Mul(const BigInt& a, const BigInt& b);
  // Floored division and modulo (Python semantics). b must be non-zero.
  static void DivMod(const BigInt& a, const BigInt& b, BigInt* q, BigInt* r);
  static BigInt And(const BigInt& a, const BigInt& b);
  static BigInt Or(const BigInt& a, const BigInt& b);
  static BigInt Xor(const BigInt& a, const BigInt& b);
  static BigInt Not(const BigInt& a);  // -a - 1
  BigInt Neg() const;
  BigInt Shl(uint64_t n) const;
  BigInt Shr(uint64_t n) const;  // arithmetic (floor)

 private:
  void Trim();
  static int CmpMag(const std::vector<uint32_t>& a,
                    const std::vector<uint32_t>& b);
  static std::vector<uint32_t> AddMag(const std::vector<uint32_t>& a,
                                      const std::vector<uint32_t>& b);
  // Requires |a| >= |b|.
  static std::vector<uint32_t> SubMag(const std::vector<uint32_t>& a,
                                      const std::vector<uint32_t>& b);
  static void DivModMag(const std::vector<uint32_t>& a,
                        const std::vector<uint32_t>& b,
                        std::vector<uint32_t>* q, std::vector<uint32_t>* r);
  // Two's complement view with `n` limbs (sign-extended).
  std::vector<uint32_t> TwosComplement(size_t n) const;
  static BigInt FromTwosComplement(std::vector<uint32_t> limbs);
  template <typename F>
  static BigInt Bitwise(const BigInt& a, const BigInt& b, F f);

  bool neg_ = false;
  std::vector<uint32_t> mag_;
};

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_BIGINT_H_
