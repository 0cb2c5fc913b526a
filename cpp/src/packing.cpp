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

}  // namespace rnnkit
