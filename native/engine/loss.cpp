#include "loss.h"

#include <cmath>
#include <string>

#include "errors.h"

namespace fit {

const char* likelihoodName(Likelihood l) {
  switch (l) {
    case Likelihood::Categorical: return "categorical";
    case Likelihood::Bernoulli: return "bernoulli";
    case Likelihood::Gaussian: return "gaussian";
  }
  return "?";
}

namespace {

int64_t batchOf(const Tensor& z) {
  if (z.rank() == 0) throw EngineError(ErrorCode::InvalidInput, "the loss head needs a batched tensor, got a scalar");
  return z.dims[0];
}

double targetAt(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::F32: return t.data<float>()[i];
    case DType::F64: return t.data<double>()[i];
    case DType::I64: return static_cast<double>(t.data<int64_t>()[i]);
  }
  return 0;
}

double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }
double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

}  // namespace

template <typename T>
LossResult<T> lossHead(Likelihood lik, const Tensor& z, const Tensor& target) {
  const int64_t n = batchOf(z);
  const T* zd = z.template data<T>();
  LossResult<T> r;
  r.perSample.assign(static_cast<size_t>(n), 0.0);
  r.grad = Tensor::make(DTypeOf<T>::value, z.dims);
  T* gd = r.grad.template data<T>();
  if (lik == Likelihood::Categorical) {
    const int64_t c = z.dims.back();
    Dims want(z.dims.begin(), z.dims.end() - 1);
    if (z.rank() < 2 || target.dims != want)
      throw EngineError(ErrorCode::InvalidInput, "categorical labels must have dims " + dimsToString(want) +
                                                     " (the logits " + dimsToString(z.dims) +
                                                     " without the class axis) but have " + dimsToString(target.dims));
    const int64_t rows = numelOf(want);
    const int64_t perSample = n ? rows / n : 0;
    for (int64_t r0 = 0; r0 < rows; ++r0) {
      const T* zr = zd + r0 * c;
      T* gr = gd + r0 * c;
      const double yv = targetAt(target, r0);
      const int64_t y = static_cast<int64_t>(yv);
      if (!(yv >= 0) || yv != static_cast<double>(y) || y >= c)
        throw EngineError(ErrorCode::InvalidInput, "label " + std::to_string(yv) + " at position " + std::to_string(r0) +
                                                       " is not a class index in [0, " + std::to_string(c) + ")");
      double m = -INFINITY;
      for (int64_t j = 0; j < c; ++j) m = std::max(m, static_cast<double>(zr[j]));
      double s = 0;
      for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(zr[j]) - m);
      const double lse = m + std::log(s);
      for (int64_t j = 0; j < c; ++j) gr[j] = static_cast<T>(std::exp(static_cast<double>(zr[j]) - lse));
      gr[y] -= T(1);
      r.perSample[static_cast<size_t>(r0 / perSample)] += lse - static_cast<double>(zr[y]);
    }
    return r;
  }
  if (target.dims != z.dims)
    throw EngineError(ErrorCode::InvalidInput, std::string(likelihoodName(lik)) + " targets must have the dims of the output " +
                                                   dimsToString(z.dims) + " but have " + dimsToString(target.dims));
  const int64_t total = z.numel();
  const int64_t perSample = n ? total / n : 0;
  for (int64_t i = 0; i < total; ++i) {
    const double x = zd[i];
    const double t = targetAt(target, i);
    double l, gv;
    if (lik == Likelihood::Bernoulli) {
      if (!(t >= 0 && t <= 1))
        throw EngineError(ErrorCode::InvalidInput, "bernoulli target " + std::to_string(t) + " at position " +
                                                       std::to_string(i) + " is outside [0, 1]");
      l = softplus(x) - t * x;
      gv = sigmoid(x) - t;
    } else {
      const double d = x - t;
      l = 0.5 * d * d;
      gv = d;
    }
    gd[i] = static_cast<T>(gv);
    r.perSample[static_cast<size_t>(i / perSample)] += l;
  }
  return r;
}

template <typename T>
Tensor sampleTargets(Likelihood lik, const Tensor& z, std::mt19937_64& rng) {
  const T* zd = z.template data<T>();
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (lik == Likelihood::Categorical) {
    const int64_t c = z.dims.back();
    Dims dims(z.dims.begin(), z.dims.end() - 1);
    Tensor y = Tensor::make(DType::I64, dims);
    int64_t* yd = y.data<int64_t>();
    const int64_t rows = numelOf(dims);
    for (int64_t r0 = 0; r0 < rows; ++r0) {
      const T* zr = zd + r0 * c;
      double m = -INFINITY;
      for (int64_t j = 0; j < c; ++j) m = std::max(m, static_cast<double>(zr[j]));
      double s = 0;
      for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(zr[j]) - m);
      double pick = u(rng) * s, acc = 0;
      int64_t k = c - 1;
      for (int64_t j = 0; j < c; ++j) {
        acc += std::exp(static_cast<double>(zr[j]) - m);
        if (pick < acc) {
          k = j;
          break;
        }
      }
      yd[r0] = k;
    }
    return y;
  }
  Tensor t = Tensor::make(DTypeOf<T>::value, z.dims);
  T* td = t.template data<T>();
  std::normal_distribution<double> gauss(0.0, 1.0);
  for (int64_t i = 0; i < z.numel(); ++i) {
    if (lik == Likelihood::Bernoulli) td[i] = u(rng) < sigmoid(zd[i]) ? T(1) : T(0);
    else td[i] = static_cast<T>(zd[i] + gauss(rng));
  }
  return t;
}

template LossResult<float> lossHead<float>(Likelihood, const Tensor&, const Tensor&);
template LossResult<double> lossHead<double>(Likelihood, const Tensor&, const Tensor&);
template Tensor sampleTargets<float>(Likelihood, const Tensor&, std::mt19937_64&);
template Tensor sampleTargets<double>(Likelihood, const Tensor&, std::mt19937_64&);

}  // namespace fit
