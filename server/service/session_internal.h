// Helpers shared by the files that implement Session (session*.cc); not for other users.
#ifndef KILN_SERVER_SERVICE_SESSION_INTERNAL_H_
#define KILN_SERVER_SERVICE_SESSION_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/status.h"
#include "core/graph/graph.h"
#include "core/io/tensor_proto.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace kiln::server::internal {

inline google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

inline std::vector<TensorId> Ids(const google::protobuf::RepeatedField<int64_t>& ids) {
  return std::vector<TensorId>(ids.begin(), ids.end());
}

// A generator for one kind of seed (1: layers and models, 2: fits): from the session's seed
// when it has one (each kind its own stream, `draws` already taken from it), else from the
// system's entropy.
inline std::mt19937_64 SeedStream(const std::optional<int64_t>& session_seed, uint64_t kind,
                                  int64_t draws = 0) {
  if (!session_seed.has_value()) {
    std::random_device entropy;
    return std::mt19937_64((uint64_t(entropy()) << 32) ^ entropy());
  }
  std::seed_seq seq{uint32_t(uint64_t(*session_seed)), uint32_t(uint64_t(*session_seed) >> 32),
                    uint32_t(kind)};
  std::mt19937_64 stream(seq);
  stream.discard(static_cast<unsigned long long>(draws));
  return stream;
}

// DecodeTensor for a tensor in a request: at most --max_request_elements elements.
inline absl::StatusOr<Tensor> DecodeRequestTensor(const v1::TensorProto& proto,
                                                  absl::string_view path, int64_t max_elements) {
  absl::StatusOr<Tensor> tensor = DecodeTensor(proto, path, max_elements);
  if (absl::IsResourceExhausted(tensor.status())) {
    absl::Status named(tensor.status().code(),
                       absl::StrCat(tensor.status().message(), " (--max_request_elements)"));
    tensor.status().ForEachPayload(  // the field path
        [&](absl::string_view url, const absl::Cord& payload) { named.SetPayload(url, payload); });
    return named;
  }
  return tensor;
}

}  // namespace kiln::server::internal

#endif  // KILN_SERVER_SERVICE_SESSION_INTERNAL_H_
