// regbench fused optimizer steps (FusedSGD, FusedAdamW) with elastic net folded in.
// Declarations for the pybind11 module block in kernels.cpp; definitions in optim.cpp.
#pragma once

// at::Tensor alone, not <torch/extension.h>: this unit compiles in ~4 s instead of ~26 s (the
// first run of a fused cell waits for the build); kernels.cpp holds the pybind11 bindings.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace regbench_optim {

// One pass per element over (param, grad, momentum buffer): see optim.cpp for the exact
// operation order (torch.optim.SGD's single-tensor update after grad += l2*p + l1*sign(p)).
// Returns the indices of the tensors it skipped (not contiguous float32/float64 CPU tensors
// with matching grad and state): the caller runs the reference on those. fma32 / fma64: round
// torch's multiply-adds as one FMA (what torch's vectorized CPU kernels do) for that dtype.
std::vector<int64_t> sgd_multi(const std::vector<at::Tensor>& params,
                               const std::vector<at::Tensor>& grads,
                               const std::vector<at::Tensor>& bufs, double lr,
                               double momentum, double dampening, bool nesterov,
                               double weight_decay, double l2, double l1, bool init_bufs,
                               bool fma32, bool fma64, int64_t isa);

// One pass per element over (param, grad, exp_avg, exp_avg_sq); steps[i] (0-dim float32 or
// float64) is incremented first, as torch.optim.Adam does.
std::vector<int64_t> adamw_multi(const std::vector<at::Tensor>& params,
                                 const std::vector<at::Tensor>& grads,
                                 const std::vector<at::Tensor>& exp_avgs,
                                 const std::vector<at::Tensor>& exp_avg_sqs,
                                 const std::vector<at::Tensor>& steps, double lr,
                                 double beta1, double beta2, double eps, double weight_decay,
                                 bool decoupled, double l2, double l1, bool fma32, bool fma64,
                                 bool torch_sqrt, int64_t isa);

}  // namespace regbench_optim
