// Picks the kernel build for this CPU at import. RNNKIT_ISA=baseline|avx2|avx512|avx512bf16
// forces one.
//
// The default is not simply the widest instruction set, it is the one measured fastest on the
// suite (bench/run.py --isas): AVX-512 on Intel CPUs, where the 512-bit kernels measured faster
// at every batch size, and on AMD Zen 5 and later (family 0x1A+), whose 512-bit datapaths are
// full width: 1.5-1.7x faster than AVX2 from batch 16, even at batch 1 (an EPYC VM,
// bench/run.py --isas). AMD Zen 4 (family 0x19) executes 512-bit operations as two 256-bit
// halves; there AVX2 stays the default, as an earlier measurement of Eigen's GEMM suggested
// (not re-measured on our kernels). avx512bf16 differs from avx512 only in its bfloat16-weight
// products (VDPBF16PS), so it is taken wherever avx512 would be and the CPU has AVX512-BF16.
#include "rnnkit/dispatch.hpp"

#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdexcept>
#include <string>

namespace rnnkit {

#define RNNKIT_DECLARE_ISA(name) \
  namespace isa_##name {         \
  const Kernels& kernels();      \
  }
RNNKIT_DECLARE_ISA(baseline)
#if RNNKIT_HAVE_AVX2
RNNKIT_DECLARE_ISA(avx2)
#endif
#if RNNKIT_HAVE_AVX512
RNNKIT_DECLARE_ISA(avx512)
#endif
#if RNNKIT_HAVE_AVX512BF16
RNNKIT_DECLARE_ISA(avx512bf16)
#endif

namespace {

bool cpu_is_intel() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_is("intel");
#else
  return false;
#endif
}

// The CPU family as CPUID leaf 1 reports it (base family plus extended family), or 0.
unsigned cpu_family() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  const unsigned base = (eax >> 8) & 0xF;
  return base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
#else
  return 0;
#endif
}

// AMD CPUs whose 512-bit operations run at full width: Zen 5 (family 0x1A) and later.
bool cpu_is_amd_full_width_512() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_is("amd") && cpu_family() >= 0x1A;
#else
  return false;
#endif
}

struct Choice {
  const Kernels* kernels = nullptr;
  std::string reason;
};

Choice& current() {
  static Choice c = [] {
    Choice d;
    const char* forced = std::getenv("RNNKIT_ISA");
    if (forced && *forced) {
      try {
        Choice f;
        f.kernels = &find_isa(forced);
        f.reason = std::string("forced by RNNKIT_ISA=") + forced;
        return f;
      } catch (const std::exception&) {
        d.reason = std::string("RNNKIT_ISA=") + forced + " is not usable here; ";
      }
    }
    auto avail = available_isas();
    auto has = [&](const char* n) { return std::find(avail.begin(), avail.end(), n) != avail.end(); };
    const bool has512 = has("avx512");
    const bool has2 = has("avx2");
    const bool intel = cpu_is_intel(), zen5 = cpu_is_amd_full_width_512();
    if (has512 && (intel || zen5)) {
      const bool bf16 = has("avx512bf16");
      d.kernels = &find_isa(bf16 ? "avx512bf16" : "avx512");
      d.reason += intel ? "AVX-512 on an Intel CPU (measured faster than AVX2)"
                        : "AVX-512 on AMD Zen 5 or later, full-width 512-bit (measured faster than AVX2)";
      if (bf16) d.reason += ", with AVX512-BF16";
    } else if (has2) {
      d.kernels = &find_isa("avx2");
      d.reason += has512 ? "AVX2+FMA: measured faster than AVX-512 on CPUs that split 512-bit ops"
                         : "AVX2+FMA is the widest supported instruction set";
    } else {
      d.kernels = &find_isa("baseline");
      d.reason += "no AVX2+FMA on this CPU";
    }
    return d;
  }();
  return c;
}

}  // namespace

bool isa_supported(const std::string& name) {
  if (name == "baseline") return true;
#if (defined(__x86_64__) || defined(__i386__))
#if RNNKIT_HAVE_AVX2
  if (name == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if RNNKIT_HAVE_AVX512
  if (name == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if RNNKIT_HAVE_AVX512BF16
  if (name == "avx512bf16") return isa_supported("avx512") && __builtin_cpu_supports("avx512bf16");
#endif
#endif
  return false;
}

std::vector<std::string> compiled_isas() {
  std::vector<std::string> v{"baseline"};
#if RNNKIT_HAVE_AVX2
  v.push_back("avx2");
#endif
#if RNNKIT_HAVE_AVX512
  v.push_back("avx512");
#endif
#if RNNKIT_HAVE_AVX512BF16
  v.push_back("avx512bf16");
#endif
  return v;
}

std::vector<std::string> available_isas() {
  std::vector<std::string> v;
  for (auto& n : compiled_isas())
    if (isa_supported(n)) v.push_back(n);
  return v;
}

const Kernels& find_isa(const std::string& name) {
  if (!isa_supported(name)) {
    std::string have;
    for (auto& n : available_isas()) have += (have.empty() ? "" : ", ") + n;
    throw std::invalid_argument("[set_isa] ISA '" + name + "' is not available on this CPU/build; available: " + have);
  }
  if (name == "baseline") return isa_baseline::kernels();
#if RNNKIT_HAVE_AVX2
  if (name == "avx2") return isa_avx2::kernels();
#endif
#if RNNKIT_HAVE_AVX512
  if (name == "avx512") return isa_avx512::kernels();
#endif
#if RNNKIT_HAVE_AVX512BF16
  if (name == "avx512bf16") return isa_avx512bf16::kernels();
#endif
  throw std::invalid_argument("[set_isa] unknown ISA '" + name + "'");
}

void set_isa(const std::string& name) {
  const Kernels& k = find_isa(name);
  Choice& c = current();
  c.kernels = &k;
  c.reason = "set by set_isa('" + name + "')";
}

const Kernels& active_kernels() { return *current().kernels; }
std::string active_isa_reason() { return current().reason; }

}  // namespace rnnkit
