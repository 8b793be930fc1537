#include "server/service/compute_shares.h"

#include <omp.h>

#include <algorithm>
#include <thread>

namespace kiln::server {

ComputeShares::ComputeShares(int threads)
    : threads_(threads > 0 ? threads
                           : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {}

ComputeShares::Share::Share(ComputeShares* shares) : shares_(shares) {
  const int holders = shares_->holders_.fetch_add(1) + 1;
  omp_set_num_threads(std::max(1, shares_->threads_ / holders));
}

ComputeShares::Share::~Share() { shares_->holders_.fetch_sub(1); }

}  // namespace kiln::server
