// What two threads can gain on one batch-1 LSTM step, H = 128, with nothing else around it.
//
// Each step multiplies h (128) by the packed recurrent weights (128 x 512 floats, 256 KB, laid
// out as rnnkit packs them) and writes the next h. On two threads each takes half of the units
// and the threads meet at a spinning barrier once per step, as rnnkit's team kernels do. The
// program reports the median per-step time over repeats for one and two threads, the ratio
// (the best 2-thread speedup this design can show on the machine), and the cache-line round
// trip between the two cores.
//
//   g++ -O3 -mavx2 -mfma -pthread bench/floor/team_step.cpp -o /tmp/team_step && /tmp/team_step
//
// Not part of the package or the tests; it needs AVX2+FMA and at least two cores.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

constexpr int K = 128, W = 64, kBlocks = 8, kSteps = 4000, kRepeats = 15;

// One 16-unit block for one row: out[0:64] = h[0:K] * P[K][64], eight accumulators.
void block_product(const float* h, const float* P, float* out) {
  __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
  for (int k = 0; k < K; ++k) {
    const float* q = P + k * W;
    const __m256 x = _mm256_broadcast_ss(h + k);
    c0 = _mm256_fmadd_ps(_mm256_loadu_ps(q), x, c0);
    c1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8), x, c1);
    c2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 16), x, c2);
    c3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 24), x, c3);
    c4 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 32), x, c4);
    c5 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 40), x, c5);
    c6 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 48), x, c6);
    c7 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 56), x, c7);
  }
  _mm256_storeu_ps(out, c0);
  _mm256_storeu_ps(out + 8, c1);
  _mm256_storeu_ps(out + 16, c2);
  _mm256_storeu_ps(out + 24, c3);
  _mm256_storeu_ps(out + 32, c4);
  _mm256_storeu_ps(out + 40, c5);
  _mm256_storeu_ps(out + 48, c6);
  _mm256_storeu_ps(out + 56, c7);
}

struct alignas(64) Barrier {
  std::atomic<int> count{0};
  std::atomic<unsigned> generation{0};
  int n = 1;
  void wait() {
    if (n == 1) return;
    const unsigned g = generation.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
      count.store(0, std::memory_order_relaxed);
      generation.store(g + 1, std::memory_order_release);
      return;
    }
    while (generation.load(std::memory_order_acquire) == g) _mm_pause();
  }
};

double step_us(int threads, const std::vector<float>& P) {
  alignas(64) static float h[2][K];
  alignas(64) static float acc[kBlocks * W];
  for (int i = 0; i < K; ++i) h[0][i] = 0.5f;
  Barrier barrier;
  barrier.n = threads;
  auto body = [&](int tid) {
    const int first = kBlocks * tid / threads, last = kBlocks * (tid + 1) / threads;
    for (int s = 0; s < kSteps; ++s) {
      const float* hc = h[s & 1];
      float* hn = h[(s + 1) & 1];
      for (int b = first; b < last; ++b) block_product(hc, P.data() + std::size_t(b) * K * W, acc + b * W);
      for (int u = first * 16; u < last * 16; ++u) hn[u] = 0.5f + 0.01f * acc[(u / 16) * W + u % 16];
      barrier.wait();
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::thread other;
  if (threads > 1) other = std::thread(body, 1);
  body(0);
  if (threads > 1) other.join();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kSteps;
}

double round_trip_ns() {
  alignas(64) static std::atomic<int> ping{0};
  alignas(64) static std::atomic<int> pong{0};
  const int n = 100000;
  std::thread t([&] {
    for (int i = 1; i <= n; ++i) {
      while (ping.load(std::memory_order_acquire) != i) _mm_pause();
      pong.store(i, std::memory_order_release);
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i <= n; ++i) {
    ping.store(i, std::memory_order_release);
    while (pong.load(std::memory_order_acquire) != i) _mm_pause();
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
  t.join();
  return ns;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main() {
  std::vector<float> P(std::size_t(kBlocks) * K * W, 0.001f);
  std::vector<double> one, two, ratio;
  for (int r = 0; r < kRepeats; ++r) {  // interleaved, so that both see the same machine
    one.push_back(step_us(1, P));
    two.push_back(step_us(2, P));
    ratio.push_back(one.back() / two.back());
  }
  std::printf("batch-1 LSTM step, H=128, recurrent product + barrier only (median of %d):\n", kRepeats);
  std::printf("  1 thread : %.2f us/step\n  2 threads: %.2f us/step\n", median(one), median(two));
  std::printf("  speedup  : %.2fx (median of per-repeat ratios %.2fx, range %.2f-%.2f)\n",
              median(one) / median(two), median(ratio), *std::min_element(ratio.begin(), ratio.end()),
              *std::max_element(ratio.begin(), ratio.end()));
  std::vector<double> rt;
  for (int r = 0; r < 5; ++r) rt.push_back(round_trip_ns());
  std::printf("  core-to-core cache-line round trip: %.0f ns (median of 5)\n", median(rt));
  return 0;
}
