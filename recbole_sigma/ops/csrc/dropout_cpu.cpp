// torch's CPU dropout computes x * noise, noise = bernoulli_(1 - p) / (1 - p), where bernoulli_
// draws one random64 (two mt19937 words, the first the high half) per element, in memory order,
// and keeps the element when its low 53 bits times 2^-53 are below 1 - p. The generator call per
// word is most of a dropout's time. This draws the same words a block of 624 at a time straight
// from the default generator's engine (at::mt19937: same twist, same tempering), so the noise and
// the generator state after it are torch's, bit for bit.
#include "dropout_cpu.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/MT19937RNGEngine.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace sigma {
namespace {

constexpr int kN = at::MERSENNE_STATE_N;
constexpr int kM = at::MERSENNE_STATE_M;

inline uint32_t twist(uint32_t u, uint32_t v) {
  return (((u & at::UMASK) | (v & at::LMASK)) >> 1) ^ ((v & 1u) ? at::MATRIX_A : 0u);
}

inline uint32_t temper(uint32_t y) {
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  return y ^ (y >> 18);
}

// at::mt19937's next_state: a new block of 624 words.
void regenerate(uint32_t* s) {
  for (int i = 0; i < kN - kM; ++i) s[i] = s[i + kM] ^ twist(s[i], s[i + 1]);
  for (int i = kN - kM; i < kN - 1; ++i) s[i] = s[i + kM - kN] ^ twist(s[i], s[i + 1]);
  s[kN - 1] = s[kM - 1] ^ twist(s[kN - 1], s[0]);
}

// The next n words of the engine in `d`, as n calls of at::mt19937::operator() give them (it
// regenerates when --left_ reaches 0, then reads state_[next_++]).
void draw(at::mt19937_data_pod& d, uint32_t* out, int64_t n) {
  while (n > 0) {
    if (d.left_ == 1) {
      regenerate(d.state_.data());
      d.left_ = kN;
      d.next_ = 0;
      *out++ = temper(d.state_[d.next_++]);
      --n;
      continue;
    }
    const int64_t take = std::min<int64_t>(n, d.left_ - 1);
    const uint32_t* s = d.state_.data() + d.next_;
    for (int64_t i = 0; i < take; ++i) out[i] = temper(s[i]);
    out += take;
    n -= take;
    d.next_ += static_cast<uint32_t>(take);
    d.left_ -= static_cast<int>(take);
  }
}

}  // namespace

torch::Tensor dropout_noise(int64_t numel, double keep_prob, double scale) {
  TORCH_CHECK(numel >= 0, "dropout_noise: numel must be >= 0");
  auto noise = torch::empty({numel}, torch::kFloat32);
  float* out = noise.data_ptr<float>();
  const float kept = static_cast<float>(scale);
  constexpr uint64_t kLow53 = (uint64_t{1} << 53) - 1;
  constexpr double kUnit = 1.0 / static_cast<double>(uint64_t{1} << 53);

  auto gen = at::detail::getDefaultCPUGenerator();
  auto* impl = gen.get<at::CPUGeneratorImpl>();
  std::lock_guard<std::mutex> lock(impl->mutex_);
  at::mt19937 engine = impl->engine();
  at::mt19937_data_pod d = engine.data();
  constexpr int64_t kChunk = 4096;  // elements per block of drawn words
  std::vector<uint32_t> words(2 * kChunk);
  for (int64_t start = 0; start < numel; start += kChunk) {
    const int64_t n = std::min(kChunk, numel - start);
    draw(d, words.data(), 2 * n);
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t r = (static_cast<uint64_t>(words[2 * i]) << 32) | words[2 * i + 1];
      const double u = static_cast<double>(r & kLow53) * kUnit;
      out[start + i] = u < keep_prob ? kept : 0.0f;
    }
  }
  engine.set_data(d);
  impl->set_engine(engine);
  return noise;
}

}  // namespace sigma
