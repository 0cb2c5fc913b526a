// Each kernel build lives in its own namespace, rnnkit::isa_<name>, and renames Eigen's namespace
// the same way: Eigen is header-only, so without the rename the linker would merge the AVX-512
// and baseline instantiations of the same Eigen template into one, and the baseline path could
// end up executing AVX-512 code. Nothing is shared between builds except plain C structs.
// Included first by every file compiled once per instruction set (see CMakeLists.txt).
#pragma once

#define RNNKIT_PASTE2(a, b) a##b
#define RNNKIT_PASTE(a, b) RNNKIT_PASTE2(a, b)
#define RNNKIT_ISA_NS RNNKIT_PASTE(isa_, RNNKIT_ISA_NAME)
#define Eigen RNNKIT_PASTE(Eigen_rnnkit_, RNNKIT_ISA_NAME)
#define RNNKIT_STR2(a) #a
#define RNNKIT_STR(a) RNNKIT_STR2(a)
