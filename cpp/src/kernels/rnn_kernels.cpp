// The kernels, compiled once per instruction set (see CMakeLists.txt and isa_namespace.hpp):
// the recurrent cells' forward and backward, and the dense products and optimizer updates of
// the training loop around them.
#include "kernels/isa_namespace.hpp"
#include "kernels/gru_cell.hpp"
#include "kernels/lstm_cell.hpp"
#include "kernels/rnn_cell.hpp"
#include "kernels/updates.hpp"

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
                         {&forward<float>, &backward<float>, &matmul<float>, &update<float>},
                         {&forward<double>, &backward<double>, &matmul<double>, &update<double>},
                         &activate<float>};
  return k;
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
