// The recurrent kernels, compiled once per instruction set (see CMakeLists.txt).
//
// Each build lives in its own namespace, rnnkit::isa_<name>, and renames Eigen's namespace the
// same way: Eigen is header-only, so without the rename the linker would merge the AVX-512
// and baseline instantiations of the same Eigen template into one, and the baseline path could
// end up executing AVX-512 code. Nothing here is shared between builds except plain C structs.
#define RNNKIT_PASTE2(a, b) a##b
#define RNNKIT_PASTE(a, b) RNNKIT_PASTE2(a, b)
#define RNNKIT_ISA_NS RNNKIT_PASTE(isa_, RNNKIT_ISA_NAME)
#define Eigen RNNKIT_PASTE(Eigen_rnnkit_, RNNKIT_ISA_NAME)
#define RNNKIT_STR2(a) #a
#define RNNKIT_STR(a) RNNKIT_STR2(a)

#include "kernels/gru_cell.hpp"
#include "kernels/lstm_cell.hpp"
#include "kernels/rnn_cell.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

template <class T>
void forward(const ForwardArgs<T>& a) {
  switch (a.spec.kind) {
    case CellKind::LSTM: return lstm_forward(a);
    case CellKind::GRU: return gru_forward(a);
    case CellKind::RNN: return rnn_forward(a);
  }
}

template <class T>
void backward(const BackwardArgs<T>& a) {
  switch (a.spec.kind) {
    case CellKind::LSTM: return lstm_backward(a);
    case CellKind::GRU: return gru_backward(a);
    case CellKind::RNN: return rnn_backward(a);
  }
}

const Kernels& kernels() {
  static const Kernels k{RNNKIT_STR(RNNKIT_ISA_NAME), RNNKIT_PACKED_KERNELS != 0,
                         kBf16Layout, kBf16MaxRows, kBf16RoundsH, kBf16Tiles, kBf16Input,
                         {&forward<float>, &backward<float>},
                         {&forward<double>, &backward<double>},
                         &activate<float>};
  return k;
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
