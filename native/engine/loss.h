// Loss heads (DESIGN.md "Numerical contract"): the negative log-likelihood l_i of each sample and
// its gradient with respect to the head's input z. Sample i is index i of axis 0; every other
// position of the sample adds to l_i.
//   categorical: z are logits with classes on the last axis; target holds class indices with the
//                dims of z minus the last axis. l = logsumexp(z) - z_y; dl/dz = softmax(z) - onehot(y).
//   bernoulli:   z are logits of a Sigmoid; target in [0,1], dims of z. l = softplus(z) - y z;
//                dl/dz = sigmoid(z) - y.
//   gaussian:    z is the output; target has the dims of z. l = 0.5 (z - t)^2; dl/dz = z - t.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tensor.h"

namespace fit {

enum class Likelihood { Categorical = 0, Bernoulli = 1, Gaussian = 2 };

const char* likelihoodName(Likelihood l);

template <typename T>
struct LossResult {
  std::vector<double> perSample;  // l_i
  Tensor grad;                    // dL/dz for L = sum_i l_i, dtype T, dims of z
};

// target: any numeric tensor (int64 class indices, or float targets); validated against z.
template <typename T>
LossResult<T> lossHead(Likelihood lik, const Tensor& z, const Tensor& target);

// Draws targets from the model's own predictive distribution at z (label-free Fisher):
// categorical y ~ softmax(z) (int64 indices), bernoulli y ~ Bernoulli(sigmoid(z)) (0/1 as T),
// gaussian t = z + N(0, 1) (as T).
template <typename T>
Tensor sampleTargets(Likelihood lik, const Tensor& z, std::mt19937_64& rng);

}  // namespace fit
