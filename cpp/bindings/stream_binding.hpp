// How register_rnn.cpp hands a Stack to the stream bindings (register_stream.cpp).
#pragma once

#include <cstdint>

#include "common.hpp"
#include "rnnkit/rnn_stack.hpp"

namespace rnnkit_bind {

// A _core.StreamBankf32/f64 over owner's stack (owner, the _core.RNN object, is kept alive).
// convert(x) returns x as a C-contiguous array of T or raises (the Python layer's rules);
// convert_ids(ids) the same for int64 ids. Both are called only off the fast path.
template <class T>
py::object make_stream_bank(py::object owner, const rnnkit::Stack<T>& stack, int64_t capacity,
                            bool all_in_use, py::object convert, py::object convert_ids);

}  // namespace rnnkit_bind
