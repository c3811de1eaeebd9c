#include "starlark/bigint.h"

#include <algorithm>
#include <cmath>

namespace fault::starlark {

BigInt::BigInt(int64_t v) {
  neg_ = v < 0;
  uint64_t m =
      neg_ ? (~static_cast<uint64_t>(v) + 1) : static_cast<uint64_t>(v);
  while (m) {
    mag_.push_back(static_cast<uint32_t>(m));
    m >>= 32;
  }
}

void BigInt::Trim() {
  while (!mag_.empty() && mag_.back() == 0) mag_.pop_back();
  if (mag_.empty()) neg_ = false;
}

std::optional<BigInt> BigInt::Parse(std::string_view digits, int base) {
  if (digits.empty() || base < 2 || base > 36) return std::nullopt;
  BigInt r;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'z')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'Z')
      d = c - 'A' + 10;
    else
      return std::nullopt;
    if (d >= base) return std::nullopt;
    uint64_t carry = static_cast<uint64_t>(d);
    for (auto& limb : r.mag_) {
      uint64_t t = static_cast<uint64_t>(limb) * base + carry;
      limb = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
    if (carry) r.mag_.push_back(static_cast<uint32_t>(carry));
  }
  r.Trim();
  return r;
}

bool BigInt::ToInt64(int64_t* out) const {
  if (mag_.size() > 2) return false;
  uint64_t m = 0;
  if (!mag_.empty()) m = mag_[0];
  if (mag_.size() > 1) m |= static_cast<uint64_t>(mag_[1]) << 32;
  if (neg_) {
    if (m > (uint64_t{1} << 63)) return false;
    *out = static_cast<int64_t>(~m + 1);
  } else {
    if (m >= (uint64_t{1} << 63)) return false;
    *out = static_cast<int64_t>(m);
  }
  return true;
}

size_t BigInt::BitLength() const {
  if (mag_.empty()) return 0;
  return (mag_.size() - 1) * 32 + (32 - __builtin_clz(mag_.back()));
}

double BigInt::ToDouble() const {
  // Round-to-nearest-even using the top 64 bits plus a sticky bit.
  size_t bits = BitLength();
  if (bits == 0) return 0.0;
  if (bits > 1024) return neg_ ? -HUGE_VAL : HUGE_VAL;
  if (bits <= 64) {
    uint64_t m = mag_[0];
    if (mag_.size() > 1) m |= static_cast<uint64_t>(mag_[1]) << 32;
    double d = static_cast<double>(m);
    return neg_ ? -d : d;
  }
  size_t shift = bits - 64;
  BigInt top = Shr(0);
  top.neg_ = false;
  BigInt hi = top.Shr(shift);
  uint64_t m =
      hi.mag_[0] |
      (static_cast<uint64_t>(hi.mag_.size() > 1 ? hi.mag_[1] : 0) << 32);
  bool sticky = false;
  for (size_t i = 0; i < shift; i++) {
    if (mag_[i / 32] >> (i % 32) & 1) {
      sticky = true;
      break;
    }
  }
  // Keep 53 bits of m; round using the remaining 11 bits and sticky.
  uint64_t keep = m >> 11;
  uint64_t rest = m & 0x7ff;
  bool round_up = rest > 0x400 || (rest == 0x400 && (sticky || (keep & 1)));
  if (rest == 0x400 && !sticky && !(keep & 1)) round_up = false;
  if (round_up) keep++;
  double d =
      std::ldexp(static_cast<double>(keep), static_cast<int>(shift + 11));
  return neg_ ? -d : d;
}

std::optional<BigInt> BigInt::FromDouble(double d) {
  if (!std::isfinite(d)) return std::nullopt;
  d = std::trunc(d);
  bool neg = d < 0;
  if (neg) d = -d;
  int exp;
  double frac = std::frexp(d, &exp);
  BigInt r;
  if (exp <= 0) return r;
  // frac in [0.5,1): take 53 bits.
  uint64_t m = static_cast<uint64_t>(std::ldexp(frac, 53));
  r = BigInt(static_cast<int64_t>(m));
  if (exp >= 53)
    r = r.Shl(exp - 53);
  else
    r = r.Shr(53 - exp);
  if (neg) r = r.Neg();
  return r;
}

std::string BigInt::ToString(int base) const {
  if (mag_.empty()) return "0";
  std::string out;
  std::vector<uint32_t> cur = mag_;
  // Divide by base^k chunks for speed.
  uint32_t chunk = base;
  int per = 1;
  while (static_cast<uint64_t>(chunk) * base <= 0xffffffffu) {
    chunk *= base;
    per++;
  }
  static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  while (!cur.empty()) {
    uint64_t rem = 0;
    for (size_t i = cur.size(); i-- > 0;) {
      uint64_t t = (rem << 32) | cur[i];
      cur[i] = static_cast<uint32_t>(t / chunk);
      rem = t % chunk;
    }
    while (!cur.empty() && cur.back() == 0) cur.pop_back();
    for (int i = 0; i < per; i++) {
      out.push_back(kDigits[rem % base]);
      rem /= base;
      if (cur.empty() && rem == 0) break;
    }
  }
  while (out.size() > 1 && out.back() == '0') out.pop_back();
  if (neg_) out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

uint64_t BigInt::Hash() const {
  uint64_t h = 1469598103934665603ull ^ (neg_ ? 1 : 0);
  for (uint32_t l : mag_) {
    h ^= l;
    h *= 1099511628211ull;
  }
  return h;
}

int BigInt::CmpMag(const std::vector<uint32_t>& a,
                   const std::vector<uint32_t>& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = a.size(); i-- > 0;) {
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

int BigInt::Compare(const BigInt& a, const BigInt& b) {
  if (a.neg_ != b.neg_) return a.neg_ ? -1 : 1;
  int c = CmpMag(a.mag_, b.mag_);
  return a.neg_ ? -c : c;
}

std::vector<uint32_t> BigInt::AddMag(const std::vector<uint32_t>& a,
                                     const std::vector<uint32_t>& b) {
  const auto& x = a.size() >= b.size() ? a : b;
  const auto& y = a.size() >= b.size() ? b : a;
  std::vector<uint32_t> r(x.size() + 1);
  uint64_t carry = 0;
  for (size_t i = 0; i < x.size(); i++) {
    uint64_t t =
        static_cast<uint64_t>(x[i]) + (i < y.size() ? y[i] : 0) + carry;
    r[i] = static_cast<uint32_t>(t);
    carry = t >> 32;
  }
  r[x.size()] = static_cast<uint32_t>(carry);
  return r;
}

std::vector<uint32_t> BigInt::SubMag(const std::vector<uint32_t>& a,
                                     const std::vector<uint32_t>& b) {
  std::vector<uint32_t> r(a.size());
  int64_t borrow = 0;
  for (size_t i = 0; i < a.size(); i++) {
    int64_t t = static_cast<int64_t>(a[i]) - (i < b.size() ? b[i] : 0) - borrow;
    borrow = t < 0;
    if (t < 0) t += (int64_t{1} << 32);
    r[i] = static_cast<uint32_t>(t);
  }
  return r;
}

BigInt BigInt::Add(const BigInt& a, const BigInt& b) {
  BigInt r;
  if (a.neg_ == b.neg_) {
    r.mag_ = AddMag(a.mag_, b.mag_);
    r.neg_ = a.neg_;
  } else if (CmpMag(a.mag_, b.mag_) >= 0) {
    r.mag_ = SubMag(a.mag_, b.mag_);
    r.neg_ = a.neg_;
  } else {
    r.mag_ = SubMag(b.mag_, a.mag_);
    r.neg_ = b.neg_;
  }
  r.Trim();
  return r;
}

BigInt BigInt::Neg() const {
  BigInt r = *this;
  if (!r.mag_.empty()) r.neg_ = !r.neg_;
  return r;
}

BigInt BigInt::Sub(const BigInt& a, const BigInt& b) { return Add(a, b.Neg()); }

BigInt BigInt::Mul(const BigInt& a, const BigInt& b) {
  BigInt r;
  if (a.mag_.empty() || b.mag_.empty()) return r;
  r.mag_.assign(a.mag_.size() + b.mag_.size(), 0);
  for (size_t i = 0; i < a.mag_.size(); i++) {
    uint64_t carry = 0;
    uint64_t ai = a.mag_[i];
    for (size_t j = 0; j < b.mag_.size(); j++) {
      uint64_t t = ai * b.mag_[j] + r.mag_[i + j] + carry;
      r.mag_[i + j] = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
    size_t k = i + b.mag_.size();
    while (carry) {
      uint64_t t = static_cast<uint64_t>(r.mag_[k]) + carry;
      r.mag_[k] = static_cast<uint32_t>(t);
      carry = t >> 32;
      k++;
    }
  }
  r.neg_ = a.neg_ != b.neg_;
  r.Trim();
  return r;
}

void BigInt::DivModMag(const std::vector<uint32_t>& a,
                       const std::vector<uint32_t>& b, std::vector<uint32_t>* q,
                       std::vector<uint32_t>* r) {
  if (CmpMag(a, b) < 0) {
    q->clear();
    *r = a;
    return;
  }
  if (b.size() == 1) {
    q->assign(a.size(), 0);
    uint64_t rem = 0;
    for (size_t i = a.size(); i-- > 0;) {
      uint64_t t = (rem << 32) | a[i];
      (*q)[i] = static_cast<uint32_t>(t / b[0]);
      rem = t % b[0];
    }
    r->clear();
    if (rem) r->push_back(static_cast<uint32_t>(rem));
    while (!q->empty() && q->back() == 0) q->pop_back();
    return;
  }
  // Knuth algorithm D.
  int s = __builtin_clz(b.back());
  std::vector<uint32_t> un(a.size() + 1), vn(b.size());
  for (size_t i = b.size(); i-- > 1;)
    vn[i] =
        (b[i] << s) |
        (s ? static_cast<uint32_t>(static_cast<uint64_t>(b[i - 1]) >> (32 - s))
           : 0);
  vn[0] = b[0] << s;
  un[a.size()] =
      s ? static_cast<uint32_t>(static_cast<uint64_t>(a.back()) >> (32 - s))
        : 0;
  for (size_t i = a.size(); i-- > 1;)
    un[i] =
        (a[i] << s) |
        (s ? static_cast<uint32_t>(static_cast<uint64_t>(a[i - 1]) >> (32 - s))
           : 0);
  un[0] = a[0] << s;
  size_t n = b.size(), m = a.size() - b.size();
  q->assign(m + 1, 0);
  const uint64_t kBase = uint64_t{1} << 32;
  for (size_t j = m + 1; j-- > 0;) {
    uint64_t num = (static_cast<uint64_t>(un[j + n]) << 32) | un[j + n - 1];
    uint64_t qhat = num / vn[n - 1];
    uint64_t rhat = num % vn[n - 1];
    while (qhat >= kBase || qhat * vn[n - 2] > ((rhat << 32) | un[j + n - 2])) {
      qhat--;
      rhat += vn[n - 1];
      if (rhat >= kBase) break;
    }
    int64_t borrow = 0;
    uint64_t carry = 0;
    for (size_t i = 0; i < n; i++) {
      uint64_t p = qhat * vn[i] + carry;
      carry = p >> 32;
      int64_t t = static_cast<int64_t>(un[i + j]) - borrow -
                  static_cast<int64_t>(p & 0xffffffff);
      un[i + j] = static_cast<uint32_t>(t);
      borrow = t < 0 ? 1 : 0;
    }
    int64_t t =
        static_cast<int64_t>(un[j + n]) - borrow - static_cast<int64_t>(carry);
    un[j + n] = static_cast<uint32_t>(t);
    if (t < 0) {
      qhat--;
      uint64_t c = 0;
      for (size_t i = 0; i < n; i++) {
        uint64_t s2 = static_cast<uint64_t>(un[i + j]) + vn[i] + c;
        un[i + j] = static_cast<uint32_t>(s2);
        c = s2 >> 32;
      }
      un[j + n] = static_cast<uint32_t>(un[j + n] + c);
    }
    (*q)[j] = static_cast<uint32_t>(qhat);
  }
  r->assign(n, 0);
  for (size_t i = 0; i < n; i++)
    (*r)[i] =
        (un[i] >> s) |
        (s ? static_cast<uint32_t>(static_cast<uint64_t>(un[i + 1]) << (32 - s))
           : 0);
  while (!q->empty() && q->back() == 0) q->pop_back();
  while (!r->empty() && r->back() == 0) r->pop_back();
}

void BigInt::DivMod(const BigInt& a, const BigInt& b, BigInt* q, BigInt* r) {
  BigInt qq, rr;
  DivModMag(a.mag_, b.mag_, &qq.mag_, &rr.mag_);
  qq.neg_ = a.neg_ != b.neg_;
  rr.neg_ = a.neg_;
  qq.Trim();
  rr.Trim();
  // Truncated -> floored.
  if (!rr.IsZero() && (a.neg_ != b.neg_)) {
    qq = Sub(qq, BigInt(1));
    rr = Add(rr, b);
  }
  if (q) *q = std::move(qq);
  if (r) *r = std::move(rr);
}

std::vector<uint32_t> BigInt::TwosComplement(size_t n) const {
  std::vector<uint32_t> r(n, 0);
  for (size_t i = 0; i < mag_.size() && i < n; i++) r[i] = mag_[i];
  if (neg_) {
    uint64_t carry = 1;
    for (size_t i = 0; i < n; i++) {
      uint64_t t = static_cast<uint64_t>(~r[i]) + carry;
      r[i] = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
  }
  return r;
}

BigInt BigInt::FromTwosComplement(std::vector<uint32_t> limbs) {
  BigInt r;
  bool neg = !limbs.empty() && (limbs.back() >> 31);
  if (neg) {
    uint64_t carry = 1;
    for (auto& l : limbs) {
      uint64_t t = static_cast<uint64_t>(~l) + carry;
      l = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
  }
  r.mag_ = std::move(limbs);
  r.neg_ = neg;
  r.Trim();
  return r;
}

template <typename F>
BigInt BigInt::Bitwise(const BigInt& a, const BigInt& b, F f) {
  size_t n = std::max(a.mag_.size(), b.mag_.size()) + 1;
  auto x = a.TwosComplement(n), y = b.TwosComplement(n);
  for (size_t i = 0; i < n; i++) x[i] = f(x[i], y[i]);
  return FromTwosComplement(std::move(x));
}

BigInt BigInt::And(const BigInt& a, const BigInt& b) {
  return Bitwise(a, b, [](uint32_t x, uint32_t y) { return x & y; });
}
BigInt BigInt::Or(const BigInt& a, const BigInt& b) {
  return Bitwise(a, b, [](uint32_t x, uint32_t y) { return x | y; });
}
BigInt BigInt::Xor(const BigInt& a, const BigInt& b) {
  return Bitwise(a, b, [](uint32_t x, uint32_t y) { return x ^ y; });
}
BigInt BigInt::Not(const BigInt& a) { return Sub(a.Neg(), BigInt(1)); }

BigInt BigInt::Shl(uint64_t n) const {
  if (mag_.empty()) return *this;
  BigInt r;
  size_t words = n / 32, bits = n % 32;
  r.mag_.assign(words, 0);
  uint32_t carry = 0;
  for (uint32_t l : mag_) {
    r.mag_.push_back((l << bits) | carry);
    carry = bits
                ? static_cast<uint32_t>(static_cast<uint64_t>(l) >> (32 - bits))
                : 0;
  }
  if (carry) r.mag_.push_back(carry);
  r.neg_ = neg_;
  r.Trim();
  return r;
}

BigInt BigInt::Shr(uint64_t n) const {
  if (!neg_) {
    BigInt r;
    size_t words = n / 32, bits = n % 32;
    if (words >= mag_.size()) return r;
    for (size_t i = words; i < mag_.size(); i++) {
      uint64_t cur = mag_[i] >> bits;
      if (bits && i + 1 < mag_.size())
        cur |= static_cast<uint64_t>(mag_[i + 1]) << (32 - bits);
      r.mag_.push_back(static_cast<uint32_t>(cur));
    }
    r.Trim();
    return r;
  }
  // floor(-m / 2^n) = -((m - 1) >> n) - 1
  BigInt m = Neg();
  m = Sub(m, BigInt(1)).Shr(n);
  return Sub(m.Neg(), BigInt(1));
}

}  // namespace fault::starlark
