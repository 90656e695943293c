// torch's CPU dropout masks, drawn faster (dropout_cpu.cpp).
#pragma once

#include <torch/extension.h>

namespace sigma {

// The noise of F.dropout(x, p) on CPU for a contiguous x of `numel` elements: `scale` (torch's
// 1 / (1 - p)) where torch's Bernoulli(keep_prob = 1 - p) draw keeps the element, else 0;
// drawn from the default CPU generator, which is left as torch's own draw leaves it.
torch::Tensor dropout_noise(int64_t numel, double keep_prob, double scale);

}  // namespace sigma
