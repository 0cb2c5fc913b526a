// Binds the recurrent stack: _core.RNNf32 / _core.RNNf64 and their forward caches.
// Inputs are validated here (again: the Python layer validates first, with friendlier
// messages), then the GIL is released around the core call.
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "rnnkit/rnn_stack.hpp"
#include "stream_binding.hpp"

namespace rnnkit_bind {

using rnnkit::ActSpec;
using rnnkit::Activation;
using rnnkit::CellKind;

namespace {

// (name, alpha, beta), the Python layer's form of every activation argument, or a name alone
// for the functions without parameters.
ActSpec parse_activation(const py::object& spec, const char* arg) {
  const std::string where = std::string("[RNN] ") + arg;
  if (py::isinstance<py::str>(spec)) {
    const ActSpec a = activation_spec(where, spec.cast<std::string>(), 0, 0);
    if (a.f == Activation::HardSigmoid || a.f == Activation::Affine || a.f == Activation::LeakyRelu ||
        a.f == Activation::ThresholdedRelu || a.f == Activation::ScaledTanh || a.f == Activation::Elu)
      throw std::invalid_argument(where + " '" + spec.cast<std::string>() +
                                  "' has parameters: pass (name, alpha, beta)");
    return a;
  }
  if (!py::isinstance<py::tuple>(spec) || py::len(spec) != 3 || !py::isinstance<py::str>(spec[py::int_(0)]))
    throw std::invalid_argument(where + " must be a name or a tuple (name, alpha, beta)");
  const auto t = spec.cast<py::tuple>();
  return activation_spec(where, t[0].cast<std::string>(), t[1].cast<double>(), t[2].cast<double>());
}

template <class T>
struct Cache {
  rnnkit::StackCache<T> c;
};

template <class T>
class RNN {
 public:
  RNN(const std::string& cell, int input_size, int hidden_size, int num_layers, bool bidirectional,
      int proj_size, bool bias, bool reset_after, bool peephole, const py::object& activation,
      const py::object& recurrent_activation, const py::list& weights, const py::object& cell_activation,
      double clip, bool input_forget, bool reverse) {
    rnnkit::CellSpec& s = spec_.cell;
    if (cell == "LSTM")
      s.kind = CellKind::LSTM;
    else if (cell == "GRU")
      s.kind = CellKind::GRU;
    else if (cell == "RNN")
      s.kind = CellKind::RNN;
    else
      throw std::invalid_argument("[RNN] cell must be 'LSTM', 'GRU' or 'RNN'; got '" + cell + "'");
    if (input_size < 1 || hidden_size < 1 || num_layers < 1 || proj_size < 0)
      throw std::invalid_argument("[RNN] sizes must be positive");
    if (proj_size > 0 && (s.kind != CellKind::LSTM || proj_size >= hidden_size))
      throw std::invalid_argument("[RNN] proj_size must be 0 or in 1..hidden_size-1 (LSTM only)");
    if ((peephole || input_forget) && s.kind != CellKind::LSTM)
      throw std::invalid_argument("[RNN] peephole and input_forget exist only for LSTM");
    if (!(clip >= 0) || !std::isfinite(clip))
      throw std::invalid_argument("[RNN] clip must be 0 (none) or a positive number");
    if (reverse && bidirectional)
      throw std::invalid_argument("[RNN] reverse is for one direction; bidirectional runs both");
    s.input_size = input_size;
    s.hidden_size = hidden_size;
    s.proj_size = proj_size;
    s.has_bias = bias;
    s.reset_after = reset_after;
    s.peephole = peephole;
    s.input_forget = input_forget;
    s.clip = clip;
    s.act = parse_activation(activation, "activation");
    s.ract = parse_activation(recurrent_activation, "recurrent_activation");
    s.cact = cell_activation.is_none() ? s.act : parse_activation(cell_activation, "cell_activation");
    spec_.num_layers = num_layers;
    spec_.num_dirs = bidirectional ? 2 : 1;
    spec_.reverse = reverse;

    std::vector<rnnkit::DirWeights<T>> w;
    size_t k = 0;
    for_each_param([&](int ld, const char* name, std::vector<py::ssize_t> shape, auto slot) {
      if (k >= weights.size())
        throw std::invalid_argument("[RNN] weights: expected " + std::to_string(param_count()) +
                                    " arrays, got " + std::to_string(weights.size()));
      auto a = exact_array<T>("RNN", std::string(name) + "[" + std::to_string(ld) + "]", weights[k++], false);
      bool ok = a.ndim() == py::ssize_t(shape.size());
      for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
      if (!ok)
        throw std::invalid_argument(std::string("[RNN] ") + name + " of layer-direction " +
                                    std::to_string(ld) + " has shape " + shape_str(a) + "; wrong size");
      if (size_t(ld) >= w.size()) w.resize(ld + 1);
      w[ld].*slot = a.data();
      keep_.push_back(a);
    });
    if (k != weights.size())
      throw std::invalid_argument("[RNN] weights: expected " + std::to_string(param_count()) +
                                  " arrays, got " + std::to_string(weights.size()));
    stack_ = std::make_unique<rnnkit::Stack<T>>(spec_, std::move(w));
  }

  py::tuple forward(const py::object& x_obj, const py::object& h0_obj, const py::object& c0_obj,
                    const py::object& lengths_obj, const py::object& masks_obj, bool train,
                    const py::object& reuse, const py::object& h_masks_obj, const py::object& x_masks_obj) {
    const rnnkit::CellSpec& s = spec_.cell;
    const bool lstm = s.kind == CellKind::LSTM;
    const int L = spec_.num_layers, D = spec_.num_dirs, H = s.hidden_size, Ho = s.out_size();
    auto x = carray<T>(x_obj);
    if (x.ndim() != 3 || x.shape(2) != s.input_size || x.shape(0) < 1 || x.shape(1) < 1)
      throw std::invalid_argument("[RNN.forward] x has shape " + shape_str(x) +
                                  "; expected (T, B, " + std::to_string(s.input_size) + ") with T, B >= 1");
    const py::ssize_t T_ = x.shape(0), B = x.shape(1);
    std::optional<CArray<T>> h0, c0, masks, h_masks, x_masks;
    std::optional<CArray<int32_t>> lengths;
    if (!h0_obj.is_none()) {
      h0 = carray<T>(h0_obj);
      check_shape("RNN.forward", "h0", *h0, {L * D, B, Ho});
    }
    if (!c0_obj.is_none()) {
      if (!lstm) throw std::invalid_argument("[RNN.forward] c0 given to a GRU or RNN");
      c0 = carray<T>(c0_obj);
      check_shape("RNN.forward", "c0", *c0, {L * D, B, H});
    }
    if (!lengths_obj.is_none()) {
      lengths = carray<int32_t>(lengths_obj);
      check_shape("RNN.forward", "lengths", *lengths, {B});
      for (py::ssize_t b = 0; b < B; ++b) {
        const int32_t v = lengths->data()[b];
        if (v < 1 || v > T_)
          throw std::invalid_argument("[RNN.forward] lengths[" + std::to_string(b) + "] = " +
                                      std::to_string(v) + "; expected 1.." + std::to_string(T_));
      }
    }
    if (!masks_obj.is_none() && L > 1) {
      masks = carray<T>(masks_obj);
      check_shape("RNN.forward", "masks", *masks, {L - 1, T_, B, D * Ho});
    }
    if (!h_masks_obj.is_none()) {
      if (!train) throw std::invalid_argument("[RNN.forward] h_masks (recurrent dropout) is for training forwards only");
      h_masks = carray<T>(h_masks_obj);
      check_shape("RNN.forward", "h_masks", *h_masks, {L * D, s.gates(), B, Ho});
    }
    if (!x_masks_obj.is_none()) {
      if (!train) throw std::invalid_argument("[RNN.forward] x_masks (per-gate input dropout) is for training forwards only");
      x_masks = carray<T>(x_masks_obj);
      check_shape("RNN.forward", "x_masks", *x_masks, {D, s.gates(), B, s.input_size});
    }
    CArray<T> y({T_, B, py::ssize_t(D * Ho)});
    CArray<T> hn({py::ssize_t(L * D), B, py::ssize_t(Ho)});
    std::optional<CArray<T>> cn;
    if (lstm) cn = CArray<T>({py::ssize_t(L * D), B, py::ssize_t(H)});
    // A training forward may reuse the memory of a cache whose backward is done (`reuse`),
    // so that steady-state training allocates nothing.
    py::object cache_obj = py::none();
    rnnkit::StackCache<T>* cache = nullptr;
    if (train) {
      if (!reuse.is_none() && py::isinstance<Cache<T>>(reuse) &&
          (reuse.cast<Cache<T>&>().c.owner == stack_.get() || !reuse.cast<Cache<T>&>().c.owner))
        cache_obj = reuse;
      else
        cache_obj = py::cast(std::make_unique<Cache<T>>());
      cache = &cache_obj.cast<Cache<T>&>().c;
    }
    {
      py::gil_scoped_release nogil;
      rnnkit::SeqShape seq{int(T_), int(B), lengths ? lengths->data() : nullptr};
      stack_->forward(x.data(), seq, h0 ? h0->data() : nullptr, c0 ? c0->data() : nullptr,
                      rnnkit::StackDropout<T>{masks ? masks->data() : nullptr, x_masks ? x_masks->data() : nullptr,
                                              h_masks ? h_masks->data() : nullptr},
                      y.mutable_data(), hn.mutable_data(),
                      cn ? cn->mutable_data() : nullptr, cache);
    }
    return py::make_tuple(y, hn, cn ? py::object(*cn) : py::none(), cache_obj);
  }

  py::tuple backward(const Cache<T>& cache, const py::object& dy_obj, const py::object& dhn_obj,
                     const py::object& dcn_obj, const py::list& grads, bool need_dx) {
    const rnnkit::CellSpec& s = spec_.cell;
    const bool lstm = s.kind == CellKind::LSTM;
    const int L = spec_.num_layers, D = spec_.num_dirs, H = s.hidden_size, Ho = s.out_size();
    if (cache.c.owner != stack_.get())
      throw std::invalid_argument("[RNN.backward] the cache was made by a different module");
    const py::ssize_t T_ = cache.c.steps, B = cache.c.batch;
    auto dy = carray<T>(dy_obj);
    check_shape("RNN.backward", "dy", dy, {T_, B, D * Ho});
    std::optional<CArray<T>> dhn, dcn;
    if (!dhn_obj.is_none()) {
      dhn = carray<T>(dhn_obj);
      check_shape("RNN.backward", "dh_n", *dhn, {L * D, B, Ho});
    }
    if (!dcn_obj.is_none()) {
      if (!lstm) throw std::invalid_argument("[RNN.backward] dc_n given to a GRU or RNN");
      dcn = carray<T>(dcn_obj);
      check_shape("RNN.backward", "dc_n", *dcn, {L * D, B, H});
    }
    std::vector<rnnkit::DirGrads<T>> g;
    std::vector<py::array_t<T>> keep;
    size_t k = 0;
    for_each_param([&](int ld, const char* name, std::vector<py::ssize_t> shape, auto slot) {
      if (k >= grads.size())
        throw std::invalid_argument("[RNN.backward] grads: expected " + std::to_string(param_count()) + " arrays");
      auto a = exact_array<T>("RNN.backward", std::string("grad of ") + name, grads[k++], true);
      bool ok = a.ndim() == py::ssize_t(shape.size());
      for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
      if (!ok) throw std::invalid_argument(std::string("[RNN.backward] grad of ") + name + " has shape " + shape_str(a));
      if (size_t(ld) >= g.size()) g.resize(ld + 1);
      g[ld].*grad_slot_impl(slot) = a.mutable_data();
      keep.push_back(a);
    });
    if (k != grads.size())
      throw std::invalid_argument("[RNN.backward] grads: expected " + std::to_string(param_count()) + " arrays");
    std::optional<CArray<T>> dx;
    if (need_dx) dx = CArray<T>({T_, B, py::ssize_t(s.input_size)});
    CArray<T> dh0({py::ssize_t(L * D), B, py::ssize_t(Ho)});
    std::optional<CArray<T>> dc0;
    if (lstm) dc0 = CArray<T>({py::ssize_t(L * D), B, py::ssize_t(H)});
    {
      py::gil_scoped_release nogil;
      stack_->backward(cache.c, dy.data(), dhn ? dhn->data() : nullptr, dcn ? dcn->data() : nullptr,
                       dx ? dx->mutable_data() : nullptr, dh0.mutable_data(), dc0 ? dc0->mutable_data() : nullptr,
                       g);
    }
    return py::make_tuple(dx ? py::object(*dx) : py::none(), dh0, dc0 ? py::object(*dc0) : py::none());
  }

  bool freeze(bool bf16) { return stack_->freeze(bf16); }
  void thaw() { stack_->thaw(); }
  const rnnkit::Stack<T>& stack() const { return *stack_; }

  int param_count() const {
    int n = 0;
    for_each_param([&](int, const char*, std::vector<py::ssize_t>, auto) { ++n; });
    return n;
  }

 private:
  using WSlot = const T* rnnkit::DirWeights<T>::*;

  // Maps a DirWeights member to the DirGrads member of the same name.
  static T* rnnkit::DirGrads<T>::*grad_slot_impl(WSlot w) {
    using W = rnnkit::DirWeights<T>;
    using G = rnnkit::DirGrads<T>;
    if (w == &W::w_ih) return &G::w_ih;
    if (w == &W::w_hh) return &G::w_hh;
    if (w == &W::b_ih) return &G::b_ih;
    if (w == &W::b_hh) return &G::b_hh;
    if (w == &W::w_hr) return &G::w_hr;
    return &G::peep;
  }

  // The parameter arrays in the order the Python layer passes them: for each layer and
  // direction, w_ih, w_hh, [b_ih, b_hh], [w_hr], [peephole].
  template <class F>
  void for_each_param(F&& f) const {
    const rnnkit::CellSpec& s = spec_.cell;
    const py::ssize_t G = s.gates() * s.hidden_size, H = s.hidden_size, Ho = s.out_size();
    for (int l = 0; l < spec_.num_layers; ++l) {
      const py::ssize_t in = spec_.layer(l).input_size;
      for (int d = 0; d < spec_.num_dirs; ++d) {
        const int ld = l * spec_.num_dirs + d;
        f(ld, "weight_ih", std::vector<py::ssize_t>{G, in}, WSlot(&rnnkit::DirWeights<T>::w_ih));
        f(ld, "weight_hh", std::vector<py::ssize_t>{G, Ho}, WSlot(&rnnkit::DirWeights<T>::w_hh));
        if (s.has_bias) {
          f(ld, "bias_ih", std::vector<py::ssize_t>{G}, WSlot(&rnnkit::DirWeights<T>::b_ih));
          f(ld, "bias_hh", std::vector<py::ssize_t>{G}, WSlot(&rnnkit::DirWeights<T>::b_hh));
        }
        if (s.proj_size > 0)
          f(ld, "weight_hr", std::vector<py::ssize_t>{Ho, H}, WSlot(&rnnkit::DirWeights<T>::w_hr));
        if (s.peephole)
          f(ld, "weight_peephole", std::vector<py::ssize_t>{3 * H}, WSlot(&rnnkit::DirWeights<T>::peep));
      }
    }
  }

  rnnkit::StackSpec spec_;
  std::vector<py::array_t<T>> keep_;  // the parameter arrays the stack reads in place
  std::unique_ptr<rnnkit::Stack<T>> stack_;
};

template <class T>
void register_type(py::module_& m, const char* rnn_name, const char* cache_name) {
  py::class_<Cache<T>>(m, cache_name, "What a training-mode forward keeps for backward.");
  py::class_<RNN<T>>(m, rnn_name)
      .def(py::init<const std::string&, int, int, int, bool, int, bool, bool, bool, const py::object&,
                    const py::object&, const py::list&, const py::object&, double, bool, bool>(),
           py::arg("cell"), py::arg("input_size"), py::arg("hidden_size"), py::arg("num_layers"),
           py::arg("bidirectional"), py::arg("proj_size"), py::arg("bias"), py::arg("reset_after"),
           py::arg("peephole"), py::arg("activation"), py::arg("recurrent_activation"),
           py::arg("weights"), py::kw_only(), py::arg("cell_activation") = py::none(),
           py::arg("clip") = 0.0, py::arg("input_forget") = false, py::arg("reverse") = false)
      .def("forward", &RNN<T>::forward, py::arg("x"), py::arg("h0"), py::arg("c0"),
           py::arg("lengths"), py::arg("masks"), py::arg("train"), py::arg("reuse") = py::none(),
           py::arg("h_masks") = py::none(), py::arg("x_masks") = py::none())
      .def("backward", &RNN<T>::backward, py::arg("cache"), py::arg("dy"), py::arg("dh_n"),
           py::arg("dc_n"), py::arg("grads"), py::arg("need_dx") = true)
      .def("freeze", &RNN<T>::freeze, py::arg("bf16") = false,
           "Repack the weights for inference (in bfloat16 if bf16); they must not change until "
           "thaw(). Returns whether the active kernels use the packs.")
      .def("thaw", &RNN<T>::thaw)
      .def(
          "stream_bank",
          [](py::object self, int64_t capacity, bool all_in_use, py::object convert, py::object convert_ids) {
            const rnnkit::Stack<T>& stack = self.cast<RNN<T>&>().stack();
            return make_stream_bank<T>(self, stack, capacity, all_in_use, convert, convert_ids);
          },
          py::arg("capacity"), py::arg("all_in_use"), py::arg("convert"), py::arg("convert_ids"),
          "States of `capacity` streams of this stack (see register_stream.cpp).")
      .def_property_readonly("param_count", &RNN<T>::param_count);
}

}  // namespace

void register_rnn(py::module_& m) {
  register_type<float>(m, "RNNf32", "ForwardCachef32");
  register_type<double>(m, "RNNf64", "ForwardCachef64");
}

}  // namespace rnnkit_bind
