// Fused selective scan for CPU, forward and backward, with mamba_ssm.selective_scan_fn's math:
//   dt = softplus(dt + bias);  h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t;
//   y_t = <h_t, C_t> + D u_t;  out_t = y_t * silu(z_t).
// Time-major layout: u, dt, z, out (Bt, L, E); B, C (Bt, L, N); A (E, N); z, B and C may be slices
// of wider rows (in_proj's and x_proj's outputs), read in place. A task takes whole
// sequences; `width` channels go in one vector, so every state update is one vector op over
// channels and B_t, C_t are broadcast. The backward runs the forward again, a few states at a
// time, into a small local buffer: no (Bt, L, E, N) tensor is ever stored.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <optional>
#include <type_traits>
#include <vector>

#include "causal_conv_cpu.h"
#include "dropout_cpu.h"
#include "lanes.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace {

// Flush-to-zero and denormals-are-zero while a kernel thread runs, restored after. SIGMA's loss
// reaches only the last real position, so dL/dh decays through hundreds of steps into denormal
// range, where every x86 multiply takes a microcode assist (measured: a 10x slower backward).
struct FlushDenormals {
#if defined(__SSE__)
  unsigned int saved = _mm_getcsr();
  FlushDenormals() { _mm_setcsr(saved | 0x8040); }
  ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

using sigma::Lanes;
using sigma::with_lanes;

template <typename T>
struct Scan {
  const T *u, *dt, *a2, *B, *C, *D, *z, *bias;  // a2: (N, E), A^T * log2(e); D, z, bias may be null
  int64_t nb, nl, ne, nn;
  // batch and time strides of z, B and C, which may be slices of wider rows (the projections)
  int64_t zb, zt, Bb, Bt, Cb, Ct;
  bool softplus;

  int64_t at(int64_t b, int64_t t) const { return (b * nl + t) * ne; }   // (b, t, 0) of (Bt, L, E)
  int64_t bc(int64_t b, int64_t t) const { return (b * nl + t) * nn; }   // (b, t, 0) of (Bt, L, N)
  const T* z_at(int64_t b, int64_t t) const { return z + b * zb + t * zt; }
  const T* B_at(int64_t b, int64_t t) const { return B + b * Bb + t * Bt; }
  const T* C_at(int64_t b, int64_t t) const { return C + b * Cb + t * Ct; }
};

template <class V, typename T>
V channel(const T* p, int64_t e0) {
  return p ? V::load(p + e0) : V::fill(0);
}

template <class V, typename T>
V delta(const Scan<T>& s, V raw) {
  return s.softplus ? sigma::softplus(raw) : raw;
}

// States [n0, n0 + K) of one task over all t, kept in registers (K is a compile-time chunk).
// Forward only: ys[t] += <h_t, C_t> over the chunk. With `hs`/`decay`: also keeps the chunk's
// states and decays for the backward, (t, k) row-major: hs[(t + 1) K + k] = h_t,n0+k.
template <int K, class V, typename T>
void chunk_forward(const Scan<T>& s, int64_t b, int64_t n0, const V* a2, const V* dts,
                   const V* dus, V* ys, V* hs, V* decay) {
  V h[K], a[K];
  for (int k = 0; k < K; ++k) h[k] = V::fill(0), a[k] = a2[n0 + k];
  if (hs)
    for (int k = 0; k < K; ++k) hs[k] = V::fill(0);
  for (int64_t t = 0; t < s.nl; ++t) {
    const T *bt = s.B_at(b, t) + n0, *ct = s.C_at(b, t) + n0;
    const V d = dts[t], du = dus[t];
    V acc[2] = {V::fill(0), V::fill(0)};  // two chains hide the add latency
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) {
      const V dc = exp2(d * a[k]);
      h[k] = fma(dc, h[k], du * V::fill(bt[k]));
      if (hs) hs[(t + 1) * K + k] = h[k], decay[t * K + k] = dc;
      if (ys) acc[k & 1] = fma(h[k], V::fill(ct[k]), acc[k & 1]);
    }
    if (ys) ys[t] = ys[t] + (acc[0] + acc[1]);
  }
}

// Calls f(std::integral_constant<int, K>{}, n0) for chunks covering [0, nn): C states, then 1.
template <int C, typename F>
void chunks(int64_t nn, F f) {
  int64_t n0 = 0;
  for (; n0 + C <= nn; n0 += C) f(std::integral_constant<int, C>{}, n0);
  for (; n0 < nn; ++n0) f(std::integral_constant<int, 1>{}, n0);
}

// Visits one sequence's (t, channel block) pairs row by row, so its (L, E) rows stream from memory
// in order: f(i, j, blk, t) with i the offset of (b, t, blk * W) in (Bt, L, E), j = blk * L + t.
template <int W, typename T, typename F>
void rows(const Scan<T>& s, int64_t b, F f) {
  for (int64_t t = 0; t < s.nl; ++t)
    for (int64_t blk = 0; blk < s.ne / W; ++blk) f(s.at(b, t) + blk * W, blk * s.nl + t, blk, t);
}

// A * log2(e) per channel block, (block, N) vectors: the same for every sequence.
template <class V, typename T>
std::vector<V> load_a2(const Scan<T>& s) {
  constexpr int W = V::width;
  std::vector<V> a2(s.ne / W * s.nn);
  for (int64_t blk = 0; blk < s.ne / W; ++blk)
    for (int64_t n = 0; n < s.nn; ++n) a2[blk * s.nn + n] = V::load(s.a2 + n * s.ne + blk * W);
  return a2;
}

// Per channel block of one sequence, for every t: dt_t and dt_t u_t.
template <class V, typename T>
void prepare(const Scan<T>& s, int64_t b, V* dts, V* dus) {
  constexpr int W = V::width;
  rows<W>(s, b, [&](int64_t i, int64_t j, int64_t blk, int64_t) {
    dts[j] = delta(s, V::load(s.dt + i) + channel<V>(s.bias, blk * W));
    dus[j] = dts[j] * V::load(s.u + i);
  });
}

template <class V, typename T = typename V::Scalar>
void scan_forward(const Scan<T>& s, T* out, T* y_saved) {
  constexpr int W = V::width;
  const int64_t blocks = s.ne / W, nl = s.nl, nn = s.nn;
  at::parallel_for(0, s.nb, 1, [&](int64_t begin, int64_t end) {
    const FlushDenormals flush;
    const std::vector<V> a2 = load_a2<V>(s);
    std::vector<V> dts(blocks * nl), dus(blocks * nl), ys(blocks * nl);
    for (int64_t b = begin; b < end; ++b) {
      prepare(s, b, dts.data(), dus.data());
      rows<W>(s, b, [&](int64_t i, int64_t j, int64_t blk, int64_t) {
        ys[j] = channel<V>(s.D, blk * W) * V::load(s.u + i);
      });
      for (int64_t blk = 0; blk < blocks; ++blk)
        chunks<8>(nn, [&](auto k, int64_t n0) {
          chunk_forward<k(), V>(s, b, n0, &a2[blk * nn], &dts[blk * nl], &dus[blk * nl],
                                &ys[blk * nl], nullptr, nullptr);
        });
      rows<W>(s, b, [&](int64_t i, int64_t j, int64_t blk, int64_t t) {
        V y = ys[j];
        if (y_saved) y.store(y_saved + i);
        if (s.z) {
          const V z = V::load(s.z_at(b, t) + blk * W);
          y = y * z * sigma::sigmoid(z);
        }
        y.store(out + i);
      });
    }
  });
}

template <typename T>
struct Grads {
  T *u, *dt, *z, *A, *B, *C, *D, *bias;  // A: (E, N); z, D, bias null when not wanted
};

// One task's backward through states [n0, n0 + K), t from last to first, on the chunk's buffers
// from chunk_forward. Adds dL/dC and dL/dB per (t, k) (summed over channels later), dL/dA per k,
// and per t: g_a[t] += sum_k dL/d(dt A_k) A_k / ln 2, g_b[t] += sum_k dL/dh_t,k B_t,k.
template <int K, class V, typename T>
void chunk_backward(const Scan<T>& s, int64_t b, int64_t n0, const V* a2, const V* dts,
                    const V* dus, const V* gys, const V* hs, const V* decay, V* gB, V* gC,
                    V* gA, V* g_a, V* g_b) {
  V gh[K], ga[K], a[K];  // gh: dL/dh_t of the chunk, carried to t - 1 through the decay
  for (int k = 0; k < K; ++k) gh[k] = ga[k] = V::fill(0), a[k] = a2[n0 + k];
  for (int64_t t = s.nl - 1; t >= 0; --t) {
    const T *bt = s.B_at(b, t) + n0, *ct = s.C_at(b, t) + n0;
    const V gy = gys[t], d = dts[t], du = dus[t];
    const V *hp = hs + t * K, *hc = hp + K, *dc = decay + t * K;
    V *gbt = gB + t * K, *gct = gC + t * K;
    V sa[2] = {V::fill(0), V::fill(0)}, sb[2] = {V::fill(0), V::fill(0)};
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) {
      const V ghn = fma(gy, V::fill(ct[k]), gh[k]);  // dL/dh_t
      const V g_decay = ghn * hp[k] * dc[k];       // dL/d(decay) * decay
      gct[k] = fma(gy, hc[k], gct[k]);
      gbt[k] = fma(ghn, du, gbt[k]);
      ga[k] = fma(g_decay, d, ga[k]);
      sa[k & 1] = fma(g_decay, a[k], sa[k & 1]);
      sb[k & 1] = fma(ghn, V::fill(bt[k]), sb[k & 1]);
      gh[k] = ghn * dc[k];
    }
    g_a[t] = g_a[t] + (sa[0] + sa[1]);
    g_b[t] = g_b[t] + (sb[0] + sb[1]);
  }
  for (int k = 0; k < K; ++k) gA[n0 + k] = ga[k];
}

constexpr int kChunk = 4;  // states per backward chunk

template <class V, typename T = typename V::Scalar>
void scan_backward(const Scan<T>& s, const T* y_saved, const T* gout, const Grads<T>& g) {
  constexpr int W = V::width;
  const int64_t nl = s.nl, nn = s.nn, ne = s.ne;
  // a task owns whole sequences (their channels share dB, dC); dA, dD, dbias sum over the batch:
  // per-task partial sums, added up after
  const int64_t tasks = std::min<int64_t>(s.nb, at::get_num_threads());
  std::vector<T> part(tasks * (nn + 2) * ne, T(0));  // per task: dA^T (N, E), dD (E), dbias (E)
  const int64_t blocks = ne / W;
  at::parallel_for(0, tasks, 1, [&](int64_t first, int64_t last) {
    const FlushDenormals flush;
    // per channel block: a2 (N), gA (N) and per t: dt, dt u, dL/d<h, C>, g_a, g_b
    const std::vector<V> a2 = load_a2<V>(s);
    std::vector<V> gA(blocks * nn), dts(blocks * nl), dus(blocks * nl), gys(blocks * nl),
        g_a(blocks * nl), g_b(blocks * nl), gD(blocks), gbias(blocks);
    // one chunk of states: its states, decays, dB and dC (small enough to stay in cache)
    std::vector<V> hs((nl + 1) * kChunk), decay(nl * kChunk), gB(nl * kChunk), gC(nl * kChunk);
    for (int64_t task = first; task < last; ++task) {
      T* p_gA = part.data() + task * (nn + 2) * ne;
      T *p_gD = p_gA + nn * ne, *p_gbias = p_gD + ne;
      for (int64_t b = task * s.nb / tasks; b < (task + 1) * s.nb / tasks; ++b) {
        std::fill(gD.begin(), gD.end(), V::fill(0));
        std::fill(gbias.begin(), gbias.end(), V::fill(0));
        prepare(s, b, dts.data(), dus.data());
        rows<W>(s, b, [&](int64_t i, int64_t j, int64_t blk, int64_t t) {  // gate and skip
          V gy = V::load(gout + i);  // -> dL/d<h_t, C_t>
          if (s.z) {
            const V z = V::load(s.z_at(b, t) + blk * W), sg = sigma::sigmoid(z);
            if (g.z) {  // d silu(z) = sg (1 + z (1 - sg))
              const V one = V::fill(1);
              (gy * V::load(y_saved + i) * sg * fma(z, one - sg, one)).store(g.z + i);
            }
            gy = gy * z * sg;
          }
          gD[blk] = fma(gy, V::load(s.u + i), gD[blk]);
          gys[j] = gy, g_a[j] = g_b[j] = V::fill(0);
        });
        chunks<kChunk>(nn, [&](auto k, int64_t n0) {
          constexpr int K = k();
          std::fill(gB.begin(), gB.begin() + nl * K, V::fill(0));
          std::fill(gC.begin(), gC.begin() + nl * K, V::fill(0));
          for (int64_t blk = 0; blk < blocks; ++blk) {
            const V* a2_b = &a2[blk * nn];
            const V *dt_b = &dts[blk * nl], *du_b = &dus[blk * nl];
            chunk_forward<K, V>(s, b, n0, a2_b, dt_b, du_b, nullptr, hs.data(), decay.data());
            chunk_backward<K, V>(s, b, n0, a2_b, dt_b, du_b, &gys[blk * nl], hs.data(), decay.data(),
                              gB.data(), gC.data(), &gA[blk * nn], &g_a[blk * nl], &g_b[blk * nl]);
          }
          for (int64_t t = 0; t < nl; ++t)
            for (int j = 0; j < K; ++j) {
              g.B[s.bc(b, t) + n0 + j] = gB[t * K + j].sum();
              g.C[s.bc(b, t) + n0 + j] = gC[t * K + j].sum();
            }
        });
        rows<W>(s, b, [&](int64_t i, int64_t j, int64_t blk, int64_t) {  // dL/du, dL/ddt
          const int64_t e0 = blk * W;
          fma(g_b[j], dts[j], channel<V>(s.D, e0) * gys[j]).store(g.u + i);
          V gd = fma(g_a[j], V::fill(sigma::kLn2), g_b[j] * V::load(s.u + i));
          if (s.softplus) gd = gd * sigma::sigmoid(V::load(s.dt + i) + channel<V>(s.bias, e0));
          gd.store(g.dt + i);
          gbias[blk] = gbias[blk] + gd;
        });
        for (int64_t blk = 0; blk < blocks; ++blk) {  // sums over the batch
          const int64_t e0 = blk * W;
          for (int64_t n = 0; n < nn; ++n)
            (V::load(p_gA + n * ne + e0) + gA[blk * nn + n]).store(p_gA + n * ne + e0);
          (V::load(p_gD + e0) + gD[blk]).store(p_gD + e0);
          (V::load(p_gbias + e0) + gbias[blk]).store(p_gbias + e0);
        }
      }
    }
  });
  for (int64_t task = 0; task < tasks; ++task) {
    const T* p = part.data() + task * (nn + 2) * ne;
    for (int64_t e = 0; e < ne; ++e) {
      for (int64_t n = 0; n < nn; ++n) g.A[e * nn + n] += p[n * ne + e];
      if (g.D) g.D[e] += p[nn * ne + e];
      if (g.bias) g.bias[e] += p[(nn + 1) * ne + e];
    }
  }
}

using Opt = std::optional<torch::Tensor>;

template <typename T>
const T* ptr(const Opt& t) {
  return t && t->defined() ? t->data_ptr<T>() : nullptr;
}

void check(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), name, " must be a contiguous CPU tensor");
}

// z (Bt, L, E), B and C (Bt, L, N): CPU tensors with unit channel stride; their rows may be
// strided.
void check_rows(const torch::Tensor& t, const char* name, int64_t nb, int64_t nl, int64_t width) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == 3 && (t.stride(2) == 1 || t.size(2) == 1), name,
              " must be a (Bt, L, ·) CPU tensor with unit channel stride");
  TORCH_CHECK(t.size(0) == nb && t.size(1) == nl && t.size(2) == width, name, " has shape ",
              t.sizes(), ", expected (", nb, ", ", nl, ", ", width, ")");
}

template <typename T>
Scan<T> make_scan(const torch::Tensor& u, const torch::Tensor& dt, const torch::Tensor& a2,
                  const torch::Tensor& B, const torch::Tensor& C, const Opt& D, const Opt& z,
                  const Opt& bias, bool softplus) {
  const int64_t zb = z ? z->stride(0) : 0, zt = z ? z->stride(1) : 0;
  return {u.data_ptr<T>(), dt.data_ptr<T>(), a2.data_ptr<T>(), B.data_ptr<T>(), C.data_ptr<T>(),
          ptr<T>(D), ptr<T>(z), ptr<T>(bias), u.size(0), u.size(1), u.size(2), a2.size(0),
          zb, zt, B.stride(0), B.stride(1), C.stride(0), C.stride(1), softplus};
}

// (N, E) layout of A * log2(e): one load per state gives `width` channels.
torch::Tensor scaled_a(const torch::Tensor& A) {
  return (A * sigma::kLog2e).t().contiguous();
}

void check_all(const torch::Tensor& u, const torch::Tensor& dt, const torch::Tensor& A,
               const torch::Tensor& B, const torch::Tensor& C, const Opt& D, const Opt& z,
               const Opt& bias) {
  check(u, "u"), check(dt, "delta"), check(A, "A");
  TORCH_CHECK(u.dim() == 3 && dt.sizes() == u.sizes() && A.dim() == 2 && A.size(0) == u.size(2),
              "u and delta must be (Bt, L, E) and A (E, N)");
  check_rows(B, "B", u.size(0), u.size(1), A.size(1));
  check_rows(C, "C", u.size(0), u.size(1), A.size(1));
  if (D) check(*D, "D");
  if (z) check_rows(*z, "z", u.size(0), u.size(1), u.size(2));
  if (bias) check(*bias, "delta_bias");
}

std::vector<torch::Tensor> forward(torch::Tensor u, torch::Tensor dt, torch::Tensor A,
                                   torch::Tensor B, torch::Tensor C, Opt D, Opt z, Opt bias,
                                   bool softplus, bool save_y, bool portable) {
  check_all(u, dt, A, B, C, D, z, bias);
  auto out = torch::empty_like(u);
  auto y = save_y && z ? torch::empty_like(u) : torch::Tensor();
  const auto a2 = scaled_a(A);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_forward", [&] {
    const auto s = make_scan<scalar_t>(u, dt, a2, B, C, D, z, bias, softplus);
    scalar_t* ys = y.defined() ? y.data_ptr<scalar_t>() : nullptr;
    with_lanes<scalar_t>(s.ne, portable, [&](auto lanes) {
      scan_forward<decltype(lanes)>(s, out.data_ptr<scalar_t>(), ys);
    });
  });
  return {out, y};
}

std::vector<torch::Tensor> backward(torch::Tensor u, torch::Tensor dt, torch::Tensor A,
                                    torch::Tensor B, torch::Tensor C, Opt D, Opt z, Opt bias,
                                    bool softplus, Opt y_saved, torch::Tensor gout, bool portable) {
  check_all(u, dt, A, B, C, D, z, bias);
  check(gout, "grad");
  TORCH_CHECK(!z || (y_saved && y_saved->defined()), "backward with z needs the saved y");
  auto gu = torch::empty_like(u), gdt = torch::empty_like(dt);
  auto gz = z ? torch::empty_like(u) : torch::Tensor();  // contiguous, as gB and gC
  auto gA = torch::zeros_like(A), gB = torch::empty(B.sizes(), B.options()),
       gC = torch::empty(C.sizes(), C.options());
  auto gD = D ? torch::zeros_like(*D) : torch::Tensor();
  auto gbias = bias ? torch::zeros_like(*bias) : torch::Tensor();
  const auto a2 = scaled_a(A);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_backward", [&] {
    const auto s = make_scan<scalar_t>(u, dt, a2, B, C, D, z, bias, softplus);
    auto p = [](torch::Tensor& t) { return t.defined() ? t.data_ptr<scalar_t>() : nullptr; };
    const Grads<scalar_t> g{p(gu), p(gdt), p(gz), p(gA), p(gB), p(gC), p(gD), p(gbias)};
    with_lanes<scalar_t>(s.ne, portable, [&](auto lanes) {
      scan_backward<decltype(lanes)>(s, ptr<scalar_t>(y_saved), gout.data_ptr<scalar_t>(), g);
    });
  });
  return {gu, gdt, gA, gB, gC, gD, gz, gbias};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "fused selective scan forward (CPU, time-major)");
  m.def("backward", &backward, "fused selective scan backward (CPU, time-major)");
  m.def("conv_forward", &sigma::conv_forward, "causal depthwise conv + SiLU forward (CPU, time-major)");
  m.def("conv_backward", &sigma::conv_backward, "causal depthwise conv + SiLU backward (CPU, time-major)");
  m.def("dropout_noise", &sigma::dropout_noise, "torch's CPU dropout noise, drawn faster");
}
