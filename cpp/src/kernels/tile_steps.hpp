// The time loop of the AMX cells (lstm_forward_tiles, gru_forward_tiles): bfloat16 weights at
// batch, inference, no projection. Each step's two products, x_t W^T and h U^T, run on the
// tiles one unit block and kTileSpan rows at a time, into kTileAcc floats a row, and the cell's
// gate pass runs on those floats while they are in L1. It writes h in float32; this loop copies
// it to y and rounds it to bfloat16 straight into the rows the next step's tiles load (nothing
// is hoisted or written out: a hoisted input projection writes (T*B, gates*H) floats and reads
// them back, more time than its products take). A team splits the rows; a row's result does
// not depend on which rows share its tiles, so not on the thread count.
//
// Included by the cell headers, after common.hpp, in the amx build only.
#pragma once

#include "kernels/common.hpp"

#if RNNKIT_AMX
namespace rnnkit {
namespace RNNKIT_ISA_NS {

// The rows whose unit block's tiles run before their gate pass: 64 was fastest for the LSTM at
// B = 64 and 256 (in-process A/B; 32 and 128 cost 3-20% more).
constexpr int kTileSpan = 64;
// Accumulator floats of a row and unit block: four 16-column chunks (the LSTM's gates i, f, g,
// o; the GRU's r, z and the two halves of n).
constexpr int kTileAcc = 4 * kUnitBlock;

// Whether a forward call takes the tile loop: bfloat16 packs of both weights, no cache, no
// projection, at least two rows (one row streams on VDPBF16PS; the tiles win from two).
inline bool tile_loop_applies(const ForwardArgs<float>& a) {
  return a.w.packed_hh_bf16 && a.w.packed_ih_bf16 && !a.cache && !a.h_mask && a.spec.proj_size == 0 && a.seq.B >= 2;
}

// products(xa, Kx, ha, Kh, rows, px, ph, W, acc): one unit block's kTileAcc accumulator
//   columns (row stride kTileAcc) for `rows` <= kTileSpan rows, from their bfloat16 rows of
//   x_t (xa, Kx apart) and h (ha, Kh apart), whole 16-row tiles; px, ph: the block's packed
//   weights (Kx and Kh pair rows of W = gates * 16 columns).
// gate_pass(b, rows, u0, n, acc, h, hn, scratch): units [u0, u0 + n) of rows [b, b + rows)
//   from their accumulator rows (acc: row b's), h before the step and h after it (float32,
//   row b' at b' * H), scratch 5 * 16 floats.
// Leaves h_n in a.hn; the cell keeps any other state itself.
template <class Products, class GatePass>
inline void tile_time_loop(const ForwardArgs<float>& a, Products&& products, GatePass&& gate_pass) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, I = s.input_size, gates = s.gates();
  const int Tn = a.seq.steps(), B = a.seq.B;
  Workspace<float>& ws = workspace<float>();
  const int64_t hstride = aligned_size<float>(int64_t(B) * H);
  float* hbuf = ws.h.reserve(2 * hstride);  // h in float32 before and after a step (B, H)
  copy_or_zero(hbuf, a.h0, int64_t(B) * H);
  const int blocks = unit_blocks(H), W = gates * kUnitBlock;
  const int Kx = bf16_rows(I, Bf16Layout::KPair32), Kh = bf16_rows(H, Bf16Layout::KPair32);
  const std::size_t bsx = std::size_t(Kx) * W, bsh = std::size_t(Kh) * W;  // unit block strides
  // a thread's rows fill whole 16-row tiles: two threads from 32 rows (at 16, two half-empty
  // tiles took 1.5x the time of one thread's full one)
  const int rteam =
      std::min(row_team(true, a.threads, B, Tn, int64_t(B) * gates * H * (I + H)), std::max(1, B / 16));
  Barrier barrier;
  auto row_of = [&](int step, int b) { return step_row(a.seq, a.reverse, step, b); };

  auto body = [&](int tid, int nt) {
    barrier.set_size(nt);
    ActiveRows active(a.seq, nt > 1, tid, nt);
    const int R = (B + 15) / 16 * 16;  // tile rows this thread may hold (any split)
    // this thread's rows of x_t and of h (two: this step's and the next's) in bfloat16, row b - b0
    thread_local Buffer<std::uint16_t> abuf;
    thread_local Buffer<float> accbuf, scratchbuf;
    std::uint16_t* xa = abuf.zeros(std::size_t(R) * (Kx + 2 * Kh));
    std::uint16_t* ha[2] = {xa + std::size_t(R) * Kx, xa + std::size_t(R) * (Kx + Kh)};
    float* acc = accbuf.reserve(std::size_t(kTileSpan) * kTileAcc);  // a unit block, kTileSpan rows
    float* scratch = scratchbuf.reserve(5 * kUnitBlock);
    TileScope scope;  // the tiles configured once per thread and call
    float* hcur = hbuf;
    float* hnext = hbuf + hstride;
    int cur = 0, held0 = -1, held1 = -1;  // ha[cur] holds h of rows [held0, held1)
    for (int step = 0; step < Tn; ++step) {
      const auto [b0, b1] = active.at(step, [&] { barrier.wait(); });
      const int nr = b1 - b0;
      if (b0 != held0 || b1 > held1)  // the first step, or rows new to this thread: from float32
        round_rows_bf16(hcur + int64_t(b0) * H, nr, H, H, Kh, (nr + 15) / 16 * 16, ha[cur]);
      for (int b = b0; b < b1; ++b)
        round_rows_bf16(a.x + row_of(step, b) * I, 1, I, I, Kx, 1, xa + std::size_t(b - b0) * Kx);
      std::uint16_t* hn16 = ha[cur ^ 1];
      for (int ub = 0; ub < blocks; ++ub) {
        const int u0 = ub * kUnitBlock, n = std::min(kUnitBlock, H - u0);
        for (int s0 = 0; s0 < nr; s0 += kTileSpan) {
          const int s1 = std::min(nr, s0 + kTileSpan);
          products(xa + std::size_t(s0) * Kx, Kx, ha[cur] + std::size_t(s0) * Kh, Kh, s1 - s0,
                   a.w.packed_ih_bf16 + ub * bsx, a.w.packed_hh_bf16 + ub * bsh, W, acc);
          gate_pass(b0 + s0, s1 - s0, u0, n, acc, hcur, hnext, scratch);
          for (int rr = s0; rr < s1; ++rr) {
            const int b = b0 + rr;
            float* hn_row = hnext + int64_t(b) * H;
            copy16(hn_row + u0, n, a.y + row_of(step, b) * a.ldy + u0);
            round16_bf16(hn_row + u0, n, hn16 + std::size_t(rr) * Kh + u0);
          }
        }
      }
      held0 = b0;
      held1 = b1;
      cur ^= 1;
      std::swap(hcur, hnext);
    }
  };
  run_team(rteam, body);
  // a sequence's last state is in the buffer its last step wrote: the steps alternate them
  for (int b = 0; b < B; ++b)
    std::memcpy(a.hn + int64_t(b) * H, hbuf + (a.seq.length(b) % 2) * hstride + int64_t(b) * H, H * sizeof(float));
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
#endif  // RNNKIT_AMX
