#!/usr/bin/env bash
# Builds ctxlab with CUDA here and packs what the GPU machine needs into .device/ (git-ignored):
#   .device/bin/     ctxlab and the test executables
#   .device/lib/     the shared libraries they load that the GPU machine lacks (from ldd; glibc and
#                    the CUDA driver stay the machine's own), carried as lib.tar.xz and unpacked by
#                    .device/run on first use (bin/ likewise, as bin.tar.xz)
#   .device/shared/  the fixtures the tests read (copied from ../shared; never committed)
#   .device/run      wrapper: .device/run ctxlab doctor  ==  LD_LIBRARY_PATH=.device/lib .device/bin/ctxlab doctor
# Then call the device tool with carry [".device"] and a command such as
#   .device/run ctxlab doctor && .device/run ctest-all
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-cuda}
SHARED=${SHARED:-../shared}
cmake -S . -B "$BUILD" -G Ninja -DCTXLAB_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
case "${BUNDLE_TESTS:-all}" in
  0) cmake --build "$BUILD" -j"${JOBS:-2}" --target ctxlab ;;
  all) cmake --build "$BUILD" -j"${JOBS:-2}" ;;
  *) cmake --build "$BUILD" -j"${JOBS:-2}" --target ctxlab $BUNDLE_TESTS ;;
esac
rm -rf .device && mkdir -p .device/bin .device/lib .device/shared/fixtures
cp "$BUILD/experiments/ctxlab" .device/bin/
# BUNDLE_TESTS=0 leaves the test executables out, BUNDLE_TESTS="a_test b_test" takes only those (carry
# is limited to 64 MiB); the default takes every test.
case "${BUNDLE_TESTS:-all}" in
  0) ;;
  all) find "$BUILD/tests" -maxdepth 1 -type f -executable -name '*_test' -exec cp {} .device/bin/ \; ;;
  *) for t in $BUNDLE_TESTS; do cp "$BUILD/tests/$t" .device/bin/; done ;;
esac
strip --strip-unneeded .device/bin/* 2>/dev/null || true  # symbols are not needed there; carry is limited
for bin in .device/bin/*; do
  ldd "$bin" | awk '/=> \//{print $3}'
done | sort -u | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libcuda|libcublas|libcublasLt)\.so' | while read -r lib; do
  cp -L "$lib" .device/lib/
done
# CUPTI (`ctxlab bench gpu-timeline` dlopens it, so ldd does not list it): this toolkit's, which the
# GPU machine's CUDA may keep outside the loader's path or lack.
cupti=$(ls /usr/local/cuda/extras/CUPTI/lib64/libcupti.so.1? /usr/local/cuda/lib64/libcupti.so.1? /usr/local/cuda/lib/libcupti.so.1? 2>/dev/null | head -1 || true)
[[ -n "$cupti" ]] && cp -L "$cupti" .device/lib/
# The libraries travel xz-compressed (38 MB -> 10 MB: ICU's data is most of it; carry is limited to
# 64 MiB) and .device/run unpacks them on first use. The archive is kept in the build folder and
# reused while the libraries are the same.
sum=$(cd .device/lib && ls -l | md5sum | cut -d' ' -f1)
if [[ ! -f "$BUILD/device_lib.tar.xz" || "$(cat "$BUILD/device_lib.sum" 2>/dev/null)" != "$sum" ]]; then
  tar -C .device -cf - lib | xz -T2 -3 > "$BUILD/device_lib.tar.xz"
  echo "$sum" > "$BUILD/device_lib.sum"
fi
cp "$BUILD/device_lib.tar.xz" .device/lib.tar.xz
rm -rf .device/lib
# The programs travel compressed too (CUDA fat binaries compress about 4:1).
tar -C .device -cf - bin | xz -T2 -1 > .device/bin.tar.xz
rm -rf .device/bin
cp -r "$SHARED/fixtures/hf" "$SHARED/fixtures/stories260k" "$SHARED/fixtures/tokenizers" .device/shared/fixtures/
# BUNDLE_DATASETS=1: the slices experiments/configs/gpu_quickstart.ini reads (README layout), 3 MB.
if [[ "${BUNDLE_DATASETS:-0}" == 1 ]]; then
  d=.device/shared/datasets
  mkdir -p $d/mmlu/dev $d/mmlu/test $d/longbench/v1
  for s in anatomy astronomy; do
    cp "$SHARED/datasets/mmlu/dev/${s}_dev.csv" $d/mmlu/dev/
    cp "$SHARED/datasets/mmlu/test/${s}_test.csv" $d/mmlu/test/
  done
  cp -r "$SHARED/datasets/hotpotqa" $d/
  cp -r "$SHARED/datasets/longbench/config" $d/longbench/
  cp "$SHARED/datasets/longbench/v1/multi_news.jsonl" $d/longbench/v1/
fi
# The CPU tests' stories260K logit goldens (6 MB) only when every test is bundled.
[[ "${BUNDLE_TESTS:-all}" == all ]] || rm -f .device/shared/fixtures/stories260k/*.f32
cp -r bench/configs .device/bench_configs
cat > .device/run <<'RUN'
#!/usr/bin/env bash
# Runs a bundled program with the bundled libraries. `ctest-all` runs every bundled test;
# `exec CMD ARGS...` runs any command in that environment (e.g. compute-sanitizer .device/bin/x_test).
here="$(cd "$(dirname "$0")" && pwd)"
[[ -d "$here/lib" ]] || tar -C "$here" -xJf "$here/lib.tar.xz"
[[ -d "$here/bin" ]] || tar -C "$here" -xJf "$here/bin.tar.xz"
# cuBLAS (0.5 GB with cuBLASLt) is not bundled: the GPU machine's CUDA 13 has it.
cuda_libs=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$here/lib:${cuda_libs}${LD_LIBRARY_PATH:-}"
export CTXLAB_SHARED_DIR="$here/shared"
export CTXLAB_BIN="$here/bin/ctxlab"  # for cli_test
if [ "$1" = ctest-all ]; then
  shift; rc=0
  for t in "$here"/bin/*_test; do "$t" --gtest_brief=1 "$@" || rc=1; done
  exit $rc
fi
if [ "$1" = exec ]; then shift; exec "$@"; fi
prog="$1"; shift
exec "$here/bin/$prog" "$@"
RUN
chmod +x .device/run
du -sh .device
