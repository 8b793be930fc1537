// DataRoot against the escapes probes of the server found: string-prefix siblings, "..",
// symlinks out of the root, a directory swapped for a link while a file is opened, absolute
// paths, NUL bytes, FIFOs; and messages that would tell a client where the server keeps its
// files. Each test runs with openat2 (where the kernel has it) and with the walk without it.
#include "server/service/data_root.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class DataRootTest : public ::testing::TestWithParam<DataRoot::Resolver> {
 protected:
  void SetUp() override {
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(test.begin(), test.end(), '/', '-');
    base_ = std::filesystem::temp_directory_path() /
            absl::StrCat("kiln-data-root-", getpid(), "-", test);
    std::filesystem::create_directories(base_ / "dr" / "sub");
    std::filesystem::create_directories(base_ / "dr-secret");
    std::ofstream(base_ / "dr" / "sub" / "ok.csv") << "1,2\n";
    std::ofstream(base_ / "dr-secret" / "x.npy") << "secret";
    std::ofstream(base_ / "dr.npy") << "secret";
    root_ = (base_ / "dr").string();
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  // The error for `relative`, which must not reveal where the root lies.
  absl::Status ErrorOf(const std::string& relative) {
    absl::StatusOr<std::string> read = Root().Read(relative, 1 << 20);
    EXPECT_FALSE(read.ok()) << relative << " was read";
    EXPECT_THAT(std::string(read.status().message()), Not(HasSubstr(base_.string())));
    return read.status();
  }

  DataRoot Root() const { return DataRoot(root_, GetParam()); }

  std::filesystem::path base_;
  std::string root_;
};

TEST_P(DataRootTest, ReadsFilesBelowTheRoot) {
  for (const char* path : {"sub/ok.csv", "./sub//ok.csv"}) {
    absl::StatusOr<std::string> read = Root().Read(path, 1 << 20);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, "1,2\n");
  }
  // The root itself may be a link (the operator's choice).
  std::filesystem::create_directory_symlink(base_ / "dr", base_ / "dr-link");
  EXPECT_TRUE(DataRoot((base_ / "dr-link").string(), GetParam()).Read("sub/ok.csv", 1 << 20).ok());
}

TEST_P(DataRootTest, NoLinkBelowTheRootIsFollowedEvenOneThatStaysInside) {
  // A link that stays inside today can be re-pointed between a check and an open tomorrow.
  std::filesystem::create_directory_symlink(base_ / "dr" / "sub", base_ / "dr" / "alias");
  std::filesystem::create_symlink(base_ / "dr" / "sub" / "ok.csv", base_ / "dr" / "ok-link.csv");
  for (const char* path : {"alias/ok.csv", "ok-link.csv"}) {
    const absl::Status status = ErrorOf(path);
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << path;
    EXPECT_THAT(std::string(status.message()), HasSubstr("symbolic link")) << path;
  }
}

// A thread swaps a directory below the root for a link out of it, again and again, while
// files below it are opened: nothing outside the root is ever read. (realpath() and then
// open() read the secret here: the path was checked while it was a directory and opened
// while it was a link.)
TEST_P(DataRootTest, ADirectorySwappedForALinkNeverLeaksTheFileOutside) {
  std::filesystem::create_directories(base_ / "outside" / "d");
  std::ofstream(base_ / "outside" / "d" / "f.csv") << "secret";
  std::filesystem::create_directories(base_ / "dr" / "d");
  std::ofstream(base_ / "dr" / "d" / "f.csv") << "inside";
  const std::string real = (base_ / "dr" / "d").string();
  const std::string parked = (base_ / "dr" / "d-parked").string();
  const std::string link = (base_ / "dr" / "d-link").string();
  std::filesystem::create_directory_symlink(base_ / "outside" / "d", link);
  std::atomic<bool> stop{false};
  std::atomic<int> swaps{0};
  std::thread swapper([&] {
    while (!stop.load()) {
      // d is the directory, then the link, then the directory again; renames are atomic.
      if (rename(real.c_str(), parked.c_str()) != 0) continue;
      if (rename(link.c_str(), real.c_str()) != 0) continue;
      if (rename(real.c_str(), link.c_str()) != 0) continue;
      if (rename(parked.c_str(), real.c_str()) != 0) continue;
      swaps.fetch_add(1);
    }
  });
  int inside = 0, refused = 0, leaked = 0;
  for (int i = 0; i < 10000; ++i) {
    absl::StatusOr<std::string> read = Root().Read("d/f.csv", 1 << 20);
    if (!read.ok()) {
      ++refused;
    } else if (*read == "inside") {
      ++inside;
    } else {
      ++leaked;
    }
  }
  stop.store(true);
  swapper.join();
  EXPECT_EQ(leaked, 0) << inside << " read inside, " << refused << " refused, " << swaps.load()
                       << " swaps";
  EXPECT_GT(inside, 0);
  EXPECT_GT(swaps.load(), 0);
}

TEST_P(DataRootTest, SiblingsThatShareThePrefixAreOutside) {
  for (const char* path : {"../dr-secret/x.npy", "../dr.npy", "sub/../../dr.npy"}) {
    EXPECT_EQ(ErrorOf(path).code(), absl::StatusCode::kPermissionDenied) << path;
  }
}

TEST_P(DataRootTest, SymlinksThatLeadOutAreRefused) {
  std::filesystem::create_directory_symlink(base_ / "dr-secret", base_ / "dr" / "link");
  std::filesystem::create_symlink(base_ / "dr.npy", base_ / "dr" / "file-link.npy");
  for (const char* path : {"link/x.npy", "file-link.npy"}) {
    const absl::Status status = ErrorOf(path);
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << path;
    EXPECT_THAT(std::string(status.message()), HasSubstr("symbolic link")) << path;
  }
}

TEST_P(DataRootTest, AbsolutePathsAndNulBytesAreRefused) {
  // (The message names the path the client gave, which here is where the file lies.)
  EXPECT_EQ(Root().Read((base_ / "dr" / "sub" / "ok.csv").string(), 1 << 20).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorOf(std::string("sub/ok.csv\0../../dr.npy", 23)).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_P(DataRootTest, MissingFilesAreNamedAsTheClientGaveThem) {
  const absl::Status status = ErrorOf("sub/missing.npy");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no such file: \"sub/missing.npy\"");
}

TEST_P(DataRootTest, OnlyRegularFilesAreOpened) {
  ASSERT_EQ(mkfifo((base_ / "dr" / "fifo.npy").c_str(), 0600), 0);
  // Without O_NONBLOCK this would wait forever for a writer; the future bounds the test.
  auto read = std::async(std::launch::async, [&] { return ErrorOf("fifo.npy"); });
  ASSERT_EQ(read.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(std::string(read.get().message()), HasSubstr("is not a regular file"));
  EXPECT_THAT(std::string(ErrorOf("sub").message()), HasSubstr("is not a regular file"));
}

TEST_P(DataRootTest, NoRootReadsNothing) {
  EXPECT_EQ(DataRoot("", GetParam()).Read("sub/ok.csv", 1 << 20).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, DataRootTest,
                         ::testing::Values(DataRoot::Resolver::kAuto, DataRoot::Resolver::kWalk),
                         [](const auto& info) {
                           return info.param == DataRoot::Resolver::kAuto ? "Openat2" : "Walk";
                         });

}  // namespace
}  // namespace kiln::server
