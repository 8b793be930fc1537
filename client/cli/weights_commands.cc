// kiln weights get|set: a layer's weights as .npy files in Keras layout. The layer is looked up
// in --model, else in the session's only model (whose layers may live in a graph of its own,
// made by DefineModel), else in the session's graph.
#include <cstdio>
#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"
#include "client/cli/npy_files.h"

namespace kiln::cli {

absl::Status WeightsGet(client::Client& c, const Args& args) {
  v1::GetWeightsRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_layer(args[0]);
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(),
                        ResolveModel(c, request.session_id(), /*optional=*/true));
  KILN_ASSIGN_OR_RETURN(v1::GetWeightsResponse r,
                        c.Call(&v1::ModelService::Stub::GetWeights, c.models(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
  const std::string dir = absl::GetFlag(FLAGS_output_dir);
  if (!dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) {
      return UsageError(absl::StrCat("--output_dir=", dir, ": ", error.message()));
    }
  }
  if (r.weights_size() == 0) std::printf("layer %s has no weights\n", args[0].c_str());
  for (const v1::NamedTensor& w : r.weights()) {
    // Python's tuple form, as Keras prints shapes: (4,) for one dimension.
    const auto& shape = w.tensor().shape();
    std::string line =
        absl::StrCat(w.name(), ": (", absl::StrJoin(shape, ", "), shape.size() == 1 ? ",)" : ")");
    if (!dir.empty()) {
      const std::string path = absl::StrCat(dir, "/", args[0], ".", w.name(), ".npy");
      KILN_RETURN_IF_ERROR(WriteNpyFile(path, w.tensor()));
      absl::StrAppend(&line, " -> ", path);
    }
    std::printf("%s\n", line.c_str());
  }
  return absl::OkStatus();
}

absl::Status WeightsSet(client::Client& c, const Args& args) {
  v1::SetWeightsRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_layer(args[0]);
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(),
                        ResolveModel(c, request.session_id(), /*optional=*/true));
  for (size_t i = 1; i < args.size(); ++i) {
    const size_t eq = args[i].find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == args[i].size()) {
      return UsageError(
          absl::StrCat("\"", args[i], "\" is not WEIGHT=FILE.npy (e.g. kernel=kernel.npy)"));
    }
    v1::NamedTensor* w = request.add_weights();
    w->set_name(args[i].substr(0, eq));
    KILN_ASSIGN_OR_RETURN(*w->mutable_tensor(), ReadNpyFile(args[i].substr(eq + 1)));
  }
  KILN_RETURN_IF_ERROR(c.Call(&v1::ModelService::Stub::SetWeights, c.models(), request).status());
  std::vector<std::string> names;
  for (const v1::NamedTensor& w : request.weights()) names.push_back(w.name());
  std::printf("set %s of layer %s\n", absl::StrJoin(names, ", ").c_str(), args[0].c_str());
  return absl::OkStatus();
}

}  // namespace kiln::cli
