// Binds configuration: threads, instruction-set dispatch, and build information.
#include <pybind11/stl.h>

#include <string>

#include "common.hpp"
#include "rnnkit/dispatch.hpp"
#include "rnnkit/packing.hpp"
#include "rnnkit/thread_pool.hpp"

namespace rnnkit_bind {

void register_config(py::module_& m) {
  m.def(
      "round_bf16",
      [](py::array_t<float, py::array::c_style | py::array::forcecast> a) {
        py::array_t<float> out(a.request().shape);
        const float* src = a.data();
        float* dst = out.mutable_data();
        for (py::ssize_t i = 0; i < a.size(); ++i) dst[i] = rnnkit::from_bf16(rnnkit::to_bf16(src[i]));
        return out;
      },
      py::arg("a"), "float32 values rounded to the nearest bfloat16 (ties to even), as float32.");
  m.def(
      "activate",
      [](const std::string& name, py::array_t<float, py::array::c_style | py::array::forcecast> a, double alpha,
         double beta) {
        const rnnkit::ActSpec f = activation_spec("[activate] name", name, alpha, beta);
        if (a.size() > (py::ssize_t(1) << 30)) throw std::invalid_argument("[activate] array too large");
        py::array_t<float> out(a.request().shape);
        const float* src = a.data();
        float* dst = out.mutable_data();
        const auto n = a.size();
        {
          py::gil_scoped_release nogil;
          rnnkit::active_kernels().activate_f32(f, src, dst, int(n));
        }
        return out;
      },
      py::arg("name"), py::arg("a"), py::arg("alpha") = 0.0, py::arg("beta") = 0.0,
      "The active kernels' float32 activation `name` (with its alpha, beta) applied to an array "
      "(for tests).");
  m.def("get_num_threads", &rnnkit::get_num_threads, "Threads the core uses (the caller included).");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw std::invalid_argument("[set_num_threads] n must be >= 1; got " + std::to_string(n));
        rnnkit::set_num_threads(n);
      },
      py::arg("n"));
  m.def("physical_cores", &rnnkit::physical_cores);
  m.def("threads_pinned", &rnnkit::threads_pinned, "Whether the workers are pinned (RNNKIT_PIN_THREADS=1).");
  m.def("isa", [] { return std::string(rnnkit::active_kernels().isa); }, "The kernel build in use.");
  m.def("isa_reason", &rnnkit::active_isa_reason, "Why that build was chosen.");
  m.def("amx_status", &rnnkit::amx_status, "Whether the amx kernels can run here, and why.");
  m.def(
      "bf16_info",
      [] {
        const rnnkit::Kernels& k = rnnkit::active_kernels();
        py::dict d;
        d["max_rows"] = k.packed_f32 ? k.bf16_max_rows : 0;
        d["rounds_h"] = k.packed_f32 && k.bf16_rounds_h;
        d["tiles"] = k.packed_f32 && k.bf16_tiles;
        d["input"] = !k.packed_f32 || k.bf16_input == 0 ? "float32" : "bfloat16";
        d["products"] = !k.packed_f32 ? "float32 (bfloat16-valued weights, no packs on this ISA)"
                        : k.bf16_tiles
                            ? "AMX tiles (TDPBF16PS), VDPBF16PS at batch 1: bfloat16 weights x h rounded to "
                              "bfloat16, x rounded to bfloat16, float32 sums and states"
                        : k.bf16_rounds_h ? "VDPBF16PS: bfloat16 weights x h and x rounded to bfloat16, float32 sums"
                                          : "bfloat16 weights widened to float32, float32 h and sums";
        return d;
      },
      "How the active kernels compute with bfloat16 weights.");
  m.def("set_isa", &rnnkit::set_isa, py::arg("name"));
  m.def("compiled_isas", &rnnkit::compiled_isas);
  m.def("available_isas", &rnnkit::available_isas);
  m.def("build_info", [] {
    py::dict d;
    d["version"] = RNNKIT_VERSION;
#if defined(__clang__)
    d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = std::string("gcc ") + __VERSION__;
#else
    d["compiler"] = "unknown";
#endif
    d["eigen_version"] = RNNKIT_EIGEN_VERSION;
    d["cxx_flags"] = RNNKIT_CXX_FLAGS;
    d["isa_flags"] = RNNKIT_ISA_FLAGS;
    return d;
  });
}

}  // namespace rnnkit_bind
