// The CPU thread count used by every parallel loop (OpenMP) and by Eigen's matrix products.
// Call set_num_threads() once at start-up, before any compute; not thread-safe with running compute.
#pragma once

namespace ctx {

// n <= 0 selects the number of available cores.
void set_num_threads(int n);
int num_threads();

}  // namespace ctx
