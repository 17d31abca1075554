// KvCache in both layouts and the BlockPool behind the paged one: growth keeps contents, blocks are
// allocated on demand and accounted (reserved vs used), released on clear()/destruction and reused
// before the pool grows, fork() shares blocks with copy-on-write; and end to end, sequences that
// fork a common paged prefix reproduce independent contiguous runs.
#include <gtest/gtest.h>

#include <set>

#include "core/model/block_pool.h"
#include "core/model/kv_cache.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "tests/support/attention.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.num_layers = 2;
  c.num_kv_heads = 3;
  c.head_dim = 5;
  return c;
}

// A value unique to (layer, K or V, head, position, d): any misplaced or lost entry shows.
float tag(int64_t layer, int kv, int64_t head, int64_t pos, int64_t d) {
  return float((((layer * 2 + kv) * 10 + head) * 10000 + pos) * 10 + d);
}

void write_positions(KvCache& cache, const ModelConfig& c, int64_t from, int64_t to, float offset = 0) {
  cache.reserve(to);
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int64_t h = 0; h < c.num_kv_heads; ++h)
      for (int64_t t = from; t < to; ++t)
        for (int64_t d = 0; d < c.head_dim; ++d) {
          cache.key_slot(l, h, t)[d] = tag(l, 0, h, t, d) + offset;
          cache.value_slot(l, h, t)[d] = tag(l, 1, h, t, d) + offset;
        }
  cache.set_length(to);
}

// Checks positions [from, to) through view() (the path attention reads) against write_positions.
void expect_positions(const KvCache& cache, const ModelConfig& c, int64_t from, int64_t to, float offset = 0) {
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const KvView v = cache.view(l);
    for (int64_t h = 0; h < c.num_kv_heads; ++h)
      for (int64_t t = from; t < to; ++t)
        for (int64_t d = 0; d < c.head_dim; ++d) {
          ASSERT_EQ(v.key(h, t)[d], tag(l, 0, h, t, d) + offset) << "layer " << l << " head " << h << " pos " << t;
          ASSERT_EQ(v.value(h, t)[d], tag(l, 1, h, t, d) + offset) << "layer " << l << " head " << h << " pos " << t;
        }
  }
}

int64_t position_bytes(const ModelConfig& c) { return 2 * c.num_layers * c.num_kv_heads * c.head_dim * 4; }

TEST(KvCacheContiguous, GrowthKeepsContents) {
  const ModelConfig c = small_config();
  KvCache cache(c);
  EXPECT_EQ(cache.layout(), KvLayout::kContiguous);
  EXPECT_EQ(cache.capacity(), 0);
  int64_t len = 0;
  for (int64_t target : {1, 5, 17, 40, 100, 333}) {
    write_positions(cache, c, len, target);
    len = target;
    EXPECT_GE(cache.capacity(), len);
    EXPECT_EQ(cache.view(0).capacity, cache.capacity());
    expect_positions(cache, c, 0, len);
  }
  EXPECT_EQ(cache.bytes_used(), 333 * position_bytes(c));
  EXPECT_EQ(cache.bytes_reserved(), cache.capacity() * position_bytes(c));
  cache.clear();
  EXPECT_EQ(cache.position(), 0);
}

TEST(KvCacheContiguous, ForkIsADeepCopy) {
  const ModelConfig c = small_config();
  KvCache parent(c);
  write_positions(parent, c, 0, 20);
  KvCache child = parent.fork();
  EXPECT_EQ(child.position(), 20);
  write_positions(child, c, 10, 30, 0.5f);  // overwrite part of the common prefix in the child
  expect_positions(parent, c, 0, 20);
  expect_positions(child, c, 0, 10);
  expect_positions(child, c, 10, 30, 0.5f);
}

TEST(KvCachePaged, AllocatesBlocksOnDemandAndReportsWaste) {
  const ModelConfig c = small_config();
  auto pool = std::make_shared<BlockPool>(c, 4);
  KvCache cache(c, pool);
  EXPECT_EQ(cache.layout(), KvLayout::kPaged);
  EXPECT_EQ(cache.block_table().size(), 0u);
  for (int64_t n = 1; n <= 37; ++n) {
    write_positions(cache, c, n - 1, n);
    const int64_t blocks = (n + 3) / 4;  // ceil(n / block_size)
    ASSERT_EQ(int64_t(cache.block_table().size()), blocks) << "length " << n;
    EXPECT_EQ(cache.capacity(), blocks * 4);
    EXPECT_EQ(cache.bytes_used(), n * position_bytes(c));
    EXPECT_EQ(cache.bytes_reserved(), blocks * 4 * position_bytes(c));
    // Waste is the unused tail of the last block only.
    EXPECT_LT(cache.bytes_reserved() - cache.bytes_used(), 4 * position_bytes(c));
    EXPECT_EQ(pool->blocks_in_use(), blocks);
  }
  expect_positions(cache, c, 0, 37);
  // reserve() ahead of writing allocates only what it needs.
  cache.reserve(41);
  EXPECT_EQ(cache.block_table().size(), 11u);
  EXPECT_EQ(pool->bytes_in_use(), 11 * 4 * position_bytes(c));
  EXPECT_GE(pool->bytes_reserved(), pool->bytes_in_use());
}

TEST(KvCachePaged, ReleasesBlocksOnClearAndDestruction) {
  const ModelConfig c = small_config();
  auto pool = std::make_shared<BlockPool>(c, 8);
  {
    KvCache cache(c, pool);
    write_positions(cache, c, 0, 40);  // 5 blocks
    EXPECT_EQ(pool->blocks_in_use(), 5);
    cache.clear();
    EXPECT_EQ(pool->blocks_in_use(), 0);
    EXPECT_EQ(cache.position(), 0);
    EXPECT_EQ(cache.bytes_reserved(), 0);
    write_positions(cache, c, 0, 9);  // usable again after clear()
    expect_positions(cache, c, 0, 9);
    EXPECT_EQ(pool->blocks_in_use(), 2);
  }
  EXPECT_EQ(pool->blocks_in_use(), 0);
  // Moving a cache transfers its blocks; assigning over one releases the old ones.
  KvCache a(c, pool), b(c, pool);
  write_positions(a, c, 0, 16);
  write_positions(b, c, 0, 24);
  EXPECT_EQ(pool->blocks_in_use(), 5);
  a = std::move(b);
  EXPECT_EQ(pool->blocks_in_use(), 3);
  expect_positions(a, c, 0, 24);
}

TEST(KvCachePaged, FinishedSequencesBlocksAreReusedWithoutGrowingThePool) {
  const ModelConfig c = small_config();
  auto pool = std::make_shared<BlockPool>(c, 8);
  KvCache running(c, pool);
  write_positions(running, c, 0, 30);  // 4 blocks, stays alive throughout
  std::set<int32_t> first_blocks;
  {
    KvCache done(c, pool);
    write_positions(done, c, 0, 40);  // 5 blocks
    first_blocks.insert(done.block_table().begin(), done.block_table().end());
  }
  const int64_t total = pool->blocks_total();
  const int64_t reserved = pool->bytes_reserved();
  // The next sequence takes the finished one's blocks.
  KvCache next(c, pool);
  write_positions(next, c, 0, 40);
  EXPECT_EQ(std::set<int32_t>(next.block_table().begin(), next.block_table().end()), first_blocks);
  next.clear();
  // Many sequences, one after another: the pool never grows.
  for (int i = 0; i < 50; ++i) {
    KvCache seq(c, pool);
    write_positions(seq, c, 0, 8 * (1 + i % 5), float(i));
    expect_positions(seq, c, 0, 8 * (1 + i % 5), float(i));
  }
  EXPECT_EQ(pool->blocks_total(), total);
  EXPECT_EQ(pool->bytes_reserved(), reserved);
  EXPECT_EQ(pool->blocks_in_use(), 4);
  expect_positions(running, c, 0, 30);
}

TEST(KvCachePaged, ForkSharesBlocksAndCopiesOnFirstWriteIntoASharedPartialBlock) {
  const ModelConfig c = small_config();
  auto pool = std::make_shared<BlockPool>(c, 4);
  KvCache parent(c, pool);
  write_positions(parent, c, 0, 10);  // blocks: [0..3] [4..7] [8, 9, -, -]
  const std::vector<int32_t> parent_blocks = parent.block_table();
  ASSERT_EQ(parent_blocks.size(), 3u);

  KvCache child = parent.fork();
  EXPECT_EQ(child.position(), 10);
  EXPECT_EQ(child.block_table(), parent_blocks);  // shared, nothing copied
  for (int32_t b : parent_blocks) EXPECT_EQ(pool->ref_count(b), 2);
  EXPECT_EQ(pool->blocks_in_use(), 3);
  expect_positions(child, c, 0, 10);

  // The child's first write lands in the shared partial block: it gets a private copy of it.
  write_positions(child, c, 10, 13, 0.25f);
  EXPECT_EQ(child.block_table()[0], parent_blocks[0]);
  EXPECT_EQ(child.block_table()[1], parent_blocks[1]);
  EXPECT_NE(child.block_table()[2], parent_blocks[2]);
  EXPECT_EQ(pool->ref_count(parent_blocks[0]), 2);
  EXPECT_EQ(pool->ref_count(parent_blocks[1]), 2);
  EXPECT_EQ(pool->ref_count(parent_blocks[2]), 1);
  EXPECT_EQ(child.block_table().size(), 4u);
  EXPECT_EQ(pool->blocks_in_use(), 5);  // 2 shared + the parent's third + the child's copy and its fourth
  expect_positions(child, c, 0, 10);          // the copied prefix rows
  expect_positions(child, c, 10, 13, 0.25f);  // its own rows
  expect_positions(parent, c, 0, 10);         // the parent is intact
  EXPECT_EQ(parent.block_table(), parent_blocks);

  // The parent continues differently into its (now private) block, without touching the child.
  write_positions(parent, c, 10, 12, 0.75f);
  EXPECT_EQ(parent.block_table(), parent_blocks);
  expect_positions(parent, c, 10, 12, 0.75f);
  expect_positions(child, c, 10, 13, 0.25f);

  // Growing into fresh blocks shares nothing new.
  write_positions(child, c, 13, 20, 0.25f);
  EXPECT_EQ(pool->ref_count(parent_blocks[1]), 2);

  // Dropping the child returns its private blocks and its references on the shared ones.
  child = KvCache(c, pool);
  for (int32_t b : parent_blocks) EXPECT_EQ(pool->ref_count(b), 1);
  EXPECT_EQ(pool->blocks_in_use(), 3);
  expect_positions(parent, c, 0, 10);
}

TEST(KvCachePaged, ForkAtABlockBoundaryCopiesNothing) {
  const ModelConfig c = small_config();
  auto pool = std::make_shared<BlockPool>(c, 4);
  KvCache parent(c, pool);
  write_positions(parent, c, 0, 8);
  KvCache child = parent.fork();
  write_positions(child, c, 8, 9, 1.0f);
  EXPECT_EQ(pool->blocks_in_use(), 3);  // two shared + the child's new block
  EXPECT_EQ(std::vector<int32_t>(child.block_table().begin(), child.block_table().begin() + 2), parent.block_table());
  expect_positions(parent, c, 0, 8);
  expect_positions(child, c, 8, 9, 1.0f);
}

TEST(KvCachePaged, CopyOnWriteWhenThePoolMustGrow) {
  // The copy allocates while every block is taken: the pool grows (moving its storage) and the
  // copy must still read the source block correctly.
  const ModelConfig c = small_config();
  auto pool = std::make_shared<BlockPool>(c, 2);
  KvCache parent(c, pool);
  write_positions(parent, c, 0, 1);
  const int64_t initial = pool->blocks_total();
  write_positions(parent, c, 1, 2 * initial - 1);  // every block in use, the last one half full
  ASSERT_EQ(pool->blocks_in_use(), initial);
  ASSERT_EQ(pool->blocks_total(), initial);
  KvCache child = parent.fork();
  write_positions(child, c, 2 * initial - 1, 2 * initial, 0.5f);
  EXPECT_GT(pool->blocks_total(), initial);
  expect_positions(child, c, 0, 2 * initial - 1);
  expect_positions(child, c, 2 * initial - 1, 2 * initial, 0.5f);
  expect_positions(parent, c, 0, 2 * initial - 1);
}

// End to end: a prompt prefix prefilled once into a paged cache, forked by two sequences that
// continue with different tokens in one batch (and the parent continuing too), gives the logits of
// independent contiguous runs of the full sequences.
TEST(KvCachePaged, ForkedPrefixMatchesIndependentContiguousRuns) {
  auto model = load_model(test::shared_path("fixtures/hf/llama"));
  const int64_t vocab = model->config.vocab_size;
  auto tokens = [&](int64_t n, int64_t seed) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t(3 + (i * 131 + seed * 977) % (vocab - 3));
    return t;
  };
  const auto prefix = tokens(10, 1);  // block_size 4: the last prefix block is shared half full
  const std::vector<std::vector<int32_t>> tails = {tokens(7, 2), tokens(5, 3), tokens(6, 4)};

  Transformer paged(*model, test::attention("paged:block_size=4"));
  KvCache root = paged.new_cache();
  ASSERT_EQ(root.layout(), KvLayout::kPaged);
  SequenceStep pre{&root, prefix, -1};
  paged.forward({&pre, 1});
  KvCache a = root.fork(), b = root.fork();
  EXPECT_EQ(paged.block_pool()->blocks_in_use(), 3);  // ceil(10 / 4), shared three ways
  std::vector<KvCache*> caches = {&a, &b, &root};

  // First continuation step: 3 tokens each (chunked prefill after the fork, one batch), then the
  // rest one token at a time (decode), all three sequences batched together.
  std::vector<std::vector<float>> got(3);
  for (int64_t from = 0;;) {
    const int64_t n = from == 0 ? 3 : 1;
    std::vector<SequenceStep> steps;
    std::vector<size_t> which;
    for (size_t s = 0; s < 3; ++s)
      if (from < int64_t(tails[s].size())) {
        steps.push_back({caches[s], std::span<const int32_t>(tails[s].data() + from, size_t(std::min<int64_t>(n, int64_t(tails[s].size()) - from))), 0});
        which.push_back(s);
      }
    if (steps.empty()) break;
    const auto logits = paged.forward(steps);
    size_t row = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      const size_t rows = steps[i].tokens.size();
      got[which[i]].insert(got[which[i]].end(), logits.begin() + int64_t(row * vocab), logits.begin() + int64_t((row + rows) * vocab));
      row += rows;
    }
    from += n;
  }
  // The two full prefix blocks are still shared by all three; each has its own copy of the third.
  EXPECT_EQ(a.block_table()[0], root.block_table()[0]);
  EXPECT_EQ(b.block_table()[1], root.block_table()[1]);
  EXPECT_NE(a.block_table()[2], root.block_table()[2]);
  EXPECT_NE(b.block_table()[2], root.block_table()[2]);
  EXPECT_NE(a.block_table()[2], b.block_table()[2]);

  Transformer contiguous(*model, test::attention("sdpa"));
  for (size_t s = 0; s < 3; ++s) {
    std::vector<int32_t> full = prefix;
    full.insert(full.end(), tails[s].begin(), tails[s].end());
    KvCache cache = contiguous.new_cache();
    ASSERT_EQ(cache.layout(), KvLayout::kContiguous);
    SequenceStep step{&cache, full, int64_t(prefix.size())};
    const auto want = contiguous.forward({&step, 1});
    ASSERT_EQ(got[s].size(), want.size()) << "sequence " << s;
    const auto d = test::compare(got[s].data(), want.data(), int64_t(want.size()));
    EXPECT_LE(d.relative(), 1e-5) << "sequence " << s << ": max |diff| " << d.max_abs_diff;
  }
}

}  // namespace
}  // namespace ctx
