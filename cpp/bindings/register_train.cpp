// Binds the training loop's helpers on the core's threads: _core.matmul (the Dense layers'
// products) and _core.update (one optimizer step over every parameter in one call). Every
// argument is checked before anything is written, then the GIL is released around the work.
#include <string>
#include <vector>

#include "common.hpp"
#include "rnnkit/dispatch.hpp"
#include "rnnkit/kernels.hpp"
#include "rnnkit/thread_pool.hpp"

namespace rnnkit_bind {

namespace {

bool overlaps(const py::array& a, const py::array& b) {
  const auto* a0 = static_cast<const char*>(a.data());
  const auto* b0 = static_cast<const char*>(b.data());
  return a.nbytes() && b.nbytes() && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

bool same_shape(const py::array& a, const py::array& b) {
  if (a.ndim() != b.ndim()) return false;
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) != b.shape(i)) return false;
  return true;
}

template <class T>
void matmul_typed(const py::handle& a_obj, const py::handle& b_obj, const py::handle& out_obj,
                  bool trans_a, bool trans_b, bool accumulate) {
  const char* fn = "matmul";
  auto a = exact_array<T>(fn, "a", a_obj, false);
  auto b = exact_array<T>(fn, "b", b_obj, false);
  auto out = exact_array<T>(fn, "out", out_obj, true);
  for (const py::array* arr : {(const py::array*)&a, (const py::array*)&b, (const py::array*)&out})
    if (arr->ndim() != 2) throw std::invalid_argument("[matmul] a, b and out must be 2-D; got " + shape_str(*arr));
  const int64_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0), N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb)
    throw std::invalid_argument("[matmul] op(a) is (" + std::to_string(M) + ", " + std::to_string(K) +
                                ") and op(b) (" + std::to_string(Kb) + ", " + std::to_string(N) +
                                "): inner sizes differ");
  check_shape(fn, "out", out, {py::ssize_t(M), py::ssize_t(N)});
  if (overlaps(out, a) || overlaps(out, b)) throw std::invalid_argument("[matmul] out overlaps a or b");
  rnnkit::MatmulArgs<T> args;
  args.a = a.data();
  args.lda = a.shape(1);
  args.trans_a = trans_a;
  args.b = b.data();
  args.ldb = b.shape(1);
  args.trans_b = trans_b;
  args.out = out.mutable_data();
  args.ldo = N;
  args.M = M;
  args.N = N;
  args.K = K;
  args.accumulate = accumulate;
  const auto& kernels = rnnkit::active_kernels();
  py::gil_scoped_release nogil;
  args.threads = rnnkit::get_num_threads();
  kernels.table<T>().matmul(args);
}

rnnkit::UpdateRule parse_rule(const std::string& rule) {
  if (rule == "sgd") return rnnkit::UpdateRule::SGD;
  if (rule == "adam") return rnnkit::UpdateRule::Adam;
  if (rule == "rmsprop") return rnnkit::UpdateRule::RMSprop;
  throw std::invalid_argument("[update] rule must be 'sgd', 'adam' or 'rmsprop'; got '" + rule + "'");
}

// The slot arrays each rule reads, in UpdateArgs's order (s0, s1, s2), and whether each must
// be present (else it selects a variant: momentum, amsgrad, centered).
struct SlotName {
  const char* name;
  bool required;
};
std::vector<SlotName> slot_names(rnnkit::UpdateRule rule) {
  switch (rule) {
    case rnnkit::UpdateRule::SGD: return {{"momentum", false}};
    case rnnkit::UpdateRule::Adam: return {{"m", true}, {"v", true}, {"v_hat", false}};
    case rnnkit::UpdateRule::RMSprop: return {{"velocity", true}, {"momentum", false}, {"average_gradient", false}};
  }
  return {};
}

template <class T>
void update_typed(rnnkit::UpdateRule rule, const py::list& params, const py::list& grads, const py::list& slots,
                  const rnnkit::UpdateArgs<T>& scalars) {
  const char* fn = "update";
  const std::size_t n = params.size();
  if (grads.size() != n || slots.size() != n)
    throw std::invalid_argument("[update] params, grads and slots must have the same length; got " +
                                std::to_string(n) + ", " + std::to_string(grads.size()) + " and " +
                                std::to_string(slots.size()));
  const auto names = slot_names(rule);
  std::vector<rnnkit::UpdateArgs<T>> steps(n, scalars);
  std::vector<py::array> keep;  // the arrays stay referenced while the GIL is released
  for (std::size_t k = 0; k < n; ++k) {
    const std::string at = "[" + std::to_string(k) + "]";
    auto p = exact_array<T>(fn, "params" + at, params[k], true);
    auto g = exact_array<T>(fn, "grads" + at, grads[k], false);
    if (!same_shape(g, p) || overlaps(p, g))
      throw std::invalid_argument("[update] grads" + at + " has shape " + shape_str(g) + " or shares memory; params" +
                                  at + " has " + shape_str(p));
    if (!py::isinstance<py::dict>(slots[k])) throw py::type_error("[update] slots" + at + " must be a dict");
    const auto d = slots[k].cast<py::dict>();
    for (auto item : d) {
      const std::string key = py::str(item.first);
      bool known = false;
      for (const auto& s : names) known = known || key == s.name;
      if (!known) throw std::invalid_argument("[update] slots" + at + " has '" + key + "', unknown to this rule");
    }
    T* s[3] = {nullptr, nullptr, nullptr};
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (!d.contains(names[i].name)) {
        if (names[i].required)
          throw std::invalid_argument("[update] slots" + at + " lacks '" + names[i].name + "'");
        continue;
      }
      auto a = exact_array<T>(fn, "slots" + at + "['" + names[i].name + "']", d[names[i].name], true);
      if (!same_shape(a, p) || overlaps(a, p) || overlaps(a, g))
        throw std::invalid_argument("[update] slots" + at + "['" + names[i].name + "'] has shape " + shape_str(a) +
                                    " or shares memory; params" + at + " has " + shape_str(p));
      s[i] = a.mutable_data();
      keep.push_back(a);
    }
    auto& st = steps[k];
    st.rule = rule;
    st.p = p.mutable_data();
    st.g = g.data();
    st.n = p.size();
    st.s0 = s[0];
    st.s1 = s[1];
    st.s2 = s[2];
    keep.push_back(p);
    keep.push_back(g);
  }
  const auto& kernels = rnnkit::active_kernels();
  py::gil_scoped_release nogil;
  for (const auto& st : steps) kernels.table<T>().update(st);
}

bool is_dtype(const py::handle& o, const py::dtype& dt) {
  return py::isinstance<py::array>(o) && py::reinterpret_borrow<py::array>(o).dtype().equal(dt);
}

}  // namespace

void register_train(py::module_& m) {
  m.def(
      "matmul",
      [](const py::object& a, const py::object& b, const py::object& out, bool trans_a, bool trans_b,
         bool accumulate) {
        if (is_dtype(a, py::dtype::of<float>()))
          matmul_typed<float>(a, b, out, trans_a, trans_b, accumulate);
        else if (is_dtype(a, py::dtype::of<double>()))
          matmul_typed<double>(a, b, out, trans_a, trans_b, accumulate);
        else
          throw py::type_error("[matmul] a must be a float32 or float64 numpy array");
      },
      py::arg("a"), py::arg("b"), py::arg("out"), py::kw_only(), py::arg("trans_a") = false,
      py::arg("trans_b") = false, py::arg("accumulate") = false,
      "out = op(a) @ op(b) (+= with accumulate), op transposing when trans_*: C-contiguous 2-D arrays "
      "of one dtype, on the core's threads.");
  m.def(
      "update",
      [](const std::string& rule_name, const py::list& params, const py::list& grads, const py::list& slots,
         double lr, double decay, double beta_1, double beta_2, double alpha, double rho, double momentum,
         double epsilon, bool nesterov) {
        const auto rule = parse_rule(rule_name);
        if (params.size() == 0) return;
        auto fill = [&](auto& s) {
          s.lr = lr;
          s.decay = decay;
          s.one_minus_b1 = 1.0 - beta_1;
          s.one_minus_b2 = 1.0 - beta_2;
          s.alpha = alpha;
          s.rho = rho;
          s.one_minus_rho = 1.0 - rho;
          s.momentum = momentum;
          s.eps = epsilon;
          s.nesterov = nesterov;
        };
        if (is_dtype(params[0], py::dtype::of<float>())) {
          rnnkit::UpdateArgs<float> s;
          fill(s);
          update_typed<float>(rule, params, grads, slots, s);
        } else if (is_dtype(params[0], py::dtype::of<double>())) {
          rnnkit::UpdateArgs<double> s;
          fill(s);
          update_typed<double>(rule, params, grads, slots, s);
        } else {
          throw py::type_error("[update] params[0] must be a float32 or float64 numpy array");
        }
      },
      py::arg("rule"), py::arg("params"), py::arg("grads"), py::arg("slots"), py::kw_only(), py::arg("lr"),
      py::arg("decay") = 1.0, py::arg("beta_1") = 0.0, py::arg("beta_2") = 0.0, py::arg("alpha") = 0.0,
      py::arg("rho") = 0.0, py::arg("momentum") = 0.0, py::arg("epsilon") = 0.0, py::arg("nesterov") = false,
      "One optimizer step over every parameter, in place, as rnnkit.optimizers defines it.");
}

}  // namespace rnnkit_bind
