// ComputeShares: compute threads shared equally by the tasks of one kind that run at the
// moment. Each takes a Share for as long as it runs; taking one sets OpenMP's thread count on
// the calling thread to max(1, threads / holders), so one large Predict uses every core and
// several jobs split them. The server keeps one for jobs and one for RPC work, so that a job's
// thread count - and with it the order of its float reductions - depends only on the jobs
// running beside it, not on the RPCs in flight when it starts. Thread-safe.
#ifndef KILN_SERVER_SERVICE_COMPUTE_SHARES_H_
#define KILN_SERVER_SERVICE_COMPUTE_SHARES_H_

#include <atomic>

namespace kiln::server {

class ComputeShares {
 public:
  // `threads` <= 0: every core.
  explicit ComputeShares(int threads);

  class Share {
   public:
    explicit Share(ComputeShares* shares);
    ~Share();
    Share(const Share&) = delete;
    Share& operator=(const Share&) = delete;

   private:
    ComputeShares* shares_;
  };

  int threads() const { return threads_; }

 private:
  const int threads_;
  std::atomic<int> holders_{0};
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_COMPUTE_SHARES_H_
