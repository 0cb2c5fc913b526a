#include "rnnkit/stream_bank.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace rnnkit {

template <class T>
StreamBank<T>::StreamBank(const Stack<T>& stack, int64_t capacity, bool all_in_use)
    : stack_(stack), N_(capacity) {
  const StackSpec& s = stack.spec();
  if (s.num_dirs != 1 || s.reverse)
    throw std::invalid_argument("[stream] a stack that reads time backwards (bidirectional or reverse) cannot stream");
  if (capacity < 1) throw std::invalid_argument("[stream] capacity must be >= 1");
  L_ = s.num_layers;
  Ho_ = s.cell.out_size();
  H_ = s.cell.hidden_size;
  lstm_ = s.cell.kind == CellKind::LSTM;
  h_.zeros(std::size_t(L_) * N_ * Ho_);
  if (lstm_) c_.zeros(std::size_t(L_) * N_ * H_);
  slots_.reset(new std::atomic<std::uint8_t>[std::size_t(N_)]);
  for (int64_t i = 0; i < N_; ++i) slots_[i].store(all_in_use ? kIdle : kFree, std::memory_order_relaxed);
  if (!all_in_use) {
    free_.reserve(std::size_t(N_));
    for (int64_t i = N_ - 1; i >= 0; --i) free_.push_back(i);
  }
}

template <class T>
int64_t StreamBank<T>::num_free() const {
  std::lock_guard<std::mutex> lock(free_mutex_);
  return int64_t(free_.size());
}

template <class T>
std::vector<int64_t> StreamBank<T>::in_use() const {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < N_; ++i)
    if (slots_[i].load(std::memory_order_acquire) != kFree) ids.push_back(i);
  return ids;
}

template <class T>
void StreamBank<T>::zero(int64_t id) {
  for (int l = 0; l < L_; ++l) {
    std::memset(static_cast<void*>(h_.data() + (l * N_ + id) * Ho_), 0, Ho_ * sizeof(T));
    if (lstm_) std::memset(static_cast<void*>(c_.data() + (l * N_ + id) * H_), 0, H_ * sizeof(T));
  }
}

template <class T>
void StreamBank<T>::claim(const char* fn, const int64_t* ids, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = ids ? ids[i] : i;
    std::uint8_t was = kIdle;
    if (slots_[id].compare_exchange_strong(was, kBusy, std::memory_order_acquire)) continue;
    for (int64_t j = 0; j < i; ++j) slots_[ids ? ids[j] : j].store(kIdle, std::memory_order_release);
    std::string why;
    if (was == kFree) {
      why = " is free (not in use): add() a stream before using it";
    } else {
      bool twice = false;
      for (int64_t j = 0; j < i && !twice; ++j) twice = ids && ids[j] == id;
      why = twice ? " appears twice in ids"
                  : " is in use by another call right now (another thread is stepping or reading it); "
                    "concurrent calls on one bank must use disjoint ids";
    }
    throw std::invalid_argument(std::string("[") + fn + "] stream id " + std::to_string(id) + why);
  }
}

template <class T>
void StreamBank<T>::unclaim(const int64_t* ids, int64_t n) {
  for (int64_t i = 0; i < n; ++i) slots_[ids ? ids[i] : i].store(kIdle, std::memory_order_release);
}

template <class T>
int64_t StreamBank<T>::add() {
  std::lock_guard<std::mutex> lock(free_mutex_);
  if (free_.empty()) return -1;
  const int64_t id = free_.back();
  free_.pop_back();
  zero(id);
  slots_[id].store(kIdle, std::memory_order_release);
  return id;
}

template <class T>
void StreamBank<T>::release(const int64_t* ids, int64_t n) {
  claim("StreamBank.free", ids, n);
  std::lock_guard<std::mutex> lock(free_mutex_);
  for (int64_t i = 0; i < n; ++i) {
    slots_[ids[i]].store(kFree, std::memory_order_release);
    free_.push_back(ids[i]);
  }
}

template <class T>
void StreamBank<T>::reset(const int64_t* ids, int64_t n) {
  std::vector<int64_t> all;
  if (!ids) {
    all = in_use();
    ids = all.data();
    n = int64_t(all.size());
  }
  claim("StreamBank.reset", ids, n);
  for (int64_t i = 0; i < n; ++i) zero(ids[i]);
  unclaim(ids, n);
}

template <class T>
void StreamBank<T>::step(const int64_t* ids, int64_t n, const T* x, T* y) {
  if (!ids) n = N_;
  claim("step", ids, n);
  try {
    stack_.step(x, int(n), ids, N_, h_.data(), lstm_ ? c_.data() : nullptr, y);
  } catch (...) {
    unclaim(ids, n);
    throw;
  }
  unclaim(ids, n);
}

template <class T>
void StreamBank<T>::run(int steps, const T* x, T* y) {
  if (!stack_.frozen()) throw std::logic_error("[stream] the module is in training mode; streams run in inference mode");
  claim("run", nullptr, N_);
  try {
    T* c = lstm_ ? c_.data() : nullptr;
    stack_.forward(x, SeqShape{steps, int(N_), nullptr}, h_.data(), c, {}, y, h_.data(), c, nullptr);
  } catch (...) {
    unclaim(nullptr, N_);
    throw;
  }
  unclaim(nullptr, N_);
}

template <class T>
void StreamBank<T>::get_state(int64_t id, T* h, T* c) {
  const int64_t n = id < 0 ? N_ : 1;
  claim("state", id < 0 ? nullptr : &id, n);
  for (int l = 0; l < L_; ++l) {
    const int64_t first = id < 0 ? 0 : id;
    std::memcpy(h + l * n * Ho_, h_.data() + (l * N_ + first) * Ho_, n * Ho_ * sizeof(T));
    if (lstm_ && c) std::memcpy(c + l * n * H_, c_.data() + (l * N_ + first) * H_, n * H_ * sizeof(T));
  }
  unclaim(id < 0 ? nullptr : &id, n);
}

template <class T>
void StreamBank<T>::set_state(int64_t id, const T* h, const T* c) {
  const int64_t n = id < 0 ? N_ : 1;
  claim("set_state", id < 0 ? nullptr : &id, n);
  for (int l = 0; l < L_; ++l) {
    const int64_t first = id < 0 ? 0 : id;
    std::memcpy(h_.data() + (l * N_ + first) * Ho_, h + l * n * Ho_, n * Ho_ * sizeof(T));
    if (lstm_ && c) std::memcpy(c_.data() + (l * N_ + first) * H_, c + l * n * H_, n * H_ * sizeof(T));
  }
  unclaim(id < 0 ? nullptr : &id, n);
}

template class StreamBank<float>;
template class StreamBank<double>;

}  // namespace rnnkit
