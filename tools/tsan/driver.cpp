// ThreadSanitizer driver for the core's thread pool and team kernels (tools/tsan/run.sh builds
// it with -fsanitize=thread). No Python: it calls rnnkit::Stack as the bindings do, for every
// instruction set built in and runnable here, on the shapes that make the kernels share a time
// loop: batch 1 (a units team exchanging h through StepFlags), a few rows (a units team meeting
// at a Barrier), a large batch with lengths (a row team re-splitting its rows at a barrier), a
// batch-1 team wider than StepFlags' slots, bidirectional layers (directions on parallel_for),
// bfloat16 packs (VDPBF16PS, AMX tiles), training forward and backward (backward's teams and
// the split whole-sequence GEMMs) and stream steps. Every case runs with 1 thread and then with
// several; every output must equal the 1-thread one bit for bit. TSan reports fail the run
// (run.sh sets halt_on_error); a mismatch makes this program exit 1.
//
//   driver [ISA ...]     default: every available ISA
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rnnkit/dispatch.hpp"
#include "rnnkit/rnn_stack.hpp"
#include "rnnkit/thread_pool.hpp"

using namespace rnnkit;

namespace {

struct Case {
  const char* name;
  CellKind kind;
  int H, B, T;
  int layers = 1, dirs = 1;
  bool lengths = false;  // B lengths in 1..T, unsorted, with ties
  bool bf16 = false;     // frozen in bfloat16
  bool train = false;    // forward with a cache, then backward
  bool stream = false;   // T calls of Stack::step instead of one forward
  bool reset_after = true;
  std::vector<int> threads = {2, 3, 4, 8};
};

// Everything a case computes, compared bit for bit across thread counts.
using Outputs = std::vector<std::vector<float>>;

struct Net {
  StackSpec spec;
  std::vector<std::vector<float>> store;  // the weight arrays DirWeights point into
  std::vector<DirWeights<float>> w;
};

Net make_net(const Case& c, int I) {
  Net n;
  n.spec.cell.kind = c.kind;
  n.spec.cell.input_size = I;
  n.spec.cell.hidden_size = c.H;
  n.spec.cell.reset_after = c.reset_after;
  n.spec.num_layers = c.layers;
  n.spec.num_dirs = c.dirs;
  const int G = n.spec.cell.gates(), H = c.H;
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.0f / std::sqrt(float(H)), 1.0f / std::sqrt(float(H)));
  auto fill = [&](std::size_t m) {
    n.store.emplace_back(m);
    for (float& v : n.store.back()) v = u(rng);
    return n.store.back().data();
  };
  n.store.reserve(std::size_t(c.layers) * c.dirs * 4);
  for (int l = 0; l < c.layers; ++l)
    for (int d = 0; d < c.dirs; ++d) {
      DirWeights<float> dw;
      const int in = n.spec.layer(l).input_size;
      dw.w_ih = fill(std::size_t(G) * H * in);
      dw.w_hh = fill(std::size_t(G) * H * H);
      dw.b_ih = fill(std::size_t(G) * H);
      dw.b_hh = fill(std::size_t(G) * H);
      n.w.push_back(dw);
    }
  return n;
}

Outputs run_case(const Case& c, int threads) {
  set_num_threads(threads);
  const int I = 24, LD = c.layers * c.dirs, H = c.H, B = c.B, T = c.T;
  const bool lstm = c.kind == CellKind::LSTM;
  Net net = make_net(c, I);
  Stack<float> stack(net.spec, net.w);
  std::mt19937 rng(99);
  std::normal_distribution<float> nd;
  std::vector<float> x(std::size_t(T) * B * I);
  for (float& v : x) v = nd(rng);
  std::vector<int32_t> lengths(B, T);
  if (c.lengths) {
    for (int b = 0; b < B; ++b) lengths[b] = 1 + int(rng() % unsigned(T));
    lengths[B / 3] = T;  // ties with the longest, out of order
    lengths[B / 2] = 1;
  }
  const std::int64_t width = std::int64_t(c.dirs) * H;
  Outputs out;
  std::vector<float> y(std::size_t(T) * B * width), hn(std::size_t(LD) * B * H), cn(std::size_t(LD) * B * H);
  SeqShape seq{T, B, c.lengths ? lengths.data() : nullptr};
  if (c.stream) {
    stack.freeze(c.bf16);
    std::vector<float> h(std::size_t(c.layers) * B * H, 0.0f), cs(h.size(), 0.0f);
    for (int t = 0; t < T; ++t)
      stack.step(x.data() + std::size_t(t) * B * I, B, nullptr, B, h.data(), lstm ? cs.data() : nullptr,
                 y.data() + std::size_t(t) * B * width);
    out = {y, h, cs};
  } else if (!c.train) {
    stack.freeze(c.bf16);
    stack.forward(x.data(), seq, nullptr, nullptr, {}, y.data(), hn.data(), lstm ? cn.data() : nullptr, nullptr);
    out = {y, hn, cn};
  } else {
    StackCache<float> cache;
    stack.forward(x.data(), seq, nullptr, nullptr, {}, y.data(), hn.data(), lstm ? cn.data() : nullptr, &cache);
    std::vector<float> dy(y.size());
    for (float& v : dy) v = nd(rng);
    std::vector<float> dx(x.size(), 0.0f), dh0(hn.size()), dc0(cn.size());
    std::vector<std::vector<float>> g;
    std::vector<DirGrads<float>> grads;
    g.reserve(std::size_t(LD) * 4);
    for (int ld = 0; ld < LD; ++ld) {
      const int G = net.spec.cell.gates(), in = net.spec.layer(ld / c.dirs).input_size;
      DirGrads<float> dg;
      g.emplace_back(std::size_t(G) * H * in, 0.0f);
      dg.w_ih = g.back().data();
      g.emplace_back(std::size_t(G) * H * H, 0.0f);
      dg.w_hh = g.back().data();
      g.emplace_back(std::size_t(G) * H, 0.0f);
      dg.b_ih = g.back().data();
      g.emplace_back(std::size_t(G) * H, 0.0f);
      dg.b_hh = g.back().data();
      grads.push_back(dg);
    }
    stack.backward(cache, dy.data(), nullptr, nullptr, dx.data(), dh0.data(), lstm ? dc0.data() : nullptr, grads);
    out = {y, hn, cn, dx, dh0, dc0};
    for (auto& v : g) out.push_back(v);
  }
  return out;
}

bool same(const Outputs& a, const Outputs& b, std::string& where) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size() || std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0) {
      std::size_t j = 0;
      while (j < a[i].size() && std::memcmp(&a[i][j], &b[i][j], sizeof(float)) == 0) ++j;
      where = "output " + std::to_string(i) + " element " + std::to_string(j) + ": " +
              std::to_string(a[i][j]) + " vs " + std::to_string(b[i][j]);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> isas;
  for (int i = 1; i < argc; ++i) isas.push_back(argv[i]);
  if (isas.empty()) isas = available_isas();

  const CellKind L = CellKind::LSTM, G = CellKind::GRU, R = CellKind::RNN;
  std::vector<Case> cases;
  // name, kind, H, B, T, then the options
  auto add = [&](Case c) { cases.push_back(c); };
  add({"lstm B=1 (units team, StepFlags)", L, 256, 1, 6});
  add({"gru B=1 (units team, StepFlags)", G, 256, 1, 6});
  {
    Case c{"gru reset_before B=1", G, 256, 1, 5};
    c.reset_after = false;
    add(c);
  }
  add({"rnn B=1 (units team)", R, 400, 1, 5});
  add({"lstm B=4 (units team, barrier)", L, 256, 4, 5});
  add({"gru B=4 (units team, barrier)", G, 256, 4, 5});
  {
    Case c{"lstm B=40 lengths (row team)", L, 144, 40, 8};
    c.lengths = true;
    add(c);
    c = {"gru B=40 lengths (row team)", G, 144, 40, 8};
    c.lengths = true;
    add(c);
  }
  {
    Case c{"lstm B=1 bf16", L, 256, 1, 5};
    c.bf16 = true;
    add(c);
    c = {"gru B=1 bf16", G, 256, 1, 5};
    c.bf16 = true;
    add(c);
    c = {"lstm B=40 bf16 lengths (tiles on amx)", L, 144, 40, 6};
    c.bf16 = c.lengths = true;
    add(c);
    c = {"gru B=20 bf16", G, 144, 20, 6};
    c.bf16 = true;
    add(c);
  }
  {
    Case c{"lstm 2 layers bidirectional B=4", L, 160, 4, 5};
    c.layers = 2;
    c.dirs = 2;
    add(c);
  }
  {
    Case c{"lstm train B=4 (backward units team)", L, 256, 4, 5};
    c.train = true;
    add(c);
    c = {"gru train B=4 (backward units team)", G, 256, 4, 5};
    c.train = true;
    add(c);
    c = {"lstm train B=40 lengths (backward row team)", L, 144, 40, 6};
    c.train = c.lengths = true;
    add(c);
    c = {"gru reset_before train B=32 lengths", G, 144, 32, 6};
    c.train = c.lengths = true;
    c.reset_after = false;
    add(c);
  }
  {
    Case c{"lstm stream steps B=1", L, 256, 1, 4};
    c.stream = true;
    add(c);
    c = {"gru stream steps B=24 bf16", G, 144, 24, 4};
    c.stream = c.bf16 = true;
    add(c);
  }
  {
    // 65 unit blocks: a batch-1 team wider than StepFlags' 64 slots unless capped (issue 10)
    Case c{"lstm B=1 H=1040, 70 threads", L, 1040, 1, 2};
    c.threads = {70};
    add(c);
  }

  int failures = 0, runs = 0;
  for (const std::string& isa : isas) {
    try {
      set_isa(isa);
    } catch (const std::exception& e) {
      std::printf("skip %s: %s\n", isa.c_str(), e.what());
      continue;
    }
    for (const Case& c : cases) {
      const Outputs ref = run_case(c, 1);
      for (int n : c.threads) {
        const Outputs got = run_case(c, n);
        ++runs;
        std::string where;
        if (!same(ref, got, where)) {
          std::printf("FAIL %s, %s, %d threads differ from 1 thread: %s\n", isa.c_str(), c.name, n, where.c_str());
          ++failures;
        }
      }
      std::printf("ok   %s, %s\n", isa.c_str(), c.name);
      std::fflush(stdout);
    }
  }
  std::printf("%d runs, %d differ from 1 thread\n", runs, failures);
  return failures ? 1 : 0;
}
