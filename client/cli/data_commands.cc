// kiln data open|upload|list.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"

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

}  // namespace

absl::Status DataCommand(client::Client& c, const std::vector<std::string>& args) {
  const std::string verb = args.size() > 1 ? args[1] : "";
  KILN_ASSIGN_OR_RETURN(const std::string session, RequireSession());
  if (verb == "open") {
    v1::OpenDatasetRequest request;
    request.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(*request.mutable_name(), Require(absl::GetFlag(FLAGS_name), "name"));
    if (!absl::GetFlag(FLAGS_builtin).empty()) {
      request.set_builtin(absl::GetFlag(FLAGS_builtin));
    } else {
      KILN_ASSIGN_OR_RETURN(*request.mutable_files()->add_x(),
                            Require(absl::GetFlag(FLAGS_x), "x (or --builtin)"));
      request.mutable_files()->set_y(absl::GetFlag(FLAGS_y));
    }
    if (absl::GetFlag(FLAGS_scale) != 1.0) {
      request.mutable_transform()->set_scale(float(absl::GetFlag(FLAGS_scale)));
    }
    KILN_ASSIGN_OR_RETURN(v1::DatasetInfo info,
                          c.Call(&v1::DataService::Stub::OpenDataset, c.data(), request));
    return PrintDataset(info);
  }
  if (verb == "upload") {
    // The .npy files are streamed in 1 MiB chunks and parsed by the server at the end.
    v1::UploadDatasetRequest header;
    v1::UploadHeader& h = *header.mutable_header();
    h.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(*h.mutable_name(), Require(absl::GetFlag(FLAGS_name), "name"));
    KILN_ASSIGN_OR_RETURN(const std::string x_path, Require(absl::GetFlag(FLAGS_x), "x"));
    h.add_x()->set_format("npy");
    const std::string y_path = absl::GetFlag(FLAGS_y);
    if (!y_path.empty()) h.mutable_y()->set_format("npy");
    if (absl::GetFlag(FLAGS_scale) != 1.0) {
      h.mutable_transform()->set_scale(float(absl::GetFlag(FLAGS_scale)));
    }
    grpc::ClientContext context;
    v1::DatasetInfo info;
    auto writer = c.data().UploadDataset(&context, &info);
    writer->Write(header);
    for (const auto& [array, path] :
         {std::pair<std::string, std::string>{"x", x_path}, {"y", y_path}}) {
      if (path.empty()) continue;
      KILN_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
      for (size_t offset = 0; offset < bytes.size(); offset += 1 << 20) {
        v1::UploadDatasetRequest chunk;
        chunk.mutable_chunk()->set_array(array);
        chunk.mutable_chunk()->set_data(bytes.substr(offset, 1 << 20));
        if (!writer->Write(chunk)) break;  // the server ended the call; Finish says why
      }
    }
    writer->WritesDone();
    KILN_RETURN_IF_ERROR(client::FromGrpc(writer->Finish()));
    return PrintDataset(info);
  }
  if (verb == "list") {
    v1::ListDatasetsRequest request;
    request.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(v1::ListDatasetsResponse r,
                          c.Call(&v1::DataService::Stub::ListDatasets, c.data(), request));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
    for (const v1::DatasetInfo& d : r.datasets()) KILN_RETURN_IF_ERROR(PrintDataset(d));
    return absl::OkStatus();
  }
  return UsageError("usage: kiln data open|upload|list");
}

}  // namespace kiln::cli
