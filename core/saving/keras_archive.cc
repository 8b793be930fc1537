#include "core/saving/keras_archive.h"

#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {
namespace {

// 1980-01-01 00:00 local, the date Python's zipfile gives members opened with zf.open(name,
// "w") - so that the same model always makes the same archive.
constexpr time_t kZipEpoch = 315532800;

std::string ZipError(zip_error_t* error) { return zip_error_strerror(error); }

absl::Status AddMember(zip_t* zip, const char* name, const std::string& data) {
  zip_source_t* source = zip_source_buffer(zip, data.data(), data.size(), 0);
  if (source == nullptr) return absl::InternalError(absl::StrCat("libzip: ", zip_strerror(zip)));
  const zip_int64_t index = zip_file_add(zip, name, source, ZIP_FL_ENC_UTF_8);
  if (index < 0) {
    zip_source_free(source);
    return absl::InternalError(absl::StrCat("libzip: ", zip_strerror(zip)));
  }
  zip_set_file_compression(zip, zip_uint64_t(index), ZIP_CM_STORE, 0);
  zip_file_set_mtime(zip, zip_uint64_t(index), kZipEpoch, 0);
  return absl::OkStatus();
}

// Inflates `name`, counting what comes out against `budget` (the bytes all members may still
// take) and the member's compression ratio, so that a bomb stops after a bounded amount of work.
absl::StatusOr<std::string> ReadMember(zip_t* zip, const char* name, const ArchiveLimits& limits,
                                       int64_t& budget) {
  const zip_int64_t index = zip_name_locate(zip, name, 0);
  if (index < 0) {
    return FieldError(name, absl::StrCat("the archive has no ", name,
                                         " (a .keras file holds config.json, metadata.json and "
                                         "model.weights.h5)"));
  }
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat_index(zip, zip_uint64_t(index), 0, &stat) < 0 || !(stat.valid & ZIP_STAT_SIZE) ||
      !(stat.valid & ZIP_STAT_COMP_SIZE)) {
    return FieldError(name, "the archive's directory is damaged");
  }
  // What inflating may produce: the budget, and the ratio's share of the compressed size (a
  // small member may shrink further: the first MiB is free of the ratio).
  const int64_t compressed = int64_t(std::min<zip_uint64_t>(stat.comp_size, INT64_MAX / 128));
  const int64_t by_ratio = compressed * limits.max_ratio + (int64_t{1} << 20);
  const int64_t allowed = std::min(budget, by_ratio);
  auto too_large = [&](const std::string& what) {
    return absl::ResourceExhaustedError(absl::StrCat(
        name, " ", what, ", more than ",
        allowed == budget
            ? absl::StrCat("the ", budget, " bytes the archive may hold")
            : absl::StrCat(limits.max_ratio, " times its ", compressed, " compressed bytes")));
  };
  if (stat.size > zip_uint64_t(allowed)) {
    return too_large(absl::StrCat("is ", stat.size, " bytes uncompressed"));
  }
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(
      zip_fopen_index(zip, zip_uint64_t(index), 0), zip_fclose);
  if (file == nullptr) return FieldError(name, absl::StrCat("libzip: ", zip_strerror(zip)));
  std::string data;
  char chunk[1 << 16];
  for (;;) {
    const zip_int64_t n = zip_fread(file.get(), chunk, sizeof(chunk));
    if (n < 0) return FieldError(name, "the member is damaged (it ends early or fails its CRC)");
    if (n == 0) break;
    if (int64_t(data.size()) + n > allowed) {
      return too_large(absl::StrCat("inflates to more than ", allowed, " bytes"));
    }
    data.append(chunk, size_t(n));
  }
  if (data.size() != stat.size) {
    return FieldError(name, "the member is damaged (its size is not the directory's)");
  }
  budget -= int64_t(data.size());
  return data;
}

}  // namespace

bool IsZip(absl::string_view bytes) { return absl::StartsWith(bytes, "PK\x03\x04"); }

absl::StatusOr<std::string> WriteKerasArchive(const KerasArchive& archive) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (buffer == nullptr) return absl::InternalError(absl::StrCat("libzip: ", ZipError(&error)));
  zip_source_keep(buffer);  // read back after zip_close
  std::unique_ptr<zip_source_t, void (*)(zip_source_t*)> keep(buffer, zip_source_free);
  zip_t* zip = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  if (zip == nullptr) return absl::InternalError(absl::StrCat("libzip: ", ZipError(&error)));
  for (const auto& [name, data] : {std::pair{"metadata.json", &archive.metadata_json},
                                   std::pair{"config.json", &archive.config_json},
                                   std::pair{"model.weights.h5", &archive.weights_h5}}) {
    absl::Status added = AddMember(zip, name, *data);
    if (!added.ok()) {
      zip_discard(zip);
      return added;
    }
  }
  if (zip_close(zip) < 0) {
    const std::string message = zip_strerror(zip);
    zip_discard(zip);
    return absl::InternalError(absl::StrCat("libzip: ", message));
  }
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_source_stat(buffer, &stat) < 0 || zip_source_open(buffer) < 0) {
    return absl::InternalError("libzip: cannot read the archive back");
  }
  std::string bytes(stat.size, '\0');
  const zip_int64_t n = zip_source_read(buffer, bytes.data(), bytes.size());
  zip_source_close(buffer);
  if (n != zip_int64_t(bytes.size())) return absl::InternalError("libzip: short read");
  return bytes;
}

absl::StatusOr<KerasArchive> ReadKerasArchive(absl::string_view bytes,
                                              const ArchiveLimits& limits) {
  if (!IsZip(bytes)) return FieldError("", "not a zip file (a .keras file is one)");
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) return absl::InternalError(absl::StrCat("libzip: ", ZipError(&error)));
  zip_t* zip = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (zip == nullptr) {
    zip_source_free(source);
    return FieldError("", absl::StrCat("not a readable zip archive: ", ZipError(&error)));
  }
  std::unique_ptr<zip_t, void (*)(zip_t*)> close(zip, zip_discard);
  const zip_int64_t members = zip_get_num_entries(zip, 0);
  if (members > limits.max_members) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the archive holds ", members, " members, more than the ", limits.max_members, " allowed"));
  }
  int64_t budget = limits.max_total_bytes;
  KerasArchive archive;
  KILN_ASSIGN_OR_RETURN(archive.config_json, ReadMember(zip, "config.json", limits, budget));
  KILN_ASSIGN_OR_RETURN(archive.weights_h5, ReadMember(zip, "model.weights.h5", limits, budget));
  if (zip_name_locate(zip, "metadata.json", 0) >= 0) {
    KILN_ASSIGN_OR_RETURN(archive.metadata_json, ReadMember(zip, "metadata.json", limits, budget));
  }
  return archive;
}

}  // namespace kiln
