// Recurrent weights repacked for the SIMD kernels, gate-interleaved by blocks of 16 hidden
// units so that one pass over a block yields every gate of those units:
//
//   P[ub][k][g*16 + j] = U[g*H + ub*16 + j][k]     (zero for units ub*16 + j >= H)
//
// shape (ceil(H/16), K, G*16), K = Hout. A thread that owns a block can run the pointwise
// cell update for its units without waiting for anyone else.
#pragma once

#include <cstddef>

namespace rnnkit {

constexpr int kUnitBlock = 16;

inline int unit_blocks(int H) { return (H + kUnitBlock - 1) / kUnitBlock; }

inline std::size_t packed_recurrent_size(int gates, int H, int K) {
  return std::size_t(unit_blocks(H)) * K * gates * kUnitBlock;
}

// U (gates*H, K) row-major -> P as above. P must hold packed_recurrent_size floats.
void pack_recurrent(const float* U, int gates, int H, int K, float* P);

}  // namespace rnnkit
