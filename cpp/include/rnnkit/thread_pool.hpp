// One process-wide pool of worker threads. The calling thread takes part in the work, so a
// pool of n threads starts n - 1 workers. Sized by set_num_threads / RNNKIT_NUM_THREADS,
// default the machine's physical cores.
#pragma once

#include <functional>

namespace rnnkit {

int physical_cores();
int get_num_threads();
bool threads_pinned();  // workers pinned to CPUs (RNNKIT_PIN_THREADS=1)
// The most threads a pool may have (set_num_threads, RNNKIT_NUM_THREADS).
constexpr int kMaxPoolThreads = 1024;
// n in 1..kMaxPoolThreads, else std::invalid_argument. When the system cannot start that many
// threads, throws std::runtime_error and leaves the pool with the threads it had.
void set_num_threads(int n);

// Runs fn(i) for every i in [0, n) and returns when all have finished. Runs serially when the
// pool has one thread, when called from inside a pool task, or while another caller holds it.
void parallel_for(int n, const std::function<void(int)>& fn);

}  // namespace rnnkit

namespace rnnkit {

// Runs fn(ctx, tid, nt) on nt <= n threads at once (all started together, so they may wait
// for each other at a Barrier). nt is 1 when the pool cannot give n threads right now (one
// thread configured, called from inside a pool task, or the pool busy with another caller).
// A plain function pointer rather than std::function: callers are compiled once per ISA.
void team_run(int n, void (*fn)(void* ctx, int tid, int nt), void* ctx);

// Per-thread step counters for a team whose threads exchange data once per step (the batch-1
// time loop): post(t, s) says "thread t's outputs for step s are written"; wait(t, s) returns
// once thread t has posted s or later. Unlike a barrier, a thread waits only for the data it is
// about to read, and only when it is about to read it, so it can work on its own data first.
// Spins, then sleeps on a futex.
class StepFlags {
 public:
  static constexpr int kMaxThreads = 64;
  void post(int tid, int step);
  void wait(int tid, int step);
  // Starts fetching thread tid's flag, so that a wait shortly after finds it in cache.
  void prefetch(int tid) const { __builtin_prefetch(&slots_[tid].step, 0, 3); }

 private:
  struct alignas(64) Slot {
    int step = 0;      // accessed with __atomic builtins; a futex word on Linux
    int sleepers = 0;  // threads asleep on step
  };
  Slot slots_[kMaxThreads];
};

// A reusable barrier for the threads of one team_run: spins briefly, then sleeps.
class Barrier {
 public:
  explicit Barrier(int n = 1);
  // Every thread of the team calls this with the team size before its first wait.
  void set_size(int n);
  void wait();

 private:
  int n_;  // accessed with __atomic builtins
  alignas(64) int count_;  // accessed with __atomic builtins
  alignas(64) unsigned generation_;  // a futex word on Linux
  int sleepers_;                     // threads asleep on generation_
};

}  // namespace rnnkit
