// kiln data open|upload|list|read|delete.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"
#include "client/cli/npy_files.h"

namespace kiln::cli {
namespace {

absl::Status PrintDataset(const v1::DatasetInfo& info) {
  if (absl::GetFlag(FLAGS_json)) return PrintJson(info);
  std::string shapes;
  for (const v1::TensorSpec& spec : info.x()) {
    absl::StrAppend(&shapes, shapes.empty() ? "x " : ", ", "(", absl::StrJoin(spec.shape(), ", "),
                    ")");
  }
  if (info.has_y()) absl::StrAppend(&shapes, ", y (", absl::StrJoin(info.y().shape(), ", "), ")");
  std::printf("%s: %lld samples, %s [%s]\n", info.name().c_str(),
              static_cast<long long>(info.samples()), shapes.c_str(), info.source().c_str());
  return absl::OkStatus();
}

void SetScale(v1::FeatureTransform& transform) {
  if (absl::GetFlag(FLAGS_scale) != 1.0) transform.set_scale(float(absl::GetFlag(FLAGS_scale)));
}

}  // namespace

absl::Status DataOpen(client::Client& c, const Args&) {
  v1::OpenDatasetRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_name(), Require(absl::GetFlag(FLAGS_name), "name"));
  if (!absl::GetFlag(FLAGS_builtin).empty()) {
    request.set_builtin(absl::GetFlag(FLAGS_builtin));
  } else {
    KILN_ASSIGN_OR_RETURN(*request.mutable_files()->add_x(),
                          Require(absl::GetFlag(FLAGS_x), "x (or --builtin)"));
    request.mutable_files()->set_y(absl::GetFlag(FLAGS_y));
  }
  SetScale(*request.mutable_transform());
  KILN_ASSIGN_OR_RETURN(v1::DatasetInfo info,
                        c.Call(&v1::DataService::Stub::OpenDataset, c.data(), request));
  return PrintDataset(info);
}

absl::Status DataUpload(client::Client& c, const Args&) {
  // The .npy files are streamed in 1 MiB chunks and parsed by the server at the end.
  v1::UploadDatasetRequest header;
  v1::UploadHeader& h = *header.mutable_header();
  KILN_ASSIGN_OR_RETURN(*h.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*h.mutable_name(), Require(absl::GetFlag(FLAGS_name), "name"));
  KILN_ASSIGN_OR_RETURN(const std::string x_path, Require(absl::GetFlag(FLAGS_x), "x"));
  h.add_x()->set_format("npy");
  const std::string y_path = absl::GetFlag(FLAGS_y);
  if (!y_path.empty()) h.mutable_y()->set_format("npy");
  SetScale(*h.mutable_transform());
  // Read before the call starts, so that a missing file is a usage error and sends nothing.
  KILN_ASSIGN_OR_RETURN(const std::string x_bytes, ReadFile(x_path));
  std::string y_bytes;
  if (!y_path.empty()) {
    KILN_ASSIGN_OR_RETURN(y_bytes, ReadFile(y_path));
  }
  grpc::ClientContext context;
  client::NameSession(context, header);
  v1::DatasetInfo info;
  auto writer = c.data().UploadDataset(&context, &info);
  writer->Write(header);
  for (const auto& [array, bytes] :
       {std::pair<std::string, const std::string*>{"x", &x_bytes}, {"y", &y_bytes}}) {
    for (size_t offset = 0; offset < bytes->size(); offset += 1 << 20) {
      v1::UploadDatasetRequest chunk;
      chunk.mutable_chunk()->set_array(array);
      chunk.mutable_chunk()->set_data(bytes->substr(offset, 1 << 20));
      if (!writer->Write(chunk)) break;  // the server ended the call; Finish says why
    }
  }
  writer->WritesDone();
  KILN_RETURN_IF_ERROR(client::FromGrpc(writer->Finish()));
  return PrintDataset(info);
}

absl::Status DataList(client::Client& c, const Args&) {
  v1::ListDatasetsRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(v1::ListDatasetsResponse r,
                        c.Call(&v1::DataService::Stub::ListDatasets, c.data(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
  for (const v1::DatasetInfo& d : r.datasets()) KILN_RETURN_IF_ERROR(PrintDataset(d));
  return absl::OkStatus();
}

absl::StatusOr<v1::TensorProto> ReadDatasetArray(client::Client& c, const std::string& session,
                                                 const std::string& name,
                                                 const std::string& array) {
  v1::GetDatasetRequest get;
  get.set_session_id(session);
  get.set_name(name);
  KILN_ASSIGN_OR_RETURN(v1::DatasetInfo info,
                        c.Call(&v1::DataService::Stub::GetDataset, c.data(), get));
  v1::TensorProto all;
  // Pages of what fits in one message; the first one carries dtype and shape.
  for (int64_t offset = 0; offset == 0 || offset < info.samples();) {
    v1::ReadDatasetRequest read;
    read.set_session_id(session);
    read.set_name(name);
    read.set_array(array);
    read.set_offset(offset);
    KILN_ASSIGN_OR_RETURN(v1::TensorProto rows,
                          c.Call(&v1::DataService::Stub::ReadDataset, c.data(), read));
    const int64_t n = rows.shape_size() > 0 ? rows.shape(0) : 0;
    if (offset == 0) {
      all = std::move(rows);
    } else {
      all.mutable_data()->append(rows.data());
      all.set_shape(0, all.shape(0) + n);
    }
    if (n == 0) break;
    offset += n;
  }
  return all;
}

absl::Status DataRead(client::Client& c, const Args& args) {
  KILN_ASSIGN_OR_RETURN(const std::string session, RequireSession());
  KILN_ASSIGN_OR_RETURN(const std::string output, Require(absl::GetFlag(FLAGS_output), "output"));
  KILN_ASSIGN_OR_RETURN(v1::TensorProto array,
                        ReadDatasetArray(c, session, args[0], absl::GetFlag(FLAGS_array)));
  KILN_RETURN_IF_ERROR(WriteNpyFile(output, array));
  std::printf("wrote %s: (%s)\n", output.c_str(), absl::StrJoin(array.shape(), ", ").c_str());
  return absl::OkStatus();
}

absl::Status DataDelete(client::Client& c, const Args& args) {
  v1::DeleteDatasetRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_name(args[0]);
  KILN_RETURN_IF_ERROR(c.Call(&v1::DataService::Stub::DeleteDataset, c.data(), request).status());
  std::printf("deleted dataset %s\n", request.name().c_str());
  return absl::OkStatus();
}

}  // namespace kiln::cli
