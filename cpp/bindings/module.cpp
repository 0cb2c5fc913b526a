// rnnkit._core: the compiled core. Each area registers itself from its own file.
#include "common.hpp"

namespace rnnkit_bind {
void register_rnn(py::module_& m);
void register_config(py::module_& m);
void register_stream(py::module_& m);
void register_train(py::module_& m);
}  // namespace rnnkit_bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkit's C++ core (private; use the rnnkit package)";
  rnnkit_bind::register_rnn(m);
  rnnkit_bind::register_config(m);
  rnnkit_bind::register_stream(m);
  rnnkit_bind::register_train(m);
}
