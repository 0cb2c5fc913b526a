// One process-wide pool of worker threads. The calling thread takes part in the work, so a
// pool of n threads starts n - 1 workers. Sized by set_num_threads / RNNKIT_NUM_THREADS,
// default the machine's physical cores.
#pragma once

#include <functional>

namespace rnnkit {

int physical_cores();
int get_num_threads();
void set_num_threads(int n);  // n >= 1

// Runs fn(i) for every i in [0, n) and returns when all have finished. Runs serially when the
// pool has one thread, when called from inside a pool task, or while another caller holds it.
void parallel_for(int n, const std::function<void(int)>& fn);

}  // namespace rnnkit
