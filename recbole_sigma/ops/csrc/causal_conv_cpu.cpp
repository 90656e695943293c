// Causal depthwise Conv1d + SiLU over time-major (Bt, L, E) rows, mamba_ssm's causal_conv1d math:
//   pre_t = bias + sum_k w_k x_{t-K+1+k} (x_s = 0 for s < 0);  out_t = silu(pre_t).
// A task takes whole sequences; `width` channels go in one vector. The backward computes pre_t
// again instead of storing it.
#include "causal_conv_cpu.h"

#include <ATen/Parallel.h>

#include "lanes.h"

namespace sigma {
namespace {

template <typename T>
struct Conv {
  const T *x, *w, *bias;  // w: (K, E), the weight transposed; bias may be null
  int64_t nb, nl, ne, nk, xb, xt;  // xb, xt: x's batch and time strides

  const T* row(int64_t b, int64_t t) const { return x + b * xb + t * xt; }
};

// pre_t of one sequence's channel block e0, into pre[t] for every t.
template <class V, typename T>
void conv_rows(const Conv<T>& c, int64_t b, int64_t e0, V* pre) {
  const V bias = c.bias ? V::load(c.bias + e0) : V::fill(0);
  for (int64_t t = 0; t < c.nl; ++t) {
    V acc = bias;
    for (int64_t k = std::max<int64_t>(0, c.nk - 1 - t); k < c.nk; ++k)
      acc = fma(V::load(c.w + k * c.ne + e0), V::load(c.row(b, t - c.nk + 1 + k) + e0), acc);
    pre[t] = acc;
  }
}

template <class V, typename T = typename V::Scalar>
void forward(const Conv<T>& c, T* out) {
  constexpr int W = V::width;
  at::parallel_for(0, c.nb, 1, [&](int64_t begin, int64_t end) {
    std::vector<V> pre(c.nl);
    for (int64_t b = begin; b < end; ++b)
      for (int64_t e0 = 0; e0 < c.ne; e0 += W) {
        conv_rows(c, b, e0, pre.data());
        for (int64_t t = 0; t < c.nl; ++t)
          (pre[t] * sigmoid(pre[t])).store(out + (b * c.nl + t) * c.ne + e0);
      }
  });
}

template <class V, typename T = typename V::Scalar>
void backward(const Conv<T>& c, const T* gout, T* gx, T* gw, T* gbias) {
  constexpr int W = V::width;
  const int64_t tasks = std::min<int64_t>(c.nb, at::get_num_threads());
  std::vector<T> part(tasks * (c.nk + 1) * c.ne, T(0));  // per task: dL/dw (K, E), dL/dbias (E)
  const int64_t blocks = c.ne / W, nk = c.nk;
  at::parallel_for(0, tasks, 1, [&](int64_t first, int64_t last) {
    const V one = V::fill(1);
    std::vector<V> g(c.nl), acc(blocks * (nk + 1));  // per block: dL/dw_k (K), dL/dbias
    for (int64_t task = first; task < last; ++task) {
      std::fill(acc.begin(), acc.end(), V::fill(0));
      for (int64_t b = task * c.nb / tasks; b < (task + 1) * c.nb / tasks; ++b)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t e0 = blk * W;
          V* gw_b = &acc[blk * (nk + 1)];
          conv_rows(c, b, e0, g.data());
          for (int64_t t = 0; t < c.nl; ++t) {  // dL/dpre_t = dL/dout_t sg (1 + pre (1 - sg))
            const V sg = sigmoid(g[t]);
            g[t] = V::load(gout + (b * c.nl + t) * c.ne + e0) * sg * fma(g[t], one - sg, one);
            gw_b[nk] = gw_b[nk] + g[t];
            for (int64_t k = std::max<int64_t>(0, nk - 1 - t); k < nk; ++k)
              gw_b[k] = fma(g[t], V::load(c.row(b, t - nk + 1 + k) + e0), gw_b[k]);
          }
          for (int64_t s = 0; s < c.nl; ++s) {  // dL/dx_s = sum_k w_k dL/dpre_{s+K-1-k}
            V gs = V::fill(0);
            for (int64_t k = std::max<int64_t>(0, s + nk - c.nl); k < nk; ++k)
              gs = fma(V::load(c.w + k * c.ne + e0), g[s + nk - 1 - k], gs);
            gs.store(gx + (b * c.nl + s) * c.ne + e0);
          }
        }
      T* p = part.data() + task * (nk + 1) * c.ne;
      for (int64_t blk = 0; blk < blocks; ++blk)
        for (int64_t k = 0; k <= nk; ++k) acc[blk * (nk + 1) + k].store(p + k * c.ne + blk * W);
    }
  });
  for (int64_t task = 0; task < tasks; ++task) {
    const T* p = part.data() + task * (c.nk + 1) * c.ne;
    for (int64_t e = 0; e < c.ne; ++e) {
      for (int64_t k = 0; k < c.nk; ++k) gw[e * c.nk + k] += p[k * c.ne + e];
      if (gbias) gbias[e] += p[c.nk * c.ne + e];
    }
  }
}

void check_inputs(const torch::Tensor& x, const torch::Tensor& weight,
                  const std::optional<torch::Tensor>& bias) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 3 && x.stride(2) == 1,
              "x must be a (Bt, L, E) CPU tensor with contiguous channels");
  TORCH_CHECK(weight.dim() == 2 && weight.size(0) == x.size(2), "weight must be (E, K)");
  TORCH_CHECK(!bias || (bias->dim() == 1 && bias->size(0) == x.size(2)), "bias must be (E)");
}

template <typename T>
Conv<T> make_conv(const torch::Tensor& x, const torch::Tensor& wt,
                  const std::optional<torch::Tensor>& bias) {
  const T* b = bias && bias->defined() ? bias->data_ptr<T>() : nullptr;
  return {x.data_ptr<T>(), wt.data_ptr<T>(), b, x.size(0), x.size(1), x.size(2), wt.size(0),
          x.stride(0), x.stride(1)};
}

}  // namespace

torch::Tensor conv_forward(const torch::Tensor& x, const torch::Tensor& weight,
                           const std::optional<torch::Tensor>& bias, bool portable) {
  check_inputs(x, weight, bias);
  auto out = torch::empty({x.size(0), x.size(1), x.size(2)}, x.options());
  const auto wt = weight.t().contiguous();
  const auto b = bias ? std::optional<torch::Tensor>(bias->contiguous()) : std::nullopt;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv_forward", [&] {
    const auto c = make_conv<scalar_t>(x, wt, b);
    with_lanes<scalar_t>(c.ne, portable, [&](auto lanes) {
      forward<decltype(lanes)>(c, out.data_ptr<scalar_t>());
    });
  });
  return out;
}

std::vector<torch::Tensor> conv_backward(const torch::Tensor& x, const torch::Tensor& weight,
                                         const std::optional<torch::Tensor>& bias,
                                         const torch::Tensor& gout, bool portable) {
  check_inputs(x, weight, bias);
  TORCH_CHECK(gout.is_contiguous() && gout.sizes() == x.sizes(), "grad must be contiguous, as x");
  auto gx = torch::empty(gout.sizes(), x.options());
  auto gw = torch::zeros({weight.size(0), weight.size(1)}, x.options());
  auto gbias = bias ? torch::zeros_like(*bias) : torch::Tensor();
  const auto wt = weight.t().contiguous();
  const auto b = bias ? std::optional<torch::Tensor>(bias->contiguous()) : std::nullopt;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv_backward", [&] {
    const auto c = make_conv<scalar_t>(x, wt, b);
    scalar_t* gb = gbias.defined() ? gbias.data_ptr<scalar_t>() : nullptr;
    with_lanes<scalar_t>(c.ne, portable, [&](auto lanes) {
      backward<decltype(lanes)>(c, gout.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(),
                                gw.data_ptr<scalar_t>(), gb);
    });
  });
  return {gx, gw, gbias};
}

}  // namespace sigma
