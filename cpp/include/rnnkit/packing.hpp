// Recurrent weights repacked for the SIMD kernels, gate-interleaved by blocks of 16 hidden
// units so that one pass over a block yields every gate of those units:
//
//   P[ub][k][g*16 + j] = U[g*H + ub*16 + j][k]     (zero for units ub*16 + j >= H)
//
// shape (ceil(H/16), K, G*16), K = Hout. A thread that owns a block can run the pointwise
// cell update for its units without waiting for anyone else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rnnkit {

constexpr int kUnitBlock = 16;

inline int unit_blocks(int H) { return (H + kUnitBlock - 1) / kUnitBlock; }

inline std::size_t packed_recurrent_size(int gates, int H, int K) {
  return std::size_t(unit_blocks(H)) * K * gates * kUnitBlock;
}

// U (gates*H, K) row-major -> P as above. P must hold packed_recurrent_size elements.
// For float and double (the generic kernels read double packs of w_ih).
template <class T>
void pack_recurrent(const T* U, int gates, int H, int K, T* P);

// bfloat16: the top 16 bits of a float32. Rounds to nearest, ties to even; NaN stays NaN
// (quiet), and values beyond the largest bfloat16 round to infinity, as in PyTorch.
inline std::uint16_t to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return std::uint16_t(u >> 16);
}
inline float from_bf16(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The same blocks in bfloat16, half the bytes, in one of three layouts (the kernels of each
// instruction set say which one they stream, Kernels::bf16_layout). A block holds
// bf16_rows(K, layout) rows (K rounded up to even, or to a multiple of 32; padding rows are zero).
enum class Bf16Layout : int {
  // Within each 16-unit chunk of a row, 32-bit lane i holds unit i in its low half and unit
  // i + 8 in its high half, so that one 256-bit load becomes the chunk's two float vectors
  // with one shift and one mask (AVX2): element (k, c) of the float layout lives at index
  // bf16_index(k*W + c) of the block.
  Chunk16 = 0,
  // Rows k and k + 1 interleaved: element (k, c) at index ((k/2)*W + c)*2 + k%2, so that a
  // 512-bit load holds 16 columns' pairs for one VDPBF16PS (AVX512-BF16).
  KPair = 1,
  // KPair with K padded to a multiple of 32: 16 pair rows of a 16-column chunk are one AMX B
  // tile (TDPBF16PS's "VNNI" layout, 64 bytes a row, rows W*4 bytes apart).
  KPair32 = 2,
};

inline int bf16_rows(int K, Bf16Layout layout) {
  return layout == Bf16Layout::KPair32 ? (K + 31) / 32 * 32 : K + (K & 1);
}

inline std::size_t packed_recurrent_size_bf16(int gates, int H, int K, Bf16Layout layout) {
  return std::size_t(unit_blocks(H)) * bf16_rows(K, layout) * gates * kUnitBlock;
}

inline std::size_t bf16_index(std::size_t i) {
  const std::size_t j = i % kUnitBlock;
  return i - j + (j < 8 ? 2 * j : 2 * (j - 8) + 1);
}
void pack_recurrent_bf16(const float* U, int gates, int H, int K, Bf16Layout layout,
                         std::uint16_t* P);

}  // namespace rnnkit
