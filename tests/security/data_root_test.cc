// DataRoot against the escapes a probe of the server found: string-prefix siblings, "..",
// symlinks out of the root, absolute paths, NUL bytes, FIFOs; and messages that would tell a
// client where the server keeps its files.
#include "server/service/data_root.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "absl/strings/str_cat.h"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class DataRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::temp_directory_path() /
            absl::StrCat("kiln-data-root-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
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
    absl::StatusOr<std::string> read = DataRoot(root_).Read(relative, 1 << 20);
    EXPECT_FALSE(read.ok()) << relative << " was read";
    EXPECT_THAT(std::string(read.status().message()), Not(HasSubstr(base_.string())));
    return read.status();
  }

  std::filesystem::path base_;
  std::string root_;
};

TEST_F(DataRootTest, ReadsFilesBelowTheRoot) {
  absl::StatusOr<std::string> read = DataRoot(root_).Read("sub/ok.csv", 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "1,2\n");
  // A link that stays inside the root is fine.
  std::filesystem::create_symlink(base_ / "dr" / "sub", base_ / "dr" / "alias");
  EXPECT_TRUE(DataRoot(root_).Read("alias/ok.csv", 1 << 20).ok());
}

TEST_F(DataRootTest, SiblingsThatShareThePrefixAreOutside) {
  for (const char* path : {"../dr-secret/x.npy", "../dr.npy", "sub/../../dr.npy"}) {
    EXPECT_EQ(ErrorOf(path).code(), absl::StatusCode::kPermissionDenied) << path;
  }
}

TEST_F(DataRootTest, SymlinksThatLeadOutAreRefused) {
  std::filesystem::create_directory_symlink(base_ / "dr-secret", base_ / "dr" / "link");
  std::filesystem::create_symlink(base_ / "dr.npy", base_ / "dr" / "file-link.npy");
  for (const char* path : {"link/x.npy", "file-link.npy"}) {
    const absl::Status status = ErrorOf(path);
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << path;
    EXPECT_THAT(std::string(status.message()), HasSubstr("symbolic link")) << path;
  }
}

TEST_F(DataRootTest, AbsolutePathsAndNulBytesAreRefused) {
  // (The message names the path the client gave, which here is where the file lies.)
  EXPECT_EQ(
      DataRoot(root_).Read((base_ / "dr" / "sub" / "ok.csv").string(), 1 << 20).status().code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorOf(std::string("sub/ok.csv\0../../dr.npy", 23)).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(DataRootTest, MissingFilesAreNamedAsTheClientGaveThem) {
  const absl::Status status = ErrorOf("sub/missing.npy");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no such file: sub/missing.npy");
}

TEST_F(DataRootTest, OnlyRegularFilesAreOpened) {
  ASSERT_EQ(mkfifo((base_ / "dr" / "fifo.npy").c_str(), 0600), 0);
  // Without O_NONBLOCK this would wait forever for a writer; the future bounds the test.
  auto read = std::async(std::launch::async, [&] { return ErrorOf("fifo.npy"); });
  ASSERT_EQ(read.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(std::string(read.get().message()), HasSubstr("is not a regular file"));
  EXPECT_THAT(std::string(ErrorOf("sub").message()), HasSubstr("is not a regular file"));
}

TEST_F(DataRootTest, NoRootReadsNothing) {
  EXPECT_EQ(DataRoot("").Read("sub/ok.csv", 1 << 20).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace kiln::server
