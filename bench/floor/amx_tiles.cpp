// The AMX-BF16 tile peak of one core: what TDPBF16PS can do with nothing around it, the
// ceiling to hold rnnkit's amx kernels against (issue 9 asks for their FLOP rate as a share of
// it).
//
// Three loops, each timed as the median of repeats:
//   - regs:   TDPBF16PS only, on tiles already loaded (4 accumulators, 2 A and 2 B tiles, the
//             2x2 blocking rnnkit uses): the instruction's throughput;
//   - l1:     the same with the A and B tiles reloaded from a 4 KB buffer every time (L1);
//   - stream: B tiles streamed through a 512 KB weight block (the recurrent matrix of an
//             H = 256 LSTM in bfloat16, from L2), as a step of rnnkit's kernel does.
// One TDPBF16PS of 16 x 16 x 32 is 16384 FLOPs (multiply and add).
//
//   g++ -O2 -pthread bench/floor/amx_tiles.cpp -o /tmp/amx_tiles && /tmp/amx_tiles
//
// Not part of the package or the tests. On a CPU without AMX-TILE/AMX-BF16, or where Linux
// refuses the tile state, it says so and exits with status 0.
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

bool amx_usable(const char** why) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22))) {
    *why = "the CPU has no AMX-TILE/AMX-BF16";
    return false;
  }
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) {
    *why = "the OS has not enabled the tile state (XCR0)";
    return false;
  }
  if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) {
    *why = "Linux refused the tile data state (ARCH_REQ_XCOMP_PERM)";
    return false;
  }
  return true;
}

#define TILE_LOAD(t, p, s) __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(p), "r"(s) : "memory")
#define TILE_DP(c, a, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)

template <class F>
double median_seconds(F&& f, int repeats = 9) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main() {
  const char* why = "";
  if (!amx_usable(&why)) {
    std::printf("no AMX here: %s\n", why);
    return 0;
  }
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
  alignas(64) static std::uint16_t small[4 * 512];     // four 1 KB tiles
  static std::vector<std::uint16_t> weights(256 * 1024);  // 512 KB
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = std::uint16_t(0x3c00 + (i & 0x7f));
  for (int i = 0; i < 4 * 512; ++i) small[i] = std::uint16_t(0x3c00 + (i & 0x3f));
  const long stride = 64;
  TILE_LOAD(4, small, stride);
  TILE_LOAD(5, small + 512, stride);
  TILE_LOAD(6, small + 1024, stride);
  TILE_LOAD(7, small + 1536, stride);
  constexpr long kIters = 2'000'000;
  const double flops_per_dp = 2.0 * 16 * 16 * 32;

  const double regs = median_seconds([&] {
    for (long i = 0; i < kIters; ++i) {
      TILE_DP(0, 4, 6);
      TILE_DP(1, 4, 7);
      TILE_DP(2, 5, 6);
      TILE_DP(3, 5, 7);
    }
  });
  const double l1 = median_seconds([&] {
    for (long i = 0; i < kIters; ++i) {
      TILE_LOAD(4, small, stride);
      TILE_LOAD(6, small + 1024, stride);
      TILE_LOAD(7, small + 1536, stride);
      TILE_LOAD(5, small + 512, stride);
      TILE_DP(0, 4, 6);
      TILE_DP(1, 4, 7);
      TILE_DP(2, 5, 6);
      TILE_DP(3, 5, 7);
    }
  });
  // B tiles of 16 pair rows, 128 bytes apart (two chunks side by side), walking the block
  const long nb = long(weights.size()) / (16 * 64);  // 1 KB B tiles in the block
  const long wide = 128;                              // pair rows of two chunks
  const double stream = median_seconds([&] {
    for (long i = 0; i < kIters / 8; ++i)
      for (long j = 0; j + 1 < nb; j += 2) {
        TILE_LOAD(6, weights.data() + j * 512, wide);
        TILE_LOAD(7, weights.data() + j * 512 + 32, wide);
        TILE_DP(0, 4, 6);
        TILE_DP(1, 4, 7);
        TILE_DP(2, 5, 6);
        TILE_DP(3, 5, 7);
      }
  }, 5);
  __asm__ volatile("tilerelease" ::: "memory");
  const double n_regs = 4.0 * kIters, n_stream = 4.0 * (kIters / 8) * (nb / 2);
  std::printf("TDPBF16PS 16x16x32, one core, median of repeats:\n");
  std::printf("  regs   %8.1f GFLOP/s  (%.1f cycles at 1 GHz per instruction: %.2f ns)\n",
              n_regs * flops_per_dp / regs / 1e9, regs / n_regs * 1e9, regs / n_regs * 1e9);
  std::printf("  l1     %8.1f GFLOP/s  (A and B reloaded from L1 for every 4 products)\n",
              n_regs * flops_per_dp / l1 / 1e9);
  std::printf("  stream %8.1f GFLOP/s  (B streamed from a 512 KB block, A kept)\n",
              n_stream * flops_per_dp / stream / 1e9);
  return 0;
}
