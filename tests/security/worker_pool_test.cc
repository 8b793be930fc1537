// WorkerPool: a session's calls run one at a time and in order, tenants take turns, one
// tenant cannot take every thread or the whole queue, and nothing queued is dropped.
#include "server/service/worker_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;

// How long a test waits for something that must happen; only a broken pool waits this long.
constexpr absl::Duration kPatience = absl::Seconds(30);

// Whether `count` reaches `value` within kPatience.
bool Reaches(const std::atomic<int>& count, int value) {
  const absl::Time give_up = absl::Now() + kPatience;
  while (count.load() < value && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  return count.load() == value;
}

class WorkerPoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<WorkerPool> Pool(int threads, int max_queued = 1024) {
    return std::make_unique<WorkerPool>(threads, max_queued, &compute_);
  }
  // A task that runs until Release().
  absl::AnyInvocable<void() &&> Blocker(std::atomic<int>* running = nullptr) {
    return [this, running] {
      if (running != nullptr) ++*running;
      release_.WaitForNotification();
    };
  }
  void Release() { release_.Notify(); }
  // Whether a task of another tenant took one of `pool`'s threads, to hold it until Release().
  bool Occupy(WorkerPool& pool) {
    if (!pool.Schedule({"x", ""},
                       [this] {
                         occupied_.Notify();
                         release_.WaitForNotification();
                       })
             .ok()) {
      return false;
    }
    return occupied_.WaitForNotificationWithTimeout(kPatience);
  }

  ComputeShares compute_{1};
  absl::Notification release_;
  absl::Notification occupied_;
};

TEST_F(WorkerPoolTest, SessionTasksRunOneAtATimeInOrder) {
  constexpr int kTasks = 20;
  std::atomic<int> running{0};
  std::atomic<int> most_running{0};
  absl::Mutex mu;
  std::vector<int> order;
  {
    auto pool = Pool(4);
    for (int i = 0; i < kTasks; ++i) {
      ASSERT_TRUE(pool->Schedule({"a", "s"},
                                 [&, i] {
                                   most_running = std::max(most_running.load(), ++running);
                                   absl::SleepFor(
                                       absl::Milliseconds(1));  // room for an overlap to show
                                   {
                                     absl::MutexLock lock(&mu);
                                     order.push_back(i);
                                   }
                                   --running;
                                 })
                      .ok());
    }
  }
  EXPECT_EQ(most_running.load(), 1);
  ASSERT_EQ(order.size(), kTasks);
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(order[i], i);
}

TEST_F(WorkerPoolTest, OneTenantNeverTakesTheLastThread) {
  constexpr int kThreads = 4;
  auto pool = Pool(kThreads);
  std::atomic<int> a_running{0};
  // Tenant a has more sessions busy than there are threads.
  for (int i = 0; i < kThreads + 2; ++i) {
    ASSERT_TRUE(pool->Schedule({"a", absl::StrCat("s", i)}, Blocker(&a_running)).ok());
  }
  ASSERT_TRUE(Reaches(a_running, kThreads - 1));
  absl::Notification b_ran;
  ASSERT_TRUE(pool->Schedule({"b", "t"}, [&] { b_ran.Notify(); }).ok());
  EXPECT_TRUE(b_ran.WaitForNotificationWithTimeout(kPatience));
  absl::SleepFor(absl::Milliseconds(20));  // room for a to take the thread b left, if it could
  EXPECT_EQ(a_running.load(), kThreads - 1);
  Release();
}

TEST_F(WorkerPoolTest, ASessionsBacklogHoldsOneThread) {
  auto pool = Pool(4);
  std::atomic<int> running{0};
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(pool->Schedule({"a", "s1"}, Blocker(&running)).ok());
  absl::Notification other_session_ran, other_tenant_ran;
  ASSERT_TRUE(pool->Schedule({"a", "s2"}, [&] { other_session_ran.Notify(); }).ok());
  ASSERT_TRUE(pool->Schedule({"b", "t"}, [&] { other_tenant_ran.Notify(); }).ok());
  EXPECT_TRUE(other_session_ran.WaitForNotificationWithTimeout(kPatience));
  EXPECT_TRUE(other_tenant_ran.WaitForNotificationWithTimeout(kPatience));
  EXPECT_TRUE(Reaches(running, 1));
  absl::SleepFor(absl::Milliseconds(20));  // room for a second s1 task to start, if it could
  EXPECT_EQ(running.load(), 1);
  Release();
}

TEST_F(WorkerPoolTest, ATenantCannotHoldBackAnotherTenantsSession) {
  auto pool = Pool(4);
  ASSERT_TRUE(pool->Schedule({"a", "same-id"}, Blocker()).ok());
  absl::Notification b_ran;
  ASSERT_TRUE(pool->Schedule({"b", "same-id"}, [&] { b_ran.Notify(); }).ok());
  EXPECT_TRUE(b_ran.WaitForNotificationWithTimeout(kPatience));
  Release();
}

TEST_F(WorkerPoolTest, TenantsTakeTurns) {
  constexpr int kEach = 4;
  absl::Mutex mu;
  std::string order;
  {
    auto pool = Pool(1);
    ASSERT_TRUE(Occupy(*pool));
    // Tenant a queues all of its calls before b queues any.
    for (const char* tenant : {"a", "b"}) {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(pool->Schedule({tenant, ""},
                                   [&, tenant] {
                                     absl::MutexLock lock(&mu);
                                     order += tenant;
                                   })
                        .ok());
      }
    }
    Release();
  }
  ASSERT_EQ(order.size(), 2 * kEach);
  for (size_t i = 1; i < order.size(); ++i) EXPECT_NE(order[i], order[i - 1]) << order;
}

TEST_F(WorkerPoolTest, TheQueueBoundIsPerTenant) {
  constexpr int kMaxQueued = 3;
  auto pool = Pool(1, kMaxQueued);
  ASSERT_TRUE(Occupy(*pool));
  std::atomic<int> ran{0};
  for (int i = 0; i < kMaxQueued; ++i) ASSERT_TRUE(pool->Schedule({"a", ""}, [&] { ++ran; }).ok());
  absl::Status refused = pool->Schedule({"a", ""}, [&] { ++ran; });
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("--max_queued_rpcs"));
  EXPECT_TRUE(pool->Schedule({"b", ""}, [&] { ++ran; }).ok());
  Release();
  pool.reset();
  EXPECT_EQ(ran.load(), kMaxQueued + 1);
}

TEST_F(WorkerPoolTest, DestructionRunsWhatIsQueued) {
  constexpr int kTasks = 50;
  std::atomic<int> ran{0};
  {
    auto pool = Pool(2);
    for (int i = 0; i < kTasks; ++i) {
      ASSERT_TRUE(pool->Schedule({i % 2 ? "a" : "b", i % 3 ? "s" : ""}, [&] { ++ran; }).ok());
    }
  }
  EXPECT_EQ(ran.load(), kTasks);
}

}  // namespace
}  // namespace kiln::server
