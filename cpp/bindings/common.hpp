// Helpers shared by the binding files: argument conversion and shape checks that raise
// ValueError/TypeError with the function's name, the argument, what was expected and given.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rnnkit/spec.hpp"

namespace rnnkit_bind {

namespace py = pybind11;

template <class T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// o as a C-contiguous array of T whose data is aligned for T: numpy lets a C-contiguous array
// start at any byte (np.frombuffer(buf, offset=1)), which the core may not read as T. Such an
// array is copied; anything else is used as py::cast makes it (in place when it already fits).
template <class T>
CArray<T> carray(const py::handle& o) {
  auto a = py::cast<CArray<T>>(o);
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) == 0) return a;
  CArray<T> copy(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  if (a.size()) std::memcpy(copy.mutable_data(), a.data(), std::size_t(a.size()) * sizeof(T));
  return copy;
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string shape_str(std::initializer_list<py::ssize_t> shape) {
  std::string s = "(";
  size_t i = 0;
  for (auto d : shape) s += (i++ ? ", " : "") + std::to_string(d);
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline void check_shape(const char* fn, const char* name, const py::array& a,
                        std::initializer_list<py::ssize_t> shape) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  py::ssize_t i = 0;
  for (auto d : shape) ok = ok && a.shape(i++) == d;
  if (!ok)
    throw std::invalid_argument(std::string("[") + fn + "] " + name + " has shape " + shape_str(a) +
                                "; expected " + shape_str(shape));
}

// A C-contiguous array of exactly dtype T, used in place (weights, gradients): never a copy.
template <class T>
py::array_t<T> exact_array(const char* fn, const std::string& name, const py::handle& o,
                           bool writeable) {
  if (!py::isinstance<py::array_t<T, py::array::c_style>>(o))
    throw py::type_error(std::string("[") + fn + "] " + name + " must be a C-contiguous " +
                         py::str(py::dtype::of<T>()).cast<std::string>() + " numpy array");
  auto a = py::reinterpret_borrow<py::array_t<T>>(o);
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw std::invalid_argument(std::string("[") + fn + "] " + name + " must be aligned for its dtype (it is used in place)");
  if (writeable && !a.writeable())
    throw std::invalid_argument(std::string("[") + fn + "] " + name + " must be writeable");
  return a;
}

// The activation called `name` with its parameters; `where` prefixes the error messages.
inline rnnkit::ActSpec activation_spec(const std::string& where, const std::string& name, double alpha,
                                       double beta) {
  using rnnkit::Activation;
  static const std::pair<const char*, Activation> names[] = {
      {"tanh", Activation::Tanh},
      {"relu", Activation::Relu},
      {"sigmoid", Activation::Sigmoid},
      {"linear", Activation::Linear},
      {"hard_sigmoid", Activation::HardSigmoid},
      {"affine", Activation::Affine},
      {"leaky_relu", Activation::LeakyRelu},
      {"thresholded_relu", Activation::ThresholdedRelu},
      {"scaled_tanh", Activation::ScaledTanh},
      {"elu", Activation::Elu},
      {"softsign", Activation::Softsign},
      {"softplus", Activation::Softplus}};
  if (!std::isfinite(alpha) || !std::isfinite(beta))
    throw std::invalid_argument(where + " parameters must be finite");
  for (const auto& [n, f] : names)
    if (name == n) return rnnkit::ActSpec{f, alpha, beta};
  std::string known;
  for (const auto& [n, f] : names) known += (known.empty() ? "'" : ", '") + std::string(n) + "'";
  throw std::invalid_argument(where + " must be one of " + known + "; got '" + name + "'");
}

}  // namespace rnnkit_bind
