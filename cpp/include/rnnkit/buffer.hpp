// A growable, 64-byte aligned scratch buffer that never shrinks. Workspaces are made of these
// so that steady-state calls allocate nothing. Deliberately not std::vector: the kernels are
// compiled once per instruction set and must not share out-of-line template code with each other.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

namespace rnnkit {

template <class T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : data_(o.data_), size_(o.size_), cap_(o.cap_) {
    o.data_ = nullptr;
    o.size_ = o.cap_ = 0;
  }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = o.data_;
      size_ = o.size_;
      cap_ = o.cap_;
      o.data_ = nullptr;
      o.size_ = o.cap_ = 0;
    }
    return *this;
  }
  ~Buffer() { std::free(data_); }

  // Make room for n elements; contents are unspecified afterwards.
  T* reserve(std::size_t n) {
    if (n > cap_) {
      std::free(data_);
      data_ = nullptr;
      cap_ = 0;
      std::size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
      data_ = static_cast<T*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
      if (!data_) throw std::bad_alloc();
      cap_ = n;
    }
    size_ = n;
    return data_;
  }
  T* zeros(std::size_t n) {
    reserve(n);
    if (n) std::memset(static_cast<void*>(data_), 0, n * sizeof(T));
    return data_;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

}  // namespace rnnkit
