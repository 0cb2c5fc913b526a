#include "rnnkit/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <system_error>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>

#include <new>

#if defined(__linux__)
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>
#include <cstdint>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RNNKIT_PAUSE() _mm_pause()
#else
#define RNNKIT_PAUSE() std::this_thread::yield()
#endif

namespace rnnkit {
namespace {

thread_local bool inside_pool_task = false;

// Workers spin this many rounds for new work before sleeping, so that back-to-back parallel
// regions (one per layer, one per call in a serving loop) do not pay a futex wake-up each.
constexpr int kSpinRounds = 20000;

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return size_.load(); }

  // Restarts the pool with n threads. When the system cannot start them all (std::system_error
  // from std::thread), joins the ones started, restarts the previous count and throws
  // std::runtime_error: the pool is then as it was.
  void resize(int n) {
    std::lock_guard<std::mutex> g(run_mutex_);
    const int old = int(workers_.size()) + 1;
    stop();
    try {
      start(n);
    } catch (const std::system_error& e) {
      stop();
      start(old);  // these threads ran a moment ago
      throw std::runtime_error("[set_num_threads] could not start " + std::to_string(n) + " threads (" +
                               e.what() + "); the pool keeps its " + std::to_string(old));
    }
  }

  bool pinned() const { return pinned_.load(); }

  void run(int n, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (n <= 1 || inside_pool_task || !busy.owns_lock() || workers_.empty()) {
      for (int i = 0; i < n; ++i) fn(i);
      return;
    }
    dispatch(n, fn);
  }

  void team(int n, void (*fn)(void*, int, int), void* ctx) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    const int nt = std::min(n, int(workers_.size()) + 1);
    if (nt <= 1 || inside_pool_task || !busy.owns_lock()) {
      fn(ctx, 0, 1);
      return;
    }
    // Every thread takes one task and the tasks wait for each other, so all nt run at once.
    dispatch(nt, [&](int i) { fn(ctx, i, nt); });
  }

 private:
  // Runs fn(0..n-1) on the workers and the caller; run_mutex_ is held by the caller.
  void dispatch(int n, const std::function<void(int)>& fn) {
    unsigned long gen;
    {
      std::lock_guard<std::mutex> g(m_);
      fn_ = &fn;
      n_ = n;
      pending_.store(n);
      gen = generation_.load() + 1;
      ticket_.store(tag(gen));
      generation_.store(gen);
    }
    wake_.notify_all();
    drain(gen, &fn, n);
    // The other tasks usually end within microseconds of the caller's: spin for them before
    // sleeping, since a futex wake-up costs more than a short parallel region.
    for (int spin = 0; spin < kSpinRounds && pending_.load(std::memory_order_acquire) != 0; ++spin)
      RNNKIT_PAUSE();
    std::unique_lock<std::mutex> g(m_);
    done_.wait(g, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  // The ticket of dispatch gen before its first task is claimed: gen in the high 32 bits, the
  // next task's index in the low 32.
  static std::uint64_t tag(unsigned long gen) { return std::uint64_t(std::uint32_t(gen)) << 32; }

  // Runs tasks of dispatch gen (fn, n: as dispatch set them, read under m_) until none is left
  // to claim. A task is claimed from ticket_ only while it still carries gen's tag, so a
  // thread that finishes late never takes an index of a later dispatch, nor compares one of
  // gen's indices with a later dispatch's n (TSan found the race on n_ this replaces:
  // tools/tsan).
  void drain(unsigned long gen, const std::function<void(int)>* fn, int n) {
    inside_pool_task = true;
    const std::uint64_t mine = tag(gen);
    for (;;) {
      std::uint64_t t = ticket_.load(std::memory_order_acquire);
      do {
        if ((t & ~std::uint64_t(0xffffffffu)) != mine || std::int64_t(t & 0xffffffffu) >= n) {
          inside_pool_task = false;
          return;
        }
      } while (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire));
      const int i = int(t & 0xffffffffu);
      try {
        (*fn)(i);
      } catch (...) {
        std::lock_guard<std::mutex> g(m_);
        if (!error_) error_ = std::current_exception();
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // Taking the lock orders this wake-up after a caller's check of pending_ under it.
        std::lock_guard<std::mutex> g(m_);
        done_.notify_all();
      }
    }
  }

  void work(unsigned long seen) {
    const std::function<void(int)>* fn = nullptr;
    int n = 0;
    for (;;) {
      for (int spin = 0; spin < kSpinRounds && generation_.load() == seen && !stopping_flag_.load(); ++spin)
        RNNKIT_PAUSE();
      {
        std::unique_lock<std::mutex> g(m_);
        wake_.wait(g, [&] { return stopping_ || generation_.load() != seen; });
        if (stopping_) return;
        seen = generation_.load();
        fn = fn_;  // null when that dispatch has ended: then its tasks are all claimed
        n = n_;
      }
      drain(seen, fn, n);
    }
  }

  // Starts n - 1 workers; run_mutex_ is held and none are running.
  void start(int n) {
    stopping_ = false;
    // A worker must start from the generation current now (run_mutex_ is held, so no dispatch
    // can happen in between): reading it later could skip a dispatch made before it started.
    const unsigned long gen = generation_.load();
    const std::vector<int> cpus = pin_cpus(n);
    workers_.reserve(std::size_t(n));
    for (int i = 1; i < n; ++i) {
      workers_.emplace_back([this, gen] { work(gen); });
#if defined(__linux__)
      if (!cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus[i], &set);
        pthread_setaffinity_np(workers_.back().native_handle(), sizeof set, &set);
      }
#endif
    }
    pinned_.store(!cpus.empty());
    size_.store(n);
  }

  void stop() {
    {
      std::lock_guard<std::mutex> g(m_);
      stopping_ = true;
      stopping_flag_.store(true);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stopping_flag_.store(false);
  }

  std::mutex run_mutex_;  // one parallel region at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* fn_ = nullptr;  // the current dispatch's; under m_
  int n_ = 0;                                      // its task count; under m_
  std::atomic<std::uint64_t> ticket_{0};           // its tag and next task index (drain)
  std::atomic<int> pending_{0};
  std::atomic<unsigned long> generation_{0};
  bool stopping_ = false;
  std::atomic<bool> stopping_flag_{false};
  std::exception_ptr error_;
  std::atomic<int> size_{1};
  std::atomic<bool> pinned_{false};

  // With RNNKIT_PIN_THREADS=1, worker i runs on the i-th CPU of the process's affinity mask
  // (the caller is never pinned), so that the threads of a batch-1 team keep their share of
  // the recurrent weights in their own core's L2 instead of migrating; empty when off, or
  // when the mask has fewer than n CPUs.
  static std::vector<int> pin_cpus(int n) {
    std::vector<int> cpus;
#if defined(__linux__)
    const char* env = std::getenv("RNNKIT_PIN_THREADS");
    if (!env || std::string(env) != "1") return cpus;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    if (int(cpus.size()) < n) cpus.clear();
#else
    (void)n;
#endif
    return cpus;
  }
};

int initial_threads() {
  if (const char* env = std::getenv("RNNKIT_NUM_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= kMaxPoolThreads) return int(n);
  }
  return physical_cores();
}

// The pool lives on the heap and is never destroyed: its workers may still be parked when the
// process exits. After fork() the child has none of the parent's worker threads, so the child
// forgets the inherited pool (leaking it: its mutexes may be held) and starts a new one on first
// use, with the same size.
std::atomic<Pool*> g_pool{nullptr};
std::atomic<int> g_pool_size{0};
std::mutex g_pool_create;

void forget_pool_in_child() {
  Pool* p = g_pool.load();
  if (p) g_pool_size.store(p->size());
  g_pool.store(nullptr);
  new (&g_pool_create) std::mutex();  // the parent's may have been held at fork time
}

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p) return *p;
  std::lock_guard<std::mutex> g(g_pool_create);
  p = g_pool.load();
  if (!p) {
    static const bool registered = [] {
#if defined(__linux__) || defined(__APPLE__)
      pthread_atfork(nullptr, nullptr, &forget_pool_in_child);
#endif
      return true;
    }();
    (void)registered;
    const int inherited = g_pool_size.load();
    p = new Pool(inherited > 0 ? inherited : initial_threads());
    g_pool.store(p, std::memory_order_release);
  }
  return *p;
}

}  // namespace

int physical_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    std::set<std::pair<std::string, std::string>> cores;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
      std::string p, c;
      if (!(pkg >> p) || !(core >> c)) return CPU_COUNT(&set);
      cores.insert({p, c});
    }
    if (!cores.empty()) return int(cores.size());
  }
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n ? int(n) : 1;
}

int get_num_threads() { return pool().size(); }

bool threads_pinned() { return pool().pinned(); }

void set_num_threads(int n) {
  if (n < 1 || n > kMaxPoolThreads)
    throw std::invalid_argument("[set_num_threads] n must be in 1.." + std::to_string(kMaxPoolThreads) +
                                "; got " + std::to_string(n));
  if (n != pool().size()) pool().resize(n);
}

void parallel_for(int n, const std::function<void(int)>& fn) { pool().run(n, fn); }

void team_run(int n, void (*fn)(void*, int, int), void* ctx) { pool().team(n, fn, ctx); }

void StepFlags::post(int tid, int step) {
  Slot& s = slots_[tid];
  // A release store, not a sequentially consistent one: a locked store would stall this
  // thread until it owns the line its partner is spinning on, every step. The price is that
  // this load of sleepers may not see a sleeper that registered just now; sleepers therefore
  // wake on their own after a short timeout (wait), so a missed wake-up costs at most that.
  __atomic_store_n(&s.step, step, __ATOMIC_RELEASE);
#if defined(__linux__)
  if (__atomic_load_n(&s.sleepers, __ATOMIC_RELAXED) > 0)
    syscall(SYS_futex, &s.step, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
#endif
}

void StepFlags::wait(int tid, int step) {
  Slot& s = slots_[tid];
  // Spin up to ~0.5 ms, as the barrier does, then sleep in slices of 200 us.
  for (int spin = 0; spin < 20000; ++spin) {
    if (__atomic_load_n(&s.step, __ATOMIC_ACQUIRE) >= step) return;
    RNNKIT_PAUSE();
  }
#if defined(__linux__)
  __atomic_add_fetch(&s.sleepers, 1, __ATOMIC_SEQ_CST);
  const timespec slice{0, 200000};
  for (int now; (now = __atomic_load_n(&s.step, __ATOMIC_SEQ_CST)) < step;)
    syscall(SYS_futex, &s.step, FUTEX_WAIT_PRIVATE, now, &slice, nullptr, 0);
  __atomic_sub_fetch(&s.sleepers, 1, __ATOMIC_SEQ_CST);
#else
  while (__atomic_load_n(&s.step, __ATOMIC_ACQUIRE) < step) std::this_thread::yield();
#endif
}

Barrier::Barrier(int n) : n_(n), count_(0), generation_(0), sleepers_(0) {}

void Barrier::set_size(int n) { __atomic_store_n(&n_, n, __ATOMIC_RELAXED); }

void Barrier::wait() {
  const int n = __atomic_load_n(&n_, __ATOMIC_RELAXED);
  if (n <= 1) return;
  const unsigned gen = __atomic_load_n(&generation_, __ATOMIC_ACQUIRE);
  if (__atomic_add_fetch(&count_, 1, __ATOMIC_ACQ_REL) == n) {
    __atomic_store_n(&count_, 0, __ATOMIC_RELAXED);
    // Sequentially consistent, with the sleeper's increment and re-check below: a release
    // store followed by an acquire load may be reordered (x86's store buffer does it), and the
    // waker could then read sleepers_ == 0 while a sleeper reads the old generation and sleeps
    // with no timeout. One locked instruction per barrier.
    __atomic_store_n(&generation_, gen + 1, __ATOMIC_SEQ_CST);
#if defined(__linux__)
    if (__atomic_load_n(&sleepers_, __ATOMIC_SEQ_CST) > 0)
      syscall(SYS_futex, &generation_, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
#endif
    return;
  }
  // Spin up to ~0.5 ms (a step of the time loop takes microseconds), then sleep: on a busy machine
  // a spinning thread would burn the time slice its partner needs to arrive.
  for (int spin = 0; spin < 20000; ++spin) {
    if (__atomic_load_n(&generation_, __ATOMIC_ACQUIRE) != gen) return;
    RNNKIT_PAUSE();
  }
#if defined(__linux__)
  __atomic_add_fetch(&sleepers_, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&generation_, __ATOMIC_SEQ_CST) == gen)
    syscall(SYS_futex, &generation_, FUTEX_WAIT_PRIVATE, gen, nullptr, nullptr, 0);
  __atomic_sub_fetch(&sleepers_, 1, __ATOMIC_ACQ_REL);
#else
  while (__atomic_load_n(&generation_, __ATOMIC_ACQUIRE) == gen) std::this_thread::yield();
#endif
}

}  // namespace rnnkit
