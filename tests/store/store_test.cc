// The store below the service: tensor files (round trip, and damage reported rather than
// loaded), the state directory's lock, the schema version and its migration, files that no row
// names, sessions keyed across tenants, and what each tenant keeps against its quota.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/sqlite.h"
#include "server/store/sqlite_store.h"
#include "server/store/state_dir.h"
#include "server/store/tensor_file.h"

namespace kiln::store {
namespace {

using ::testing::HasSubstr;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / absl::StrCat("kiln_store_test_", getpid()))
               .string();
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<NamedTensor> Tensors() {
    Tensor w = Tensor::FromVector(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor order(DType::kInt64, Shape{4});
    for (int i = 0; i < 4; ++i) order.data<int64_t>()[i] = 3 - i;
    return {{"kernel", w}, {"order", order}};
  }

  std::string dir_;
};

TEST_F(StoreTest, TensorFilesRoundTripExactly) {
  const std::string path = dir_ + "/t.kt";
  const std::vector<NamedTensor> written = Tensors();
  ASSERT_TRUE(WriteTensorFile(path, written, "test").ok());
  EXPECT_EQ(int64_t(std::filesystem::file_size(path)), TensorFileSize(written));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  absl::StatusOr<std::vector<NamedTensor>> read = ReadTensorFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ((*read)[i].name, written[i].name);
    EXPECT_EQ((*read)[i].tensor.dtype(), written[i].tensor.dtype());
    EXPECT_EQ((*read)[i].tensor.shape(), written[i].tensor.shape());
    EXPECT_EQ(0, std::memcmp((*read)[i].tensor.raw_data(), written[i].tensor.raw_data(),
                             written[i].tensor.byte_size()));
  }
}

TEST_F(StoreTest, DamagedTensorFilesAreDataLossNamingTheFile) {
  const std::string path = dir_ + "/t.kt";
  ASSERT_TRUE(WriteTensorFile(path, Tensors(), "test").ok());
  const int64_t size = int64_t(std::filesystem::file_size(path));
  // Every single flipped byte and every truncation is caught.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (int64_t i = 0; i < size; ++i) {
    std::string damaged = bytes;
    damaged[i] ^= 0x5a;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << damaged;
    absl::StatusOr<std::vector<NamedTensor>> read = ReadTensorFile(path);
    // A flip inside the alignment padding changes nothing that is read.
    if (read.ok()) continue;
    EXPECT_TRUE(absl::IsDataLoss(read.status())) << i << ": " << read.status();
    EXPECT_THAT(std::string(read.status().message()), HasSubstr(path));
  }
  for (int64_t cut : {int64_t{0}, int64_t{10}, size / 2, size - 1}) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, cut);
    absl::StatusOr<std::vector<NamedTensor>> read = ReadTensorFile(path);
    EXPECT_TRUE(absl::IsDataLoss(read.status())) << cut << ": " << read.status();
  }
  std::filesystem::remove(path);
  EXPECT_THAT(std::string(ReadTensorFile(path).status().message()), HasSubstr("missing"));
}

TEST_F(StoreTest, OneProcessHoldsAStateDirectory) {
  absl::StatusOr<std::unique_ptr<StateDir>> first = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(first.ok()) << first.status();
  // flock locks belong to an open file description, so a second open in this process is
  // refused too - as a second server would be.
  absl::StatusOr<std::unique_ptr<StateDir>> second = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr(absl::StrCat("in use by process ", getpid())));
  first->reset();
  EXPECT_TRUE(StateDir::Open(dir_ + "/state").ok());
}

TEST_F(StoreTest, TheSchemaIsVersionedAndANewerOneIsRefused) {
  {
    absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(SqliteStore::Open(*std::move(state)).ok());
  }
  {
    absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(dir_ + "/state/kiln.db");
    ASSERT_TRUE(db.ok());
    absl::StatusOr<SqliteStatement> version =
        (*db)->Prepare("SELECT value FROM meta WHERE key='schema_version'");
    ASSERT_TRUE(version.ok());
    ASSERT_TRUE(*version->Step());
    EXPECT_EQ(version->Text(0), absl::StrCat(SqliteStore::kSchemaVersion));
    ASSERT_TRUE((*db)->Exec("UPDATE meta SET value='999' WHERE key='schema_version'").ok());
  }
  absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(state.ok());
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
  ASSERT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("schema version 999"));
}

TEST_F(StoreTest, AFileThatIsNotADatabaseIsRefused) {
  std::filesystem::create_directories(dir_ + "/state");
  std::ofstream(dir_ + "/state/kiln.db") << std::string(4096, 'x');
  absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(state.ok());
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
  EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
}

TEST_F(StoreTest, FilesNoRowNamesAreRemovedAtOpen) {
  SessionRecord session;
  session.set_id("s-1");
  std::string kept;
  {
    absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
    ASSERT_TRUE(state.ok());
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CreateSession(session).ok());
    DatasetRecord dataset;
    dataset.mutable_info()->set_name("d");
    const std::vector<NamedTensor> arrays = Tensors();
    ASSERT_TRUE((*store)->PutDataset("s-1", dataset, &arrays).ok());
    for (const auto& f : std::filesystem::directory_iterator(dir_ + "/state/tensors/s-1")) {
      kept = f.path().string();
    }
  }
  // What a crash leaves: a temporary file, a renamed file not yet committed, a session's
  // directory whose deletion was committed.
  const std::string tmp = dir_ + "/state/tensors/s-1/weights-x.kt.tmp";
  const std::string uncommitted = dir_ + "/state/tensors/s-1/weights-y.kt";
  const std::string deleted = dir_ + "/state/tensors/s-2";
  std::ofstream(tmp) << "partial";
  std::ofstream(uncommitted) << "whole";
  std::filesystem::create_directories(deleted);
  std::ofstream(deleted + "/dataset-z.kt") << "old";
  absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(state.ok());
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->orphans_removed(), 4);  // two files, a directory and its file
  EXPECT_TRUE(std::filesystem::exists(kept));
  EXPECT_FALSE(std::filesystem::exists(tmp));
  EXPECT_FALSE(std::filesystem::exists(uncommitted));
  EXPECT_FALSE(std::filesystem::exists(deleted));
  // And the session's rows came through.
  absl::StatusOr<std::vector<StoredSession>> sessions = (*store)->LoadSessions();
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->size(), 1u);
  ASSERT_EQ((*sessions)[0].datasets.size(), 1u);
  EXPECT_EQ((*sessions)[0].datasets[0].record.info().name(), "d");
}

TEST_F(StoreTest, ChangesToADeletedSessionStoreNothing) {
  absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(state.ok());
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
  ASSERT_TRUE(store.ok());
  SessionRecord session;
  session.set_id("s-1");
  ASSERT_TRUE((*store)->CreateSession(session).ok());
  ASSERT_TRUE((*store)->DeleteSession("s-1").ok());
  // A change racing the deletion (a job ending, a last-use flush) must not bring it back.
  EXPECT_TRUE(absl::IsNotFound((*store)->UpdateSession(session)));
  EXPECT_TRUE(absl::IsNotFound((*store)->AppendOp(session, OpRecord())));
  const std::vector<NamedTensor> arrays = Tensors();
  DatasetRecord dataset;
  dataset.mutable_info()->set_name("d");
  EXPECT_TRUE(absl::IsNotFound((*store)->PutDataset("s-1", dataset, &arrays)));
  EXPECT_TRUE(absl::IsNotFound((*store)->PutWeights("s-1", {{"", "dense", arrays}}, "", nullptr)));
  absl::StatusOr<std::vector<StoredSession>> sessions = (*store)->LoadSessions();
  ASSERT_TRUE(sessions.ok());
  EXPECT_TRUE(sessions->empty());
  std::error_code error;
  int files = 0;
  for (const auto& f :
       std::filesystem::recursive_directory_iterator(dir_ + "/state/tensors", error)) {
    files += f.is_regular_file();
  }
  EXPECT_EQ(files, 0);
}

// With the state directory's disk full, DeleteSession failed too, so nobody could free space
// through the API. The reserve the state directory keeps makes room for the deletion's writes.
TEST_F(StoreTest, ASessionCanBeDeletedOnAFullDisk) {
  const std::string disk = dir_ + "/disk";
  std::filesystem::create_directories(disk);
  if (mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=24m") != 0) {
    GTEST_SKIP() << "cannot mount a small disk here (needs root): " << std::strerror(errno);
  }
  {
    absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(disk + "/state");
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(std::filesystem::exists(disk + "/state/RESERVE"));
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
    ASSERT_TRUE(store.ok()) << store.status();
    SessionRecord session;
    session.set_id("s-full");
    ASSERT_TRUE((*store)->CreateSession(session).ok());
    // Datasets of 1 MiB until the disk takes no more.
    Tensor x(DType::kFloat32, Shape{256, 1024});
    int stored = 0;
    for (; stored < 100; ++stored) {
      DatasetRecord dataset;
      dataset.mutable_info()->set_name(absl::StrCat("d", stored));
      const std::vector<NamedTensor> arrays = {{"x", x}};
      if (!(*store)->PutDataset("s-full", dataset, &arrays).ok()) break;
    }
    ASSERT_LT(stored, 100) << "the disk never filled";
    EXPECT_TRUE((*store)->DeleteSession("s-full").ok());
    absl::StatusOr<std::vector<StoredSession>> sessions = (*store)->LoadSessions();
    ASSERT_TRUE(sessions.ok());
    EXPECT_TRUE(sessions->empty());
    // The space came back, and the reserve with it.
    EXPECT_TRUE(std::filesystem::exists(disk + "/state/RESERVE"));
    EXPECT_TRUE((*store)->CreateSession(session).ok());
  }
  umount(disk.c_str());
}

SessionRecord SessionOf(const std::string& owner, const std::string& id, const std::string& key) {
  SessionRecord session;
  session.set_owner(owner);
  session.set_id(id);
  session.set_store_key(key);
  return session;
}

// Session ids were one namespace across tenants; the store now keys sessions by a key of their
// own, so two tenants' sessions may share an id.
TEST_F(StoreTest, TwoTenantsSessionsMayShareAnId) {
  absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(state.ok());
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->CreateSession(SessionOf("alice", "s-1", "k-a")).ok());
  ASSERT_TRUE((*store)->CreateSession(SessionOf("bob", "s-1", "k-b")).ok());
  const std::vector<NamedTensor> arrays = Tensors();
  DatasetRecord dataset;
  dataset.mutable_info()->set_name("alices");
  ASSERT_TRUE((*store)->PutDataset("k-a", dataset, &arrays).ok());
  ASSERT_TRUE((*store)->DeleteSession("k-b").ok());
  absl::StatusOr<std::vector<StoredSession>> sessions = (*store)->LoadSessions();
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ((*sessions)[0].record.id(), "s-1");
  EXPECT_EQ((*sessions)[0].record.owner(), "alice");
  EXPECT_EQ(StoreKey((*sessions)[0].record), "k-a");
  ASSERT_EQ((*sessions)[0].datasets.size(), 1u);
  EXPECT_EQ((*sessions)[0].datasets[0].record.info().name(), "alices");
}

// A state directory of schema version 1 (records without a store key, sessions keyed by id)
// is migrated at open: each session's key is its id.
TEST_F(StoreTest, AVersionOneStateDirectoryLoadsWithItsIdsAsKeys) {
  {
    absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
    ASSERT_TRUE(state.ok());
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CreateSession(SessionOf("alice", "s-old", "")).ok());
    const std::vector<NamedTensor> arrays = Tensors();
    DatasetRecord dataset;
    dataset.mutable_info()->set_name("d");
    ASSERT_TRUE((*store)->PutDataset("s-old", dataset, &arrays).ok());
  }
  {
    absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(dir_ + "/state/kiln.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("UPDATE meta SET value='1' WHERE key='schema_version'").ok());
  }
  absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(state.ok());
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state));
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::vector<StoredSession>> sessions = (*store)->LoadSessions();
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ(StoreKey((*sessions)[0].record), "s-old");
  ASSERT_EQ((*sessions)[0].datasets.size(), 1u);
  absl::StatusOr<std::vector<NamedTensor>> read =
      (*store)->ReadTensors("s-old", (*sessions)[0].datasets[0].file);
  EXPECT_TRUE(read.ok()) << read.status();
  EXPECT_GT((*store)->usage().tenant_bytes("alice"), TensorFileSize(Tensors()));
}

// The state directory had no per-tenant bound: one tenant could fill the disk for all.
TEST_F(StoreTest, ATenantsFilesAndRecordsCountAgainstItsQuota) {
  constexpr int64_t kQuota = 96 << 10;
  const Tensor x(DType::kFloat32, Shape{10 << 10});  // 40 KiB
  const std::vector<NamedTensor> arrays = {{"x", x}};
  auto put = [&](SqliteStore& store, const std::string& key, const std::string& name) {
    DatasetRecord dataset;
    dataset.mutable_info()->set_name(name);
    return store.PutDataset(key, dataset, &arrays);
  };
  int64_t alice_before_restart = 0;
  {
    absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
    ASSERT_TRUE(state.ok());
    absl::StatusOr<std::unique_ptr<SqliteStore>> store =
        SqliteStore::Open(*std::move(state), kQuota);
    ASSERT_TRUE(store.ok());
    SqliteStore& s = **store;
    ASSERT_TRUE(s.CreateSession(SessionOf("alice", "s-1", "k-a1")).ok());
    ASSERT_TRUE(s.CreateSession(SessionOf("alice", "s-2", "k-a2")).ok());
    ASSERT_TRUE(s.CreateSession(SessionOf("bob", "s-1", "k-b1")).ok());
    ASSERT_TRUE(put(s, "k-a1", "one").ok());
    ASSERT_TRUE(put(s, "k-a2", "two").ok());
    const int64_t alice = s.usage().tenant_bytes("alice");
    EXPECT_EQ(alice, s.usage().session_bytes("k-a1") + s.usage().session_bytes("k-a2"));
    EXPECT_GT(alice, 2 * TensorFileSize(arrays));
    // A third is past the quota across Alice's sessions, and writes nothing.
    const absl::Status refused = put(s, "k-a1", "three");
    EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
    EXPECT_THAT(std::string(refused.message()), HasSubstr("tenant \"alice\" would keep"));
    EXPECT_THAT(std::string(refused.message()), HasSubstr("(--max_tenant_disk_bytes)"));
    EXPECT_EQ(s.usage().tenant_bytes("alice"), alice);
    int files = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir_ + "/state/tensors/k-a1")) {
      files += f.is_regular_file();
    }
    EXPECT_EQ(files, 1);
    // Bob's quota is his own.
    EXPECT_TRUE(put(s, "k-b1", "one").ok());
    EXPECT_TRUE(put(s, "k-b1", "two").ok());
    // Deleting gives the bytes back.
    ASSERT_TRUE(s.DeleteDataset("k-a2", "two").ok());
    EXPECT_LT(s.usage().tenant_bytes("alice"), alice - TensorFileSize(arrays) + 1);
    EXPECT_TRUE(put(s, "k-a1", "three").ok());
    alice_before_restart = s.usage().tenant_bytes("alice");
  }
  // Counted again from the directory and the database at open.
  absl::StatusOr<std::unique_ptr<StateDir>> state = StateDir::Open(dir_ + "/state");
  ASSERT_TRUE(state.ok());
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(*std::move(state), kQuota);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->usage().tenant_bytes("alice"), alice_before_restart);
  EXPECT_TRUE(absl::IsResourceExhausted(put(**store, "k-a2", "four")));
  ASSERT_TRUE((*store)->DeleteSession("k-a1").ok());
  EXPECT_EQ((*store)->usage().tenant_bytes("alice"), (*store)->usage().session_bytes("k-a2"));
  EXPECT_TRUE(put(**store, "k-a2", "four").ok());
}

}  // namespace
}  // namespace kiln::store
