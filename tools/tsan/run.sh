#!/usr/bin/env bash
# ThreadSanitizer on the core's thread pool and team kernels, no Python: compiles the core's
# C++ sources (not the bindings) with -fsanitize=thread, the kernels once per instruction set
# as CMakeLists.txt does, links tools/tsan/driver.cpp against them and runs it. Fails on any
# TSan report (halt_on_error) and on any result that differs from the 1-thread one.
#
#   tools/tsan/run.sh [ISA ...]     default: every ISA this compiler can build (x86-64: all five)
#
# Eigen: $EIGEN_INCLUDE, else the cmeel-eigen of the active Python (a build requirement of
# rnnkit), else /usr/include/eigen3. Objects go to build/tsan (rebuilt only when a source changes).
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${CXX:-g++}
OUT=build/tsan
mkdir -p "$OUT"

if [[ -z "${EIGEN_INCLUDE:-}" ]]; then
  EIGEN_INCLUDE=$(python3 -c "import cmeel, os; print(os.path.join(os.path.dirname(cmeel.__path__[0]), 'cmeel.prefix', 'include', 'eigen3'))" 2>/dev/null || true)
  [[ -d "$EIGEN_INCLUDE" ]] || EIGEN_INCLUDE=/usr/include/eigen3
fi
[[ -f "$EIGEN_INCLUDE/Eigen/Core" ]] || { echo "tsan: no Eigen at $EIGEN_INCLUDE (pip install cmeel-eigen, or set EIGEN_INCLUDE)" >&2; exit 2; }

# The flags of CMakeLists.txt's RNNKIT_ISA_FLAGS_<isa>.
AVX512="-mavx512f -mavx512cd -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c"
declare -A ISA_FLAGS=(
  [baseline]=""
  [avx2]="-mavx2 -mfma -mf16c"
  [avx512]="$AVX512"
  [avx512bf16]="$AVX512 -mavx512bf16"
  [amx]="$AVX512 -mavx512bf16 -mamx-tile -mamx-bf16 -mamx-int8 -DRNNKIT_AMX=1"
)
if [[ $(uname -m) == x86_64 ]]; then
  ISAS=(baseline avx2 avx512 avx512bf16 amx)
  echo 'int main(){}' | "$CXX" -x c++ -mamx-tile -mamx-bf16 -mamx-int8 -o /dev/null - 2>/dev/null || ISAS=(baseline avx2 avx512 avx512bf16)
else
  ISAS=(baseline)
fi

CXXFLAGS=(-std=c++17 -O2 -g -fsanitize=thread -fno-omit-frame-pointer -DEIGEN_DONT_PARALLELIZE
          -Icpp/include -Icpp/src -isystem "$EIGEN_INCLUDE")
DEFS=()
for isa in "${ISAS[@]}"; do DEFS+=("-DRNNKIT_HAVE_${isa^^}=1"); done

# compile SRC OBJ [FLAGS...]: only when OBJ is older than SRC or any header
HEADERS=$(find cpp/include cpp/src -name '*.hpp' -newer "$OUT/.stamp" 2>/dev/null | head -1 || true)
compile() {
  local src=$1 obj=$2
  shift 2
  if [[ ! -f $obj || $src -nt $obj || -n $HEADERS || $0 -nt $obj ]]; then
    "$CXX" "${CXXFLAGS[@]}" "$@" -c "$src" -o "$obj"
  fi
}

start=$SECONDS
pids=()
objs=()
# two compilers at a time (the machines CI runs on have two cores)
jobs_running() { jobs -rp | wc -l; }
for isa in "${ISAS[@]}"; do
  obj=$OUT/kernels_$isa.o
  objs+=("$obj")
  # shellcheck disable=SC2086
  compile cpp/src/kernels/rnn_kernels.cpp "$obj" -DRNNKIT_ISA_NAME="$isa" ${ISA_FLAGS[$isa]} &
  pids+=($!)
  while (( $(jobs_running) >= ${TSAN_JOBS:-2} )); do sleep 0.5; done
done
for src in dispatch thread_pool rnn_stack packing; do
  obj=$OUT/$src.o
  objs+=("$obj")
  compile "cpp/src/$src.cpp" "$obj" "${DEFS[@]}" &
  pids+=($!)
  while (( $(jobs_running) >= ${TSAN_JOBS:-2} )); do sleep 0.5; done
done
compile tools/tsan/driver.cpp "$OUT/driver.o" &
pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
"$CXX" -fsanitize=thread -o "$OUT/driver" "$OUT/driver.o" "${objs[@]}" -lpthread
touch "$OUT/.stamp"
echo "tsan: built in $((SECONDS - start)) s"

start=$SECONDS
# halt_on_error: the first report fails the run; exitcode 66 marks a report (the driver itself
# exits 1 on a mismatch)
TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
  timeout "${TSAN_TIMEOUT:-900}" "$OUT/driver" "$@"
echo "tsan: ran clean in $((SECONDS - start)) s"
