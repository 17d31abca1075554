// ctxlab bench gpu-prefill-attention: prefill attention alone (core/cuda/gpu_attention.h) over
// prompt lengths, causal (or in a sliding window), the tensor-core flash kernels (mma.sync, and
// wgmma on Hopper, plain and TMA + warp-specialised; block shapes) and for comparison the split-KV
// kernel and eager attention (scores materialised by cuBLAS), in microseconds, TFLOP/s
// (prefill_attention_flops: 4 * heads * head_dim * n^2 / 2 for a causal prompt) and the case's peak
// device memory (q, K, V, out and workspaces: eager's float32 score matrix); --block-size reads K/V
// from a paged pool (blocks of that many positions, shuffled) instead of one contiguous cache. bench/gpu/prefill_attention_torch.py
// measures PyTorch's backends on the same shapes with the same count.
#include <cstdio>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/cuda/gpu_attention.h"
#include "experiments/cli/bench_common.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {

int bench_gpu_prefill_attention(const Args& args) {
  po::options_description desc("bench gpu-prefill-attention options");
  desc.add_options()
      ("tokens", po::value<std::string>()->default_value("4096,8192,16384,32768"), "prompt lengths, e.g. 4096,16384")
      ("heads", po::value<int64_t>()->default_value(32), "query heads")
      ("kv-heads", po::value<int64_t>()->default_value(0), "KV heads (0 = heads)")
      ("head-dim", po::value<int64_t>()->default_value(128), "head dimension (flash: 64 or 128)")
      ("window", po::value<std::string>()->default_value("0"), "sliding windows to try (0 = causal), e.g. 0,4096")
      ("kernel", po::value<std::string>()->default_value("flash,wgmma"),
       "kernels: flash (mma.sync), wgmma (Hopper), tma (Hopper, TMA + warp-specialised), split_kv, eager, e.g. flash,wgmma")
      ("tiles", po::value<std::string>()->default_value("default"),
       "flash block shapes (query rows x warps) to try: default, 64x4, 128x4 (mma.sync), 128x8, 128x12 (tma), e.g. 64x4,128x8")
      ("tma-pingpong", po::value<std::string>()->default_value("1"),
       "tma: consumer warpgroups take turns issuing (1), or not (0); 1,0 times both (the second as tma-free)")
      ("block-size", po::value<std::string>()->default_value("0"),
       "KV layouts: 0 = contiguous, else paged with blocks of that many positions (a power of two <= 1024), e.g. 0,16,128")
      ("rounds", po::value<int>()->default_value(10), "timings per point (median reported)")
      ("launches", po::value<int>()->default_value(3), "launches per timing");
  po::variables_map vm;
  if (!parse_options("bench gpu-prefill-attention", "[options]", desc, args, vm)) return 0;
  const auto tokens = parse_size_list(vm["tokens"].as<std::string>(), "--tokens");
  const auto windows = parse_size_list(vm["window"].as<std::string>(), "--window");
  const auto block_sizes = parse_size_list(vm["block-size"].as<std::string>(), "--block-size");
  std::vector<std::pair<int, int>> tiles;  // (rows, warps); (0, 0) = the default
  std::stringstream tile_list(vm["tiles"].as<std::string>());
  for (std::string t; std::getline(tile_list, t, ',');) {
    int r = 0, w = 0;
    char x = 0;
    if (t != "default" && !(std::istringstream(t) >> r >> x >> w && x == 'x'))
      fail("--tiles: '", t, "' is not ROWSxWARPS (e.g. 128x8) or default");
    tiles.emplace_back(r, w);
  }
  std::vector<std::pair<std::string, cuda::AttentionKernel>> kernels;
  std::stringstream names(vm["kernel"].as<std::string>());
  for (std::string name; std::getline(names, name, ',');) {
    if (name == "flash") kernels.emplace_back(name, cuda::AttentionKernel::kFlash);
    else if (name == "wgmma") kernels.emplace_back(name, cuda::AttentionKernel::kFlashWgmma);
    else if (name == "tma") {
      std::stringstream modes(vm["tma-pingpong"].as<std::string>());
      for (std::string m; std::getline(modes, m, ',');) {
        if (m != "0" && m != "1") fail("--tma-pingpong: '", m, "' is not 0 or 1");
        kernels.emplace_back(m == "1" ? "tma" : "tma-free", cuda::AttentionKernel::kFlashTma);
      }
    }
    else if (name == "split_kv") kernels.emplace_back(name, cuda::AttentionKernel::kSplitKv);
    else if (name == "eager") kernels.emplace_back(name, cuda::AttentionKernel::kEager);
    else fail("--kernel: unknown kernel '", name, "' (known: flash, wgmma, tma, split_kv, eager)");
  }
  const int rounds = vm["rounds"].as<int>(), launches = vm["launches"].as<int>();
  if (rounds < 1 || launches < 1) fail("--rounds and --launches must be >= 1");
  cuda::GpuAttentionCase c;
  c.heads = vm["heads"].as<int64_t>(), c.head_dim = vm["head-dim"].as<int64_t>();
  c.kv_heads = vm["kv-heads"].as<int64_t>() > 0 ? vm["kv-heads"].as<int64_t>() : c.heads;
  std::printf("prefill attention, bf16, queries = prompt tokens: heads %lld, kv heads %lld, head_dim %lld; "
              "median of %d timings of %d launches\n\n",
              (long long)c.heads, (long long)c.kv_heads, (long long)c.head_dim, rounds, launches);
  std::printf("| tokens | window | KV block | kernel | rows x warps | us | TFLOP/s | peak MB |\n"
              "|---|---|---|---|---|---|---|---|\n");
  for (int64_t n : tokens)
    for (int64_t w : windows)
      for (int64_t bs : block_sizes)
        for (const auto& [name, k] : kernels)
          for (const auto& [r, wp] : tiles) {
            const bool flash = k == cuda::AttentionKernel::kFlash || k == cuda::AttentionKernel::kFlashWgmma;
            if (!flash && (r != tiles.front().first || wp != tiles.front().second)) continue;  // shapes are the flash kernels'
            if (bs > 0 && k == cuda::AttentionKernel::kEager) continue;  // eager reads a contiguous cache only
            c.length = n, c.queries = n, c.window = w, c.block_size = bs, c.kernel = k, c.flash_pingpong = name != "tma-free";
            c.flash_rows = flash ? r : 0, c.flash_warps = flash ? wp : 0;
            if (k == cuda::AttentionKernel::kFlashWgmma && r == 128 && wp == 4) continue;  // an mma.sync shape only
            if ((k == cuda::AttentionKernel::kFlashTma) != (wp == 12) && r != 0) continue;  // 128x12: the TMA kernel's only
            const auto t = cuda::measure_prefill_attention(c, rounds, launches);
            const std::string shape = !flash ? "-" : r == 0 ? "default" : std::to_string(r) + "x" + std::to_string(wp);
            // Paged K/V on "tma": the TMA kernel hands it to the wgmma 64x4 kernel (flash_attention.h).
            std::printf("| %lld | %lld | %lld | %s | %s | %.1f | %.1f | %.0f |\n", (long long)n, (long long)w,
                        (long long)bs, name.c_str(), shape.c_str(), t.us, t.tflops, double(t.peak_bytes) / (1 << 20));
            std::fflush(stdout);
          }
  return 0;
}

}  // namespace ctx::cli
