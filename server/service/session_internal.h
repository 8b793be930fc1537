// Helpers shared by the files that implement Session (session*.cc); not for other users.
#ifndef KILN_SERVER_SERVICE_SESSION_INTERNAL_H_
#define KILN_SERVER_SERVICE_SESSION_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "absl/time/time.h"
#include "core/graph/graph.h"
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

}  // namespace kiln::server::internal

#endif  // KILN_SERVER_SERVICE_SESSION_INTERNAL_H_
