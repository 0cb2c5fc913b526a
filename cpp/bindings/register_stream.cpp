// Binds stream banks: _core.StreamBankf32 / _core.StreamBankf64 (made by RNN.stream_bank).
//
// The step calls are the lean path of a serving loop, one Python call per time step: arguments
// arrive as plain handles; an array that already is what the core reads (C-contiguous, aligned,
// the module's dtype, native byte order) is used in place after a few flag and shape checks,
// anything else goes through the Python layer's conversion (convert), which applies the same
// rules as the module call. The only allocation is the output array, or none with out=.
//
// The GIL is released around a step only when its work is large enough to repay it: releasing
// and re-taking it costs about as much as a whole small step (measured in bench/bench_stream.py:
// LSTM 16->64 at batch 1 computes in well under a microsecond), and a step that keeps it gives
// other Python threads nothing they could use meanwhile.
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "rnnkit/stream_bank.hpp"
#include "stream_binding.hpp"

namespace rnnkit_bind {

namespace {

namespace npy = py::detail;
using Api = npy::npy_api;

// Multiply-adds of one step below which a step keeps the GIL (see the file comment).
constexpr double kGilFreeMacs = 150'000;

constexpr int kReadable = Api::NPY_ARRAY_C_CONTIGUOUS_ | Api::NPY_ARRAY_ALIGNED_;
constexpr int kWritable = kReadable | Api::NPY_ARRAY_WRITEABLE_;

// Whether h is a numpy array with these flags and exactly dtype d (native byte order included).
inline bool exact(py::handle h, py::handle d, int flags) {
  const Api& api = Api::get();
  if (!api.PyArray_Check_(h.ptr())) return false;
  const npy::PyArray_Proxy* p = npy::array_proxy(h.ptr());
  return (p->flags & flags) == flags && (p->descr == d.ptr() || api.PyArray_EquivTypes_(p->descr, d.ptr()));
}

inline const npy::PyArray_Proxy* proxy(py::handle h) { return npy::array_proxy(h.ptr()); }

std::string dims_str(py::handle h) {
  const npy::PyArray_Proxy* p = proxy(h);
  std::string s = "(";
  for (int i = 0; i < p->nd; ++i) s += (i ? ", " : "") + std::to_string(p->dimensions[i]);
  return s + (p->nd == 1 ? ",)" : ")");
}

template <class T>
class Bank {
 public:
  Bank(py::object owner, const rnnkit::Stack<T>& stack, int64_t capacity, bool all_in_use,
       py::object convert, py::object convert_ids)
      : owner_(std::move(owner)),
        bank_(stack, capacity, all_in_use),
        convert_(std::move(convert)),
        convert_ids_(std::move(convert_ids)),
        dtype_(py::dtype::of<T>()),
        dtype_ids_(py::dtype::of<int64_t>()) {
    const rnnkit::StackSpec& s = stack.spec();
    N_ = capacity;
    L_ = s.num_layers;
    I_ = s.cell.input_size;
    H_ = s.cell.hidden_size;
    Ho_ = s.cell.out_size();
    lstm_ = s.cell.kind == rnnkit::CellKind::LSTM;
    row_macs_ = 0;
    for (int l = 0; l < L_; ++l)
      row_macs_ += double(s.cell.gates()) * H_ * (s.layer(l).input_size + Ho_) + (s.cell.proj_size ? double(H_) * Ho_ : 0);
  }

  // Stream.step: every slot, in order. x (N, I), or (I,) when N = 1; returns y (N, Ho) / (Ho,).
  py::object step_all(py::handle x_in, py::handle out) {
    py::object keep;
    const py::handle x = input(x_in, keep);
    const npy::PyArray_Proxy* p = proxy(x);
    const bool flat = p->nd == 1;
    if (!((p->nd == 2 && p->dimensions[0] == N_ && p->dimensions[1] == I_) ||
          (flat && N_ == 1 && p->dimensions[0] == I_)))
      throw std::invalid_argument("[Stream.step] x has shape " + dims_str(x) + "; expected (" +
                                  std::to_string(N_) + ", " + std::to_string(I_) + ") (batch, input_size)" +
                                  (N_ == 1 ? " or (" + std::to_string(I_) + ",)" : ""));
    const py::ssize_t dims[2] = {flat ? py::ssize_t(Ho_) : py::ssize_t(N_), py::ssize_t(Ho_)};
    py::object y = output(out, flat ? 1 : 2, dims, "Stream.step");
    const T* xp = reinterpret_cast<const T*>(p->data);
    T* yp = reinterpret_cast<T*>(proxy(y)->data);
    if (N_ * row_macs_ >= kGilFreeMacs) {
      py::gil_scoped_release nogil;
      bank_.step(nullptr, N_, xp, yp);
    } else {
      bank_.step(nullptr, N_, xp, yp);
    }
    return y;
  }

  // StreamBank.step: ids (n,), x (n, I); returns y (n, Ho).
  py::object step(py::handle ids_in, py::handle x_in, py::handle out) {
    py::object keep_ids, keep_x;
    const py::handle ids = input_ids(ids_in, keep_ids, "StreamBank.step");
    const int64_t n = proxy(ids)->dimensions[0];
    const py::handle x = input(x_in, keep_x);
    const npy::PyArray_Proxy* p = proxy(x);
    if (!(p->nd == 2 && p->dimensions[0] == n && p->dimensions[1] == I_))
      throw std::invalid_argument("[StreamBank.step] x has shape " + dims_str(x) + "; expected (" +
                                  std::to_string(n) + ", " + std::to_string(I_) +
                                  "): one row of input_size per id");
    const py::ssize_t dims[2] = {py::ssize_t(n), py::ssize_t(Ho_)};
    py::object y = output(out, 2, dims, "StreamBank.step");
    if (n == 0) return y;
    const int64_t* ip = reinterpret_cast<const int64_t*>(proxy(ids)->data);
    const T* xp = reinterpret_cast<const T*>(p->data);
    T* yp = reinterpret_cast<T*>(proxy(y)->data);
    if (n * row_macs_ >= kGilFreeMacs) {
      py::gil_scoped_release nogil;
      bank_.step(ip, n, xp, yp);
    } else {
      bank_.step(ip, n, xp, yp);
    }
    return y;
  }

  // Stream.run: x (T, N, I) time-major; returns y (T, N, Ho).
  py::object run(py::handle x_in) {
    py::object keep;
    const py::handle x = input(x_in, keep);
    const npy::PyArray_Proxy* p = proxy(x);
    if (!(p->nd == 3 && p->dimensions[0] >= 1 && p->dimensions[1] == N_ && p->dimensions[2] == I_))
      throw std::invalid_argument("[Stream.run] x has shape " + dims_str(x) + "; expected (T, " +
                                  std::to_string(N_) + ", " + std::to_string(I_) + ") with T >= 1");
    const int steps = int(p->dimensions[0]);
    CArray<T> y({py::ssize_t(steps), py::ssize_t(N_), py::ssize_t(Ho_)});
    const T* xp = reinterpret_cast<const T*>(p->data);
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      bank_.run(steps, xp, yp);
    }
    return std::move(y);
  }

  int64_t add() { return bank_.add(); }

  void release(py::handle ids_in) {
    py::object keep;
    const py::handle ids = input_ids(ids_in, keep, "StreamBank.free");
    bank_.release(reinterpret_cast<const int64_t*>(proxy(ids)->data), proxy(ids)->dimensions[0]);
  }

  void reset(py::handle ids_in) {
    if (ids_in.is_none()) return bank_.reset(nullptr, 0);
    py::object keep;
    const py::handle ids = input_ids(ids_in, keep, "StreamBank.reset");
    bank_.reset(reinterpret_cast<const int64_t*>(proxy(ids)->data), proxy(ids)->dimensions[0]);
  }

  // id >= 0: one slot, h (L, Ho), c (L, H); id = -1: every slot, h (L, N, Ho), c (L, N, H).
  py::tuple get_state(int64_t id) {
    check_id(id, "state");
    std::vector<py::ssize_t> hs{L_}, cs{L_};
    if (id < 0) {
      hs.push_back(N_);
      cs.push_back(N_);
    }
    hs.push_back(Ho_);
    cs.push_back(H_);
    CArray<T> h(hs);
    std::optional<CArray<T>> c;
    if (lstm_) c = CArray<T>(cs);
    bank_.get_state(id, h.mutable_data(), c ? c->mutable_data() : nullptr);
    return py::make_tuple(h, c ? py::object(*c) : py::none());
  }

  void set_state(int64_t id, py::handle h, py::handle c) {
    check_id(id, "set_state");
    const int64_t n = id < 0 ? N_ : 1;
    auto check = [&](py::handle a, const char* name, int64_t width) {
      if (!exact(a, dtype_, kReadable) || proxy(a)->nd != 3 || proxy(a)->dimensions[0] != L_ ||
          proxy(a)->dimensions[1] != n || proxy(a)->dimensions[2] != width)
        throw std::invalid_argument(std::string("[set_state] ") + name + ": expected a C-contiguous (" +
                                    std::to_string(L_) + ", " + std::to_string(n) + ", " +
                                    std::to_string(width) + ") array of the module's dtype");
    };
    check(h, "h", Ho_);
    if (lstm_) check(c, "c", H_);
    bank_.set_state(id, reinterpret_cast<const T*>(proxy(h)->data),
                    lstm_ ? reinterpret_cast<const T*>(proxy(c)->data) : nullptr);
  }

  int64_t capacity() const { return N_; }
  int64_t num_free() const { return bank_.num_free(); }
  py::array_t<int64_t> in_use() const {
    const std::vector<int64_t> v = bank_.in_use();
    py::array_t<int64_t> a(py::ssize_t(v.size()));
    if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(int64_t));
    return a;
  }

 private:
  // x itself when the core can read it in place, else convert(x) (kept alive by keep).
  py::handle input(py::handle x, py::object& keep) const {
    if (exact(x, dtype_, kReadable)) return x;
    keep = convert_(x);
    if (!exact(keep, dtype_, kReadable)) throw py::type_error("[stream] convert returned an unusable array");
    return keep;
  }

  py::handle input_ids(py::handle ids, py::object& keep, const char* fn) const {
    py::handle a = ids;
    if (!exact(ids, dtype_ids_, kReadable) || proxy(ids)->nd != 1) {
      keep = convert_ids_(ids);
      a = keep;
      if (!exact(a, dtype_ids_, kReadable) || proxy(a)->nd != 1)
        throw py::type_error(std::string("[") + fn + "] ids: convert returned an unusable array");
    }
    const int64_t* ip = reinterpret_cast<const int64_t*>(proxy(a)->data);
    for (py::ssize_t i = 0; i < proxy(a)->dimensions[0]; ++i)
      if (ip[i] < 0 || ip[i] >= N_)
        throw std::invalid_argument(std::string("[") + fn + "] ids[" + std::to_string(i) + "] = " +
                                    std::to_string(ip[i]) + " is not a stream id of this bank (0.." +
                                    std::to_string(N_ - 1) + ")");
    return a;
  }

  void check_id(int64_t id, const char* fn) const {
    if (id < -1 || id >= N_)
      throw std::invalid_argument(std::string("[") + fn + "] id " + std::to_string(id) +
                                  " is not a stream id of this bank (0.." + std::to_string(N_ - 1) + ")");
  }

  // A new (dims) array, or out after checking that it is exactly that.
  py::object output(py::handle out, int nd, const py::ssize_t* dims, const char* fn) const {
    if (out.is_none()) {
      const Api& api = Api::get();
      Py_INCREF(dtype_.ptr());  // stolen by PyArray_NewFromDescr
      PyObject* a = api.PyArray_NewFromDescr_(api.PyArray_Type_, dtype_.ptr(), nd, dims, nullptr, nullptr, 0, nullptr);
      if (!a) throw py::error_already_set();
      return py::reinterpret_steal<py::object>(a);
    }
    bool ok = exact(out, dtype_, kWritable) && proxy(out)->nd == nd;
    for (int i = 0; ok && i < nd; ++i) ok = proxy(out)->dimensions[i] == dims[i];
    if (!ok) {
      std::string want = "(";
      for (int i = 0; i < nd; ++i) want += (i ? ", " : "") + std::to_string(dims[i]);
      want += nd == 1 ? ",)" : ")";
      const std::string got = Api::get().PyArray_Check_(out.ptr()) ? "shape " + dims_str(out) : "no numpy array";
      throw py::type_error(std::string("[") + fn + "] out must be a writeable C-contiguous " +
                           py::str(dtype_).cast<std::string>() + " array of shape " + want + "; got " + got);
    }
    return py::reinterpret_borrow<py::object>(out);
  }

  py::object owner_;  // the _core.RNN whose stack the bank steps
  rnnkit::StreamBank<T> bank_;
  py::object convert_, convert_ids_;
  py::dtype dtype_, dtype_ids_;
  int64_t N_;
  int L_, I_, H_, Ho_;
  bool lstm_;
  double row_macs_;  // multiply-adds of one row's step, all layers
};

template <class T>
void register_type(py::module_& m, const char* name) {
  py::class_<Bank<T>>(m, name, "States of N streams of one module, in the core (rnnkit.Stream, rnnkit.StreamBank).")
      .def("step_all", &Bank<T>::step_all, py::arg("x"), py::arg("out") = py::none())
      .def("step", &Bank<T>::step, py::arg("ids"), py::arg("x"), py::arg("out") = py::none())
      .def("run", &Bank<T>::run, py::arg("x"))
      .def("add", &Bank<T>::add)
      .def("release", &Bank<T>::release, py::arg("ids"))
      .def("reset", &Bank<T>::reset, py::arg("ids") = py::none())
      .def("get_state", &Bank<T>::get_state, py::arg("id"))
      .def("set_state", &Bank<T>::set_state, py::arg("id"), py::arg("h"), py::arg("c"))
      .def_property_readonly("capacity", &Bank<T>::capacity)
      .def_property_readonly("num_free", &Bank<T>::num_free)
      .def_property_readonly("in_use", &Bank<T>::in_use);
}

}  // namespace

template <class T>
py::object make_stream_bank(py::object owner, const rnnkit::Stack<T>& stack, int64_t capacity,
                            bool all_in_use, py::object convert, py::object convert_ids) {
  return py::cast(new Bank<T>(std::move(owner), stack, capacity, all_in_use, std::move(convert),
                              std::move(convert_ids)),
                  py::return_value_policy::take_ownership);
}

template py::object make_stream_bank<float>(py::object, const rnnkit::Stack<float>&, int64_t, bool,
                                            py::object, py::object);
template py::object make_stream_bank<double>(py::object, const rnnkit::Stack<double>&, int64_t, bool,
                                             py::object, py::object);

void register_stream(py::module_& m) {
  register_type<float>(m, "StreamBankf32");
  register_type<double>(m, "StreamBankf64");
  // The floors of a step call (bench/bench_stream.py): the same arguments, no work.
  m.def(
      "_noop", [](py::handle x, py::handle) { return py::reinterpret_borrow<py::object>(x); },
      py::arg("x"), py::arg("out") = py::none(), "Returns x: a bound call with step's arguments, no work.");
  m.def(
      "_noop_nogil",
      [](py::handle x, py::handle) {
        { py::gil_scoped_release nogil; }
        return py::reinterpret_borrow<py::object>(x);
      },
      py::arg("x"), py::arg("out") = py::none(), "As _noop, releasing and re-taking the GIL once.");
}

}  // namespace rnnkit_bind
