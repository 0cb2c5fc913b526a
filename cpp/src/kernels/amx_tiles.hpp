// The AMX tile operations the amx kernels use, behind one small interface: the hardware
// instructions (LDTILECFG, TILELOADD, TDPBF16PS, TILESTORED, TILEZERO, TILERELEASE), or, in a
// build configured with RNNKIT_AMX_EMULATION=ON, the same operations written out in C++ from
// the instruction set reference, so that the tile kernels' packing, blocking and bookkeeping
// are tested on CPUs without AMX (the emulated build is for tests: it is slow).
//
// Tile numbers are template arguments because the instructions encode them.
// Included only by kernels/packed_product.hpp in the amx build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#ifndef RNNKIT_AMX_EMULATE
#define RNNKIT_AMX_EMULATE 0
#endif

namespace rnnkit {
namespace RNNKIT_ISA_NS {

// LDTILECFG's 64-byte operand: palette 1, then for each of the 16 possible tiles the bytes per
// row (colsb) and the rows. Tiles left at 0 x 0 are unused.
struct alignas(64) TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};

  void set(int tile, int nrows, int bytes_per_row) {
    rows[tile] = std::uint8_t(nrows);
    colsb[tile] = std::uint16_t(bytes_per_row);
  }
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG reads 64 bytes");

namespace tiles {

#if RNNKIT_AMX_EMULATE
// Eight tile registers of up to 16 rows of 64 bytes, and the configuration, per thread (as
// the hardware keeps them).
struct State {
  alignas(64) unsigned char t[8][16][64];
  TileConfig cfg;
  bool configured = false;
};
inline State& state() {
  thread_local State s;
  return s;
}
inline void configure(const TileConfig& c) {
  State& s = state();
  s.cfg = c;
  s.configured = true;
  std::memset(s.t, 0, sizeof s.t);  // LDTILECFG zeroes the tiles
}
inline void release() {
  State& s = state();
  s.cfg = TileConfig{};
  s.configured = false;
}
template <int T>
inline void zero() {
  std::memset(state().t[T], 0, sizeof state().t[T]);
}
template <int T>
inline void load(const void* base, std::size_t stride) {
  State& s = state();
  for (int r = 0; r < s.cfg.rows[T]; ++r)
    std::memcpy(s.t[T][r], static_cast<const unsigned char*>(base) + r * stride, s.cfg.colsb[T]);
}
template <int T>
inline void store(void* base, std::size_t stride) {
  State& s = state();
  for (int r = 0; r < s.cfg.rows[T]; ++r)
    std::memcpy(static_cast<unsigned char*>(base) + r * stride, s.t[T][r], s.cfg.colsb[T]);
}
// Denormal inputs read as zero, denormal results are flushed (TDPBF16PS ignores MXCSR).
inline float flush(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
inline float bf16_at(const unsigned char* row, int i) {
  std::uint16_t b;
  std::memcpy(&b, row + 2 * i, 2);
  const std::uint32_t u = std::uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return flush(f);
}
// C[m][n] += A[m][2k] * B[k][2n] + A[m][2k+1] * B[k][2n+1], the pair products added to the
// accumulator one after the other, rounded to nearest even (a product of two bfloat16 is
// exact in float32).
template <int C, int A, int B>
inline void dpbf16() {
  State& s = state();
  const int M = s.cfg.rows[C], N = s.cfg.colsb[C] / 4, Kp = s.cfg.colsb[A] / 4;
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      float acc;
      std::memcpy(&acc, s.t[C][m] + 4 * n, 4);
      for (int k = 0; k < Kp; ++k) {
        acc = flush(acc + bf16_at(s.t[A][m], 2 * k) * bf16_at(s.t[B][k], 2 * n));
        acc = flush(acc + bf16_at(s.t[A][m], 2 * k + 1) * bf16_at(s.t[B][k], 2 * n + 1));
      }
      std::memcpy(s.t[C][m] + 4 * n, &acc, 4);
    }
}
#else
// The instructions, in inline assembly (the compilers' _tile_* macros take literal tile
// numbers only). "memory" clobbers keep the compiler from moving loads and stores of the
// buffers the tiles read and write across them.
inline void configure(const TileConfig& c) { __asm__ volatile("ldtilecfg %0" : : "m"(c)); }
inline void release() { __asm__ volatile("tilerelease" ::: "memory"); }
template <int T>
inline void zero() {
  __asm__ volatile("tilezero %%tmm%c0" : : "i"(T));
}
template <int T>
inline void load(const void* base, std::size_t stride) {
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" : : "r"(base), "r"(stride), "i"(T) : "memory");
}
template <int T>
inline void store(void* base, std::size_t stride) {
  __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" : : "r"(base), "r"(stride), "i"(T) : "memory");
}
// tmm C += tmm A . tmm B (AT&T operand order: B, A, C).
template <int C, int A, int B>
inline void dpbf16() {
  __asm__ volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" : : "i"(C), "i"(A), "i"(B));
}
#endif

}  // namespace tiles
}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
