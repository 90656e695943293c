// Mamba's causal depthwise Conv1d with SiLU, time-major, for CPU (causal_conv_cpu.cpp).
#pragma once

#include <torch/extension.h>

#include <optional>
#include <vector>

namespace sigma {

// x (Bt, L, E), rows may be strided (a slice of in_proj's output); weight (E, K); bias (E) or
// none. Returns silu(conv) (Bt, L, E).
torch::Tensor conv_forward(const torch::Tensor& x, const torch::Tensor& weight,
                           const std::optional<torch::Tensor>& bias, bool portable);

// dL/dx (Bt, L, E), dL/dweight (E, K), dL/dbias (E) or undefined, from dL/dout (Bt, L, E).
std::vector<torch::Tensor> conv_backward(const torch::Tensor& x, const torch::Tensor& weight,
                                         const std::optional<torch::Tensor>& bias,
                                         const torch::Tensor& gout, bool portable);

}  // namespace sigma
