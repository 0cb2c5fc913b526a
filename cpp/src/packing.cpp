#include "rnnkit/packing.hpp"

#include <cstdint>

namespace rnnkit {

template <class T>
void pack_recurrent(const T* U, int gates, int H, int K, T* P) {
  const int W = gates * kUnitBlock;
  for (int ub = 0; ub < unit_blocks(H); ++ub)
    for (int g = 0; g < gates; ++g)
      for (int j = 0; j < kUnitBlock; ++j) {
        const int u = ub * kUnitBlock + j;
        T* dst = P + std::size_t(ub) * K * W + g * kUnitBlock + j;
        if (u < H) {
          const T* src = U + (std::int64_t(g) * H + u) * K;
          for (int k = 0; k < K; ++k) dst[std::size_t(k) * W] = src[k];
        } else {
          for (int k = 0; k < K; ++k) dst[std::size_t(k) * W] = T(0);
        }
      }
}
template void pack_recurrent<float>(const float*, int, int, int, float*);
template void pack_recurrent<double>(const double*, int, int, int, double*);

void pack_recurrent_bf16(const float* U, int gates, int H, int K, Bf16Layout layout,
                         std::uint16_t* P) {
  const int W = gates * kUnitBlock, Ke = bf16_rows(K, layout);
  for (int ub = 0; ub < unit_blocks(H); ++ub) {
    std::uint16_t* block = P + std::size_t(ub) * Ke * W;
    for (int g = 0; g < gates; ++g)
      for (int j = 0; j < kUnitBlock; ++j) {
        const int u = ub * kUnitBlock + j, c = g * kUnitBlock + j;
        for (int k = 0; k < Ke; ++k) {
          const std::uint16_t v =
              (u < H && k < K) ? to_bf16(U[(std::int64_t(g) * H + u) * K + k]) : std::uint16_t(0);
          if (layout != Bf16Layout::Chunk16)
            block[(std::size_t(k / 2) * W + c) * 2 + k % 2] = v;
          else
            block[bf16_index(std::size_t(k) * W + c)] = v;
        }
      }
  }
}

}  // namespace rnnkit

