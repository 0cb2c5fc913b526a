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
// amx differs from avx512bf16 only in its bfloat16-weight products at batch (AMX tiles), and is
// taken wherever the CPU has the tiles and the OS lets this process use them (amx_status).
#include "rnnkit/dispatch.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <stdexcept>
#include <string>

#ifndef RNNKIT_HAVE_AMX
#define RNNKIT_HAVE_AMX 0
#endif
#ifndef RNNKIT_AMX_EMULATE
#define RNNKIT_AMX_EMULATE 0
#endif

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
#if RNNKIT_HAVE_AMX
RNNKIT_DECLARE_ISA(amx)
#endif

namespace {

bool cpu_is_intel() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_is("intel");
#else
  return false;
#endif
}

#if defined(__x86_64__) || defined(__i386__)
// The CPU family as CPUID leaf 1 reports it (base family plus extended family), or 0.
// x86 only, like its one caller (elsewhere it would be an unused function, an error with
// RNNKIT_WERROR=ON).
unsigned cpu_family() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  const unsigned base = (eax >> 8) & 0xF;
  return base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
}
#endif

// AMD CPUs whose 512-bit operations run at full width: Zen 5 (family 0x1A) and later.
bool cpu_is_amd_full_width_512() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_is("amd") && cpu_family() >= 0x1A;
#else
  return false;
#endif
}

// Whether the amx kernels can run here and, either way, why. Asks Linux once per process for
// permission to use the tile data state (ARCH_REQ_XCOMP_PERM), which the first tile instruction
// needs; without it that instruction would fault.
struct AmxStatus {
  bool ok = false;
  std::string why;
};
AmxStatus probe_amx() {
#if !RNNKIT_HAVE_AMX
  return {false, "not built (the compiler has no -mamx-tile)"};
#elif RNNKIT_AMX_EMULATE
  if (!isa_supported("avx512bf16")) return {false, "emulated tiles need AVX512-BF16"};
  return {true, "emulated tiles (an RNNKIT_AMX_EMULATION test build: slow)"};
#else
  if (!isa_supported("avx512bf16")) return {false, "the CPU has no AVX512-BF16"};
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22)))
    return {false, "the CPU has no AMX-TILE/AMX-BF16"};
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return {false, "the OS has not enabled XSAVE"};
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return {false, "the OS has not enabled the tile state (XCR0)"};
#if defined(__linux__)
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) != 0)
    return {false, std::string("Linux refused the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM: ") +
                       std::strerror(errno) + ")"};
#endif
  return {true, "AMX-TILE and AMX-BF16, tile data permitted"};
#endif
}
const AmxStatus& amx() {
  static const AmxStatus s = probe_amx();
  return s;
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
    if (has("amx") && !RNNKIT_AMX_EMULATE) {
      d.kernels = &find_isa("amx");
      d.reason += "AMX tiles for bfloat16 weights at batch; otherwise avx512bf16's kernels";
    } else if (has512 && (intel || zen5)) {
      const bool bf16 = has("avx512bf16");
      d.kernels = &find_isa(bf16 ? "avx512bf16" : "avx512");
      d.reason += intel ? "AVX-512 on an Intel CPU (measured faster than AVX2)"
                        : "AVX-512 on AMD Zen 5 or later, full-width 512-bit (measured faster than AVX2)";
      if (bf16) d.reason += ", with AVX512-BF16";
      if (bf16 && intel && RNNKIT_HAVE_AMX) d.reason += " (amx: " + amx().why + ")";
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
#if RNNKIT_HAVE_AMX
  if (name == "amx") return amx().ok;
#endif
#endif
  return false;
}

std::string amx_status() {
#if RNNKIT_HAVE_AMX
  return (amx().ok ? "usable: " : "not usable: ") + amx().why;
#else
  return "not built (the compiler has no -mamx-tile)";
#endif
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
#if RNNKIT_HAVE_AMX
  v.push_back("amx");
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
#if RNNKIT_HAVE_AMX
  if (name == "amx") return isa_amx::kernels();
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
