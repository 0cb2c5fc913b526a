#include "rnnkit/packing.hpp"

#include <cstdint>

namespace rnnkit {

void pack_recurrent(const float* U, int gates, int H, int K, float* P) {
  const int W = gates * kUnitBlock;
  for (int ub = 0; ub < unit_blocks(H); ++ub)
    for (int g = 0; g < gates; ++g)
      for (int j = 0; j < kUnitBlock; ++j) {
        const int u = ub * kUnitBlock + j;
        float* dst = P + std::size_t(ub) * K * W + g * kUnitBlock + j;
        if (u < H) {
          const float* src = U + (std::int64_t(g) * H + u) * K;
          for (int k = 0; k < K; ++k) dst[std::size_t(k) * W] = src[k];
        } else {
          for (int k = 0; k < K; ++k) dst[std::size_t(k) * W] = 0.0f;
        }
      }
}

void pack_recurrent_bf16(const float* U, int gates, int H, int K, std::uint16_t* P) {
  const int W = gates * kUnitBlock;
  for (int ub = 0; ub < unit_blocks(H); ++ub)
    for (int g = 0; g < gates; ++g)
      for (int j = 0; j < kUnitBlock; ++j) {
        const int u = ub * kUnitBlock + j;
        std::uint16_t* block = P + std::size_t(ub) * K * W;
        for (int k = 0; k < K; ++k)
          block[bf16_index(std::size_t(k) * W + g * kUnitBlock + j)] =
              u < H ? to_bf16(U[(std::int64_t(g) * H + u) * K + k]) : std::uint16_t(0);
      }
}

}  // namespace rnnkit

