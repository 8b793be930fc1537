// DataService over a real channel: streaming and unary uploads, files under the data root,
// built-ins, reads, and the message size limit.
#include <fstream>
#include <limits>

#include "core/io/npy_writer.h"
#include "tests/service/service_fixture.h"

namespace kiln::testing {
namespace {

using grpc::StatusCode;

class DataServiceTest : public ServiceTest {
 protected:
  void Configure(server::ServerOptions& options) override {
    options.max_message_bytes = 1 << 20;  // 1 MiB, to test the limit
  }

  // An .npy file's bytes for float32 data of `shape`.
  static std::string Npy(std::vector<int64_t> shape, const std::vector<float>& values) {
    return FormatNpy(DType::kFloat32, shape,
                     absl::string_view(reinterpret_cast<const char*>(values.data()),
                                       values.size() * sizeof(float)));
  }
};

TEST_F(DataServiceTest, StreamingUploadInChunks) {
  const std::string s = CreateSession();
  std::vector<float> x(100 * 64), y(100);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 255);
  for (size_t i = 0; i < y.size(); ++i) y[i] = float(i % 3);
  const std::string x_bytes = Npy({100, 8, 8, 1}, x), y_bytes = Npy({100}, y);
  auto context = Context();
  v1::DatasetInfo info;
  auto writer = data_->UploadDataset(context.get(), &info);
  v1::UploadDatasetRequest header;
  header.mutable_header()->set_session_id(s);
  header.mutable_header()->set_name("mine");
  header.mutable_header()->add_x()->set_format("npy");
  header.mutable_header()->mutable_y()->set_format("npy");
  header.mutable_header()->mutable_transform()->set_scale(1.0f / 255);
  ASSERT_TRUE(writer->Write(header));
  for (size_t offset = 0; offset < x_bytes.size(); offset += 1000) {
    v1::UploadDatasetRequest chunk;
    chunk.mutable_chunk()->set_array("x");
    chunk.mutable_chunk()->set_data(x_bytes.substr(offset, 1000));
    ASSERT_TRUE(writer->Write(chunk));
  }
  v1::UploadDatasetRequest chunk;
  chunk.mutable_chunk()->set_array("y");
  chunk.mutable_chunk()->set_data(y_bytes);
  ASSERT_TRUE(writer->Write(chunk));
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.name(), "mine");
  EXPECT_EQ(info.samples(), 100);
  EXPECT_EQ(info.source(), "upload");
  // Scaled by 1/255: row 0's last pixel was 63.
  v1::ReadDatasetRequest read;
  read.set_session_id(s);
  read.set_name("mine");
  read.set_array("x");
  read.set_limit(1);
  v1::TensorProto row;
  ASSERT_TRUE(data_->ReadDataset(Context().get(), read, &row).ok());
  EXPECT_NEAR(reinterpret_cast<const float*>(row.data().data())[63], 63.0 / 255, 1e-6);
  // A limit past the end (even one that would overflow offset + limit) reads to the end.
  read.set_offset(98);
  read.set_limit(std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(data_->ReadDataset(Context().get(), read, &row).ok());
  EXPECT_EQ(row.shape(0), 2);
  // The same name again is ALREADY_EXISTS.
  auto again = Context();
  auto writer2 = data_->UploadDataset(again.get(), &info);
  writer2->Write(header);
  writer2->Write(chunk);
  chunk.mutable_chunk()->set_array("x");
  chunk.mutable_chunk()->set_data(x_bytes);
  writer2->Write(chunk);
  writer2->WritesDone();
  ExpectError(writer2->Finish(), StatusCode::ALREADY_EXISTS, "header.name", "already exists");
}

TEST_F(DataServiceTest, UnaryUploadWithOffsets) {
  const std::string s = CreateSession();
  v1::BeginUploadRequest begin;
  v1::UploadHeader* h = begin.mutable_header();
  h->set_session_id(s);
  h->set_name("raw");
  v1::ArraySpec* spec = h->add_x();
  spec->set_format("raw");
  spec->set_dtype(v1::UINT8);
  for (int64_t d : {4, 8, 8, 1}) spec->add_shape(d);
  h->mutable_y()->set_format("raw");
  h->mutable_y()->set_dtype(v1::INT32);
  h->mutable_y()->add_shape(4);
  v1::BeginUploadResponse upload;
  ASSERT_TRUE(data_->BeginUpload(Context().get(), begin, &upload).ok());
  v1::AppendUploadChunkRequest append;
  append.set_session_id(s);
  append.set_upload_id(upload.upload_id());
  append.mutable_chunk()->set_array("x");
  append.mutable_chunk()->set_data(std::string(128, '\x10'));
  v1::AppendUploadChunkResponse received;
  ASSERT_TRUE(data_->AppendUploadChunk(Context().get(), append, &received).ok());
  EXPECT_EQ(received.received(), 128);
  // A retried chunk (stale offset) is refused and says where to continue.
  ExpectError(data_->AppendUploadChunk(Context().get(), append, &received),
              StatusCode::FAILED_PRECONDITION, "", "send from offset 128");
  append.set_offset(128);
  ASSERT_TRUE(data_->AppendUploadChunk(Context().get(), append, &received).ok());
  append.set_offset(0);
  append.mutable_chunk()->set_array("y");
  const int32_t labels[4] = {0, 1, 2, 1};
  append.mutable_chunk()->set_data(std::string(reinterpret_cast<const char*>(labels), 16));
  ASSERT_TRUE(data_->AppendUploadChunk(Context().get(), append, &received).ok());
  append.mutable_chunk()->set_array("x7");
  ExpectError(data_->AppendUploadChunk(Context().get(), append, &received),
              StatusCode::INVALID_ARGUMENT, "chunk.array", "is not an array of this upload");
  v1::FinishUploadRequest finish;
  finish.set_session_id(s);
  finish.set_upload_id(upload.upload_id());
  v1::DatasetInfo info;
  grpc::Status status = data_->FinishUpload(Context().get(), finish, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.samples(), 4);
  EXPECT_EQ(info.x(0).dtype(), v1::FLOAT32);  // converted for training
  ExpectError(data_->FinishUpload(Context().get(), finish, &info), StatusCode::NOT_FOUND,
              "upload_id", "no upload");
}

TEST_F(DataServiceTest, FilesBelowTheDataRootOnly) {
  const std::string s = CreateSession();
  std::ofstream(data_root_ + "/digits.csv") << "a,b,c,label\n1,2,3,0\n4,5,6,1\n7,8,9,2\n";
  v1::OpenDatasetRequest open;
  open.set_session_id(s);
  open.set_name("digits");
  open.mutable_files()->add_x("digits.csv");
  open.mutable_files()->set_label_column(-1);
  v1::DatasetInfo info;
  grpc::Status status = data_->OpenDataset(Context().get(), open, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.samples(), 3);
  EXPECT_EQ(info.x(0).shape(1), 3);
  EXPECT_EQ(info.y().shape_size(), 1);
  open.set_name("escape");
  open.mutable_files()->set_x(0, "../../etc/passwd");
  ExpectError(data_->OpenDataset(Context().get(), open, &info), StatusCode::PERMISSION_DENIED,
              "files.x[0]", "is not a file below the server's data root");
  open.mutable_files()->set_x(0, "missing.npy");
  ExpectError(data_->OpenDataset(Context().get(), open, &info), StatusCode::NOT_FOUND, "files.x[0]",
              "no such file");
  v1::ListDatasetsRequest list;
  list.set_session_id(s);
  v1::ListDatasetsResponse datasets;
  ASSERT_TRUE(data_->ListDatasets(Context().get(), list, &datasets).ok());
  ASSERT_EQ(datasets.datasets_size(), 1);
}

TEST_F(DataServiceTest, BuiltinFashionMnist) {
  const std::string s = CreateSession();
  v1::OpenDatasetRequest open;
  open.set_session_id(s);
  open.set_name("fm");
  open.set_builtin("fashion_mnist:test");
  v1::DatasetInfo info;
  grpc::Status status = data_->OpenDataset(Context().get(), open, &info);
  if (status.error_code() == StatusCode::NOT_FOUND) GTEST_SKIP() << status.error_message();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.samples(), 10000);
  EXPECT_EQ(std::vector<int64_t>(info.x(0).shape().begin(), info.x(0).shape().end()),
            (std::vector<int64_t>{10000, 28, 28, 1}));
  open.set_builtin("cifar10");
  ExpectError(data_->OpenDataset(Context().get(), open, &info), StatusCode::NOT_FOUND, "builtin",
              "built-ins: fashion_mnist:train, fashion_mnist:test");
}

// A tensor that claims a huge shape but carries a few bytes is refused before anything of that
// size is allocated.
TEST_F(DataServiceTest, ClaimedShapesAreCheckedAgainstTheBytesFirst) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  v1::PredictRequest request;
  request.set_session_id(s);
  request.set_model("small");
  v1::TensorProto* x = request.add_inputs();
  x->set_dtype(v1::INT64);
  for (int64_t d : {24, 8, 8, 1, 37, 104, 305}) x->add_shape(d);  // 14 GB of int64
  x->set_data(std::string(8, '\0'));
  v1::PredictResponse response;
  ExpectError(inference_->Predict(Context(10).get(), request, &response),
              StatusCode::INVALID_ARGUMENT, "inputs[0].data",
              "needs 14421688320 bytes, received 8");
}

TEST_F(DataServiceTest, MessagesOverTheLimitAreResourceExhausted) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  v1::PredictRequest request;
  request.set_session_id(s);
  request.set_model("small");
  v1::TensorProto* x = request.add_inputs();
  x->set_dtype(v1::FLOAT32);
  for (int64_t d : {8192, 8, 8, 1}) x->add_shape(d);
  x->set_data(std::string(8192 * 64 * 4, '\0'));  // 2 MiB > 1 MiB
  v1::PredictResponse response;
  ExpectError(inference_->Predict(Context().get(), request, &response),
              StatusCode::RESOURCE_EXHAUSTED, "", "");
}

class SessionByteLimitTest : public DataServiceTest {
 protected:
  void Configure(server::ServerOptions& options) override {
    DataServiceTest::Configure(options);
    options.max_session_bytes = 3 << 20;
  }
};

// Two uploads streamed at once share the session's limit: together they may not exceed it.
TEST_F(SessionByteLimitTest, ParallelUploadsShareTheSessionLimit) {
  const std::string s = CreateSession();
  const std::string bytes = Npy({65536, 8}, std::vector<float>(65536 * 8, 1.0f));  // 2 MiB
  struct Stream {
    std::unique_ptr<grpc::ClientContext> context;
    v1::DatasetInfo info;
    std::unique_ptr<grpc::ClientWriter<v1::UploadDatasetRequest>> writer;
  };
  auto open = [&](const std::string& name) {
    Stream stream;
    stream.context = Context();
    stream.writer = data_->UploadDataset(stream.context.get(), &stream.info);
    v1::UploadDatasetRequest header;
    header.mutable_header()->set_session_id(s);
    header.mutable_header()->set_name(name);
    header.mutable_header()->add_x()->set_format("npy");
    stream.writer->Write(header);
    return stream;
  };
  auto send = [&](Stream& stream) {
    for (size_t offset = 0; offset < bytes.size(); offset += 512 << 10) {
      v1::UploadDatasetRequest chunk;
      chunk.mutable_chunk()->set_array("x");
      chunk.mutable_chunk()->set_data(bytes.substr(offset, 512 << 10));
      if (!stream.writer->Write(chunk)) break;
    }
    stream.writer->WritesDone();
  };
  Stream first = open("first"), second = open("second");
  send(first);
  send(second);
  const grpc::Status statuses[] = {first.writer->Finish(), second.writer->Finish()};
  // They cannot both fit; which one goes over depends on how their chunks interleave.
  EXPECT_FALSE(statuses[0].ok() && statuses[1].ok());
  int stored = 0;
  for (const grpc::Status& status : statuses) {
    if (status.ok()) {
      ++stored;
    } else {
      ExpectError(status, StatusCode::RESOURCE_EXHAUSTED, "", "over its limit of 3145728 (--max_session_bytes)");
    }
  }
  // What the failed streams had received is released: one more 2 MiB upload fits exactly
  // when none was stored.
  Stream third = open("third");
  send(third);
  const grpc::Status status = third.writer->Finish();
  EXPECT_EQ(status.ok(), stored == 0) << status.error_message();
}

TEST_F(DataServiceTest, ACancelledUploadStreamMakesNoDataset) {
  const std::string s = CreateSession();
  const std::vector<float> x = {1, 2, 3, 4};
  auto context = Context();
  v1::DatasetInfo info;
  auto writer = data_->UploadDataset(context.get(), &info);
  v1::UploadDatasetRequest header;
  header.mutable_header()->set_session_id(s);
  header.mutable_header()->set_name("partial");
  header.mutable_header()->add_x()->set_format("npy");
  ASSERT_TRUE(writer->Write(header));
  v1::UploadDatasetRequest chunk;
  chunk.mutable_chunk()->set_array("x");
  chunk.mutable_chunk()->set_data(Npy({2, 2}, x));  // a complete array: it would parse
  ASSERT_TRUE(writer->Write(chunk));
  context->TryCancel();  // the client gives up instead of closing its side
  EXPECT_EQ(writer->Finish().error_code(), StatusCode::CANCELLED);
  // Whatever the server had read is dropped, not made into a dataset.
  for (int i = 0; i < 50; ++i) {
    v1::ListDatasetsRequest list;
    list.set_session_id(s);
    v1::ListDatasetsResponse datasets;
    ASSERT_TRUE(data_->ListDatasets(Context().get(), list, &datasets).ok());
    EXPECT_EQ(datasets.datasets_size(), 0);
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace
}  // namespace kiln::testing
