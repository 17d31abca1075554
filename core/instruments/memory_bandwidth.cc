#include "core/instruments/memory_bandwidth.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/instruments/clock.h"

namespace ctx {
MemoryBandwidth measure_memory_bandwidth(size_t buffer_bytes, int repeats) {
  const size_t n = buffer_bytes / sizeof(float);
  std::vector<float> a(n), b(n);
  // First touch in parallel, so pages are spread as the kernels will use them.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < int64_t(n); ++i) a[size_t(i)] = float(i & 1023), b[size_t(i)] = 0;
  MemoryBandwidth r;
  r.buffer_bytes = buffer_bytes;
  volatile float sink = 0;
  for (int rep = 0; rep < repeats; ++rep) {
    double t0 = monotonic_seconds();
#pragma omp parallel
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const size_t lo = n * size_t(t) / size_t(nt), hi = n * size_t(t + 1) / size_t(nt);
      std::memcpy(b.data() + lo, a.data() + lo, (hi - lo) * sizeof(float));
    }
    double dt = monotonic_seconds() - t0;
    r.copy_gbps = std::max(r.copy_gbps, 2.0 * double(buffer_bytes) / dt / 1e9);

    t0 = monotonic_seconds();
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
      // Each thread reads its range as 4 concurrent streams (as the decode GEMV reads 4 weight rows),
      // which keeps more cache-line fetches in flight than one stream does.
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const size_t lo = n * size_t(t) / size_t(nt), hi = n * size_t(t + 1) / size_t(nt);
      const size_t quarter = ((hi - lo) / 4) & ~size_t(7);
      const float* p0 = a.data() + lo;
      __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      for (size_t i = 0; i < quarter; i += 8) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p0 + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p0 + quarter + i));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p0 + 2 * quarter + i));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p0 + 3 * quarter + i));
      }
      float tmp[8];
      _mm256_storeu_ps(tmp, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
      for (float v : tmp) total += v;
      for (size_t i = lo + 4 * quarter; i < hi; ++i) total += a[i];
    }
    dt = monotonic_seconds() - t0;
    sink = sink + total;
    r.read_gbps = std::max(r.read_gbps, double(buffer_bytes) / dt / 1e9);
  }
  (void)sink;
  return r;
}

}  // namespace ctx
