// Streams: recurrent state held in the core between calls. A bank holds the states of N streams
// (slots) of one Stack in one buffer and steps any subset of them by index in one call (gather,
// step, scatter: Stack::step). A single stream of batch B is a bank of B slots stepped together.
//
// Slots are free or in use: add() claims a free one (zero state), release() frees it. Calls on
// disjoint slots may run concurrently from several threads; a call that meets a slot another
// call is using, a free slot or the same slot twice throws std::invalid_argument naming it, and
// changes nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "rnnkit/buffer.hpp"
#include "rnnkit/rnn_stack.hpp"

namespace rnnkit {

template <class T>
class StreamBank {
 public:
  // capacity slots; all_in_use: every slot starts in use (a single stream), else all free.
  // The stack must outlive the bank.
  StreamBank(const Stack<T>& stack, int64_t capacity, bool all_in_use);

  int64_t capacity() const { return N_; }
  int64_t num_free() const;
  std::vector<int64_t> in_use() const;  // the slots in use, ascending

  // Claims a free slot (its state zeroed) and returns it; -1 when none is free.
  int64_t add();
  // Frees slots ids (n) in use.
  void release(const int64_t* ids, int64_t n);
  // Zeroes the states of slots ids (n) in use; ids null: every slot in use.
  void reset(const int64_t* ids, int64_t n);

  // One step of slots ids (n) with inputs x (n, I); y (n, Hout) the last layer's new h.
  // ids null: slots 0..N-1 in order (n = N), all of which must be in use.
  void step(const int64_t* ids, int64_t n, const T* x, T* y);
  // T steps of every slot (all in use), like Stack::forward from the slots' states:
  // x (T, N, I) time-major, y (T, N, Hout).
  void run(int steps, const T* x, T* y);

  // One slot's state: h (L, Hout), c (L, H) (LSTM; null for GRU). id -1: every slot,
  // h (L, N, Hout), c (L, N, H) (all must be in use).
  void get_state(int64_t id, T* h, T* c);
  void set_state(int64_t id, const T* h, const T* c);

  const Stack<T>& stack() const { return stack_; }

 private:
  enum : std::uint8_t { kFree = 0, kIdle = 1, kBusy = 2 };
  // Marks slots busy, all or none: throws (naming the first slot that is not idle) otherwise.
  void claim(const char* fn, const int64_t* ids, int64_t n);
  void unclaim(const int64_t* ids, int64_t n);
  void zero(int64_t id);

  const Stack<T>& stack_;
  int64_t N_;
  int L_, Ho_, H_;
  bool lstm_;
  Buffer<T> h_;  // (L, N, Hout)
  Buffer<T> c_;  // (L, N, H), LSTM
  std::unique_ptr<std::atomic<std::uint8_t>[]> slots_;  // (N) kFree / kIdle / kBusy
  mutable std::mutex free_mutex_;  // guards free_
  std::vector<int64_t> free_;      // free slots, the lowest last
};

extern template class StreamBank<float>;
extern template class StreamBank<double>;

}  // namespace rnnkit
