// core/instruments/kernel_timeline.h on hand-made kernel records: the grouping of graph launches,
// the increments (which add up to a step's span, and do not count the part of a kernel that overlaps
// the kernels before it), the gaps, the check that every step launches the same kernels, and the
// short names of real demangled kernel names.
#include "core/instruments/kernel_timeline.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

namespace ctx {
namespace {

KernelRecord rec(const std::string& name, uint64_t start, uint64_t end, uint32_t correlation, uint32_t graph = 7,
                 int64_t grid = 132) {
  KernelRecord r;
  r.name = name, r.start_ns = start, r.end_ns = end, r.correlation = correlation, r.graph_id = graph, r.grid = grid;
  r.block = 512, r.registers = 96;
  return r;
}

// One step: gemv 0-10 us, attention 8-14 us (starts 2 us before the GEMV ends), gemv 13-20 us.
std::vector<KernelRecord> step(uint64_t t0, uint32_t correlation) {
  const uint64_t us = 1000;
  return {rec("void ctx::cuda::gemv<1>(int)", t0, t0 + 10 * us, correlation),
          rec("void ctx::cuda::attention(int)", t0 + 8 * us, t0 + 14 * us, correlation, 7, 64),
          rec("void ctx::cuda::gemv<1>(int)", t0 + 13 * us, t0 + 20 * us, correlation)};
}

TEST(KernelTimeline, GraphLaunchesAreGroupedByCorrelationAndOrderedByStart) {
  std::vector<KernelRecord> all = step(50000, 9);
  const auto first = step(0, 4);
  all.insert(all.begin(), first.rbegin(), first.rend());  // out of order
  all.push_back(rec("void ctx::cuda::argmax(int)", 100, 200, 3, 0));  // not from a graph: left out
  const auto launches = graph_launches(all);
  ASSERT_EQ(launches.size(), 2u);
  EXPECT_EQ(launches[0].front().correlation, 4u);
  EXPECT_EQ(launches[1].front().correlation, 9u);
  ASSERT_EQ(launches[0].size(), 3u);
  EXPECT_EQ(launches[0][1].name, "void ctx::cuda::attention(int)");
  EXPECT_LT(launches[0][0].start_ns, launches[0][1].start_ns);
}

TEST(KernelTimeline, LaunchesAreFoundWithoutGraphIdsOrWithoutCorrelationIds) {
  // Graph ids missing: a correlation id shared by several kernels is a graph launch; a lone kernel is not.
  std::vector<KernelRecord> all = step(0, 4);
  for (KernelRecord& r : all) r.graph_id = 0;
  all.push_back(rec("void ctx::cuda::argmax(int)", 30000, 31000, 5, 0));
  auto launches = graph_launches(all);
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_EQ(launches[0].size(), 3u);
  // Correlation ids missing: a launch ends where a graph node comes again.
  all = step(0, 0);
  const auto second = step(50000, 0);
  all.insert(all.end(), second.begin(), second.end());
  for (size_t i = 0; i < all.size(); ++i) all[i].graph_node = 100 + i % 3;
  all.push_back(rec("void ctx::cuda::argmax(int)", 30000, 31000, 0, 0));  // outside the graph
  launches = graph_launches(all);
  ASSERT_EQ(launches.size(), 2u);
  EXPECT_EQ(launches[0].size(), 3u);
  EXPECT_EQ(launches[1].front().start_ns, 50000u);
}

TEST(KernelTimeline, IncrementsAddUpToTheSpan) {
  const StepTimeline t = summarize_steps(graph_launches([] {
    auto a = step(0, 1), b = step(100000, 2);
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }()));
  EXPECT_EQ(t.steps, 2);
  EXPECT_DOUBLE_EQ(t.span_us, 20.0);
  ASSERT_EQ(t.kernels.size(), 2u);  // gemv<1> (grid 132) twice a step, attention (grid 64) once
  const TimelineKernel& gemv = t.kernels[0];
  const TimelineKernel& attention = t.kernels[1];
  EXPECT_EQ(gemv.name, "gemv<1>");
  EXPECT_EQ(attention.name, "attention");
  EXPECT_DOUBLE_EQ(gemv.launches, 2.0);
  EXPECT_DOUBLE_EQ(gemv.duration_us, 17.0);   // 10 + 7
  EXPECT_DOUBLE_EQ(gemv.increment_us, 16.0);  // 10, then 20 - 14
  EXPECT_DOUBLE_EQ(attention.duration_us, 6.0);
  EXPECT_DOUBLE_EQ(attention.increment_us, 4.0);  // 14 - 10
  EXPECT_DOUBLE_EQ(gemv.increment_us + attention.increment_us, t.span_us);
  EXPECT_DOUBLE_EQ(attention.gap_us, -2.0);  // started 2 us before the GEMV ended
  EXPECT_DOUBLE_EQ(gemv.gap_us, -1.0);       // the second launch: 13 - 14 (the first has no predecessor)
}

TEST(KernelTimeline, AKernelInsideAnEarlierOneAddsNothing) {
  const uint64_t us = 1000;
  const StepTimeline t = summarize_steps({{rec("void a()", 0, 10 * us, 1), rec("void b()", 2 * us, 5 * us, 1)}});
  ASSERT_EQ(t.kernels.size(), 2u);
  EXPECT_DOUBLE_EQ(t.kernels[1].increment_us, 0.0);
  EXPECT_DOUBLE_EQ(t.kernels[0].increment_us, t.span_us);
}

TEST(KernelTimeline, StepsThatDifferAreRefused) {
  auto a = step(0, 1), b = step(100000, 2);
  b[1].grid = 32;  // another attention split
  EXPECT_THROW(summarize_steps({a, b}), Error);
  b = step(100000, 2);
  b.pop_back();
  EXPECT_THROW(summarize_steps({a, b}), Error);
  EXPECT_THROW(summarize_steps({}), Error);
}

TEST(KernelTimeline, ShortNamesDropReturnTypeNamespacesAndArguments) {
  EXPECT_EQ(short_kernel_name("void ctx::cuda::(anonymous namespace)::quant_gemv_kernel<ctx::cuda::quant_device::Int8Format, "
                              "true, false, 16, false, true>(ctx::cuda::(anonymous namespace)::QuantGemvArgs)"),
            "quant_gemv_kernel<Int8Format, true, false, 16, false, true>");
  EXPECT_EQ(short_kernel_name("void ctx::cuda::attention_partial_kernel<128, (ctx::cuda::MaskKind)0>(ctx::cuda::AttentionParams)"),
            "attention_partial_kernel<128, (MaskKind)0>");
  EXPECT_EQ(short_kernel_name("argmax_kernel"), "argmax_kernel");  // not demangled: as it is
}

}  // namespace
}  // namespace ctx
