// CpuBudget against cgroup layouts written into a temporary root: v2 (a quota on the cgroup or
// on an ancestor), v1 as a container sees it (the mount's root is its own cgroup), no quota,
// and an affinity mask narrower than the quota.
#include "server/service/cpu_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;

class CpuBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            absl::StrCat("kiln-cpu-budget-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(root_ / "proc" / "self");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void Write(const std::string& path, const std::string& text) {
    const std::filesystem::path file = root_ / path;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  // A cgroup v2 mount at /sys/fs/cgroup with the process in `cgroup`.
  void CgroupV2(const std::string& cgroup) {
    Write("proc/self/cgroup", absl::StrCat("0::", cgroup, "\n"));
    Write("proc/self/mountinfo",
          "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
          "30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
    std::filesystem::create_directories(root_ / ("sys/fs/cgroup" + cgroup));
  }
  CpuBudget Read(int affinity) { return ReadCpuBudget(affinity, root_.string()); }

  std::filesystem::path root_;
};

TEST_F(CpuBudgetTest, AV2QuotaRoundsUpToWholeCpus) {
  CgroupV2("/kiln.slice/server");
  Write("sys/fs/cgroup/kiln.slice/server/cpu.max", "150000 100000\n");
  const CpuBudget budget = Read(8);
  EXPECT_EQ(budget.cpus, 2);
  EXPECT_DOUBLE_EQ(budget.quota_cpus, 1.5);
  EXPECT_EQ(budget.quota_file, "/sys/fs/cgroup/kiln.slice/server/cpu.max");
  EXPECT_THAT(budget.Describe(), HasSubstr("2 CPUs (affinity mask 8, cgroup quota 1.50 CPUs"));
}

TEST_F(CpuBudgetTest, AnAncestorsTighterQuotaWins) {
  CgroupV2("/kiln.slice/server");
  Write("sys/fs/cgroup/kiln.slice/cpu.max", "100000 100000\n");
  Write("sys/fs/cgroup/kiln.slice/server/cpu.max", "max 100000\n");
  const CpuBudget budget = Read(8);
  EXPECT_EQ(budget.cpus, 1);
  EXPECT_EQ(budget.quota_file, "/sys/fs/cgroup/kiln.slice/cpu.max");
  EXPECT_THAT(budget.Describe(), HasSubstr("1 CPU (affinity mask 8"));
}

// What `podman run --cpus=1` shows on a host with the hybrid layout: v1's cpu controller,
// mounted with the container's own cgroup as its root.
TEST_F(CpuBudgetTest, AV1QuotaInAContainer) {
  Write("proc/self/cgroup", "4:cpu,cpuacct:/libpod_parent/libpod-1f2e\n3:memory:/\n0::/\n");
  Write("proc/self/mountinfo",
        "500 400 0:50 / / rw - overlay overlay rw\n"
        "510 500 0:51 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n"
        "520 510 0:29 /libpod_parent/libpod-1f2e /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup "
        "rw,cpu,cpuacct\n"
        "530 510 0:30 / /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n");
  Write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "100000\n");
  Write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  const CpuBudget budget = Read(16);
  EXPECT_EQ(budget.cpus, 1);
  EXPECT_EQ(budget.quota_file, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us");
}

TEST_F(CpuBudgetTest, NoQuotaLeavesTheAffinityMask) {
  Write("proc/self/cgroup", "1:cpu:/\n0::/\n");
  Write("proc/self/mountinfo",
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
  Write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
  Write("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  std::filesystem::create_directories(root_ / "sys/fs/cgroup/unified");
  const CpuBudget budget = Read(6);
  EXPECT_EQ(budget.cpus, 6);
  EXPECT_EQ(budget.quota_cpus, 0);
  EXPECT_THAT(budget.Describe(), HasSubstr("no cgroup quota"));
}

TEST_F(CpuBudgetTest, ANarrowAffinityMaskWinsOverAWideQuota) {
  CgroupV2("/");
  Write("sys/fs/cgroup/cpu.max", "400000 100000\n");
  EXPECT_EQ(Read(2).cpus, 2);
}

TEST_F(CpuBudgetTest, UnreadableOrMalformedFilesCountAsNoQuota) {
  EXPECT_EQ(Read(3).cpus, 3);  // no /proc files at all
  CgroupV2("/a");
  Write("sys/fs/cgroup/a/cpu.max", "lots\n");
  EXPECT_EQ(Read(3).cpus, 3);
}

TEST(CpuBudgetOfThisProcess, IsWithinTheMachine) {
  const CpuBudget budget = ReadCpuBudget();
  EXPECT_GE(budget.cpus, 1);
  EXPECT_LE(budget.cpus, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace kiln::server
