// kiln-file-reader and UnpackInReader: Keras files' containers are unpacked outside the server,
// and whatever the reader does - answer, crash, hang, exhaust its memory, write garbage - the
// server gets an error it can send, never a crash, a hang or an unbounded answer. The real
// reader is run on real files; stand-in readers (shell scripts) misbehave on purpose.
#include "server/reader/file_reader.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/saving/keras_archive.h"
#include "server/reader/sandbox.h"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;

class FileReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("kiln-file-reader-", getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A stand-in reader: a shell script with `body`.
  FileReaderOptions Script(const std::string& name, const std::string& body) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    chmod(path.c_str(), 0755);
    return FileReaderOptions{.path = path.string(), .timeout = absl::Seconds(30)};
  }

  static absl::StatusOr<KerasFileContents> Unpack(const std::string& bytes,
                                                  const FileReaderOptions& options,
                                                  std::function<bool()> cancelled = nullptr) {
    return UnpackInReader(bytes, v1::KERAS_FORMAT_WEIGHTS, KerasReadOptions{}, options, cancelled);
  }

  static FileReaderOptions Real() {
    return FileReaderOptions{.path = KILN_FILE_READER, .timeout = absl::Seconds(60)};
  }

  std::filesystem::path dir_;
};

WeightsFile SomeWeights() {
  WeightsFile file;
  file.model_name = "m";
  Tensor kernel(DType::kFloat32, Shape{3, 2});
  for (int i = 0; i < 6; ++i) kernel.data<float>()[i] = float(i) / 2;
  file.groups["layers/dense"].name = "dense";
  file.groups["layers/dense"].values.push_back(std::move(kernel));
  // The optimizer's iteration count is a scalar; a layer may hold an empty variable.
  Tensor iterations(DType::kInt64, Shape{});
  iterations.data<int64_t>()[0] = 7;
  file.groups["optimizer"].values.push_back(std::move(iterations));
  file.groups["optimizer"].values.emplace_back(DType::kFloat32, Shape{0, 3});
  return file;
}

TEST_F(FileReaderTest, TheReaderUnpacksAWeightsFile) {
  const std::string bytes = *WriteWeightsFile(SomeWeights());
  absl::StatusOr<KerasFileContents> contents = Unpack(bytes, Real());
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->format, v1::KERAS_FORMAT_WEIGHTS);
  ASSERT_TRUE(contents->weights.has_value());
  EXPECT_EQ(contents->weights->model_name, "m");
  const WeightGroup& dense = contents->weights->groups.at("layers/dense");
  EXPECT_EQ(dense.name, "dense");
  ASSERT_EQ(dense.values.size(), 1u);
  EXPECT_EQ(dense.values[0].shape(), Shape({3, 2}));
  EXPECT_EQ(dense.values[0].data<float>()[5], 2.5f);
  const WeightGroup& optimizer = contents->weights->groups.at("optimizer");
  ASSERT_EQ(optimizer.values.size(), 2u);
  EXPECT_EQ(optimizer.values[0].shape(), Shape({}));
  EXPECT_EQ(optimizer.values[0].data<int64_t>()[0], 7);
  EXPECT_EQ(optimizer.values[1].shape(), Shape({0, 3}));
}

TEST_F(FileReaderTest, TheFilesOwnErrorsComeBackWithTheirPlaceInTheFile) {
  std::string bytes = *WriteWeightsFile(SomeWeights());
  absl::StatusOr<KerasFileContents> contents = UnpackInReader(
      bytes, v1::KERAS_FORMAT_WEIGHTS, KerasReadOptions{.max_elements = 4}, Real(), nullptr);
  EXPECT_EQ(contents.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(contents.status().message()), HasSubstr("layers/dense/vars/0"));
  contents = Unpack("not a weights file", Real());
  EXPECT_EQ(contents.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(contents.status().message()), HasSubstr("not an HDF5 file"));
}

TEST_F(FileReaderTest, AZipBombStopsInTheReaderAtTheArchivesLimit) {
  KerasArchive archive{"{}", "{}", std::string(std::size_t{8} << 20, 'w')};
  const std::string bytes = *WriteKerasArchive(archive);
  absl::StatusOr<KerasFileContents> contents = UnpackInReader(
      bytes, v1::KERAS_FORMAT_KERAS, KerasReadOptions{.max_bytes = 1 << 20}, Real(), nullptr);
  EXPECT_EQ(contents.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(contents.status().message()), HasSubstr("the archive may hold"));
}

TEST_F(FileReaderTest, AReaderThatCrashesIsAnInvalidFile) {
  absl::StatusOr<KerasFileContents> contents = Unpack("x", Script("crash", "kill -SEGV $$"));
  EXPECT_EQ(contents.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(contents.status().message()),
              HasSubstr("its parser crashed (SIGSEGV); the file is damaged or not a Keras file"));
}

TEST_F(FileReaderTest, AReaderThatHangsIsKilledAtTheTimeout) {
  FileReaderOptions options = Script("hang", "exec sleep 600");
  options.timeout = absl::Seconds(1);
  const absl::Time start = absl::Now();
  absl::StatusOr<KerasFileContents> contents = Unpack("x", options);
  EXPECT_EQ(contents.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(contents.status().message()),
              HasSubstr("took longer than --file_reader_timeout (1s)"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));  // not the sleep's 600 s
}

TEST_F(FileReaderTest, ACancelledCallStopsItsReader) {
  const absl::Time start = absl::Now();
  absl::StatusOr<KerasFileContents> contents =
      Unpack("x", Script("hang", "exec sleep 600"),
             [start] { return absl::Now() - start > absl::Milliseconds(100); });
  EXPECT_EQ(contents.status().code(), absl::StatusCode::kCancelled);
}

TEST_F(FileReaderTest, AReaderOutOfMemoryNamesTheLimit) {
  absl::StatusOr<KerasFileContents> contents = Unpack("x", Script("oom", "exit 3"));
  EXPECT_EQ(contents.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(contents.status().message()), HasSubstr("--file_reader_memory"));
}

TEST_F(FileReaderTest, AGarbledAnswerIsAnInvalidFile) {
  absl::StatusOr<KerasFileContents> contents =
      Unpack("x", Script("garbage", "head -c 100000 /dev/urandom"));
  EXPECT_FALSE(contents.ok());
  EXPECT_NE(contents.status().code(), absl::StatusCode::kInternal);
}

TEST_F(FileReaderTest, TheReaderCannotAllocatePastItsMemory) {
  if (!SandboxIsEnforced()) GTEST_SKIP() << "sanitizer builds set no address-space limit";
  // 64 MiB of weights read by a reader allowed 96 MiB of address space in all.
  WeightsFile file;
  file.groups["layers/dense"].values.emplace_back(DType::kFloat32, Shape{16 << 20});
  const std::string bytes = *WriteWeightsFile(file);
  FileReaderOptions options = Real();
  options.memory_bytes = int64_t{96} << 20;
  absl::StatusOr<KerasFileContents> contents = Unpack(bytes, options);
  EXPECT_FALSE(contents.ok());
  EXPECT_NE(contents.status().code(), absl::StatusCode::kInternal) << contents.status();
  // The same reader reads a small file (it failed for the memory, not at its start); with
  // room, the large one too.
  EXPECT_TRUE(Unpack(*WriteWeightsFile(SomeWeights()), options).ok());
  EXPECT_TRUE(Unpack(bytes, Real()).ok());
}

TEST_F(FileReaderTest, AMissingReaderIsTheServersFault) {
  FileReaderOptions options = Real();
  options.path = (dir_ / "nowhere").string();
  EXPECT_EQ(Unpack("x", options).status().code(), absl::StatusCode::kInternal);
}

// What a reader subverted by its input could do: no file opens, and a socket (or a program, a
// process, a signal to the server) ends it.
TEST(SandboxTest, ASandboxedProcessOpensNoFileAndDiesOnASocket) {
  if (!SandboxIsEnforced()) GTEST_SKIP() << "sanitizer builds install no filter";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!LimitProcess({.memory_bytes = 0, .cpu_seconds = 10}).empty()) _exit(10);
    if (!EnterSandbox().empty()) _exit(11);
    if (open("/etc/passwd", O_RDONLY) >= 0 || errno != ENOENT) _exit(12);
    socket(AF_INET, SOCK_STREAM, 0);
    _exit(14);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

}  // namespace
}  // namespace kiln::server
