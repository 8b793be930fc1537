#include "core/saving/keras_archive.h"

#include <zip.h>

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

absl::StatusOr<std::string> ReadMember(zip_t* zip, const char* name, int64_t max_bytes) {
  const zip_int64_t index = zip_name_locate(zip, name, 0);
  if (index < 0) {
    return FieldError(name, absl::StrCat("the archive has no ", name,
                                         " (a .keras file holds config.json, metadata.json and "
                                         "model.weights.h5)"));
  }
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat_index(zip, zip_uint64_t(index), 0, &stat) < 0 || !(stat.valid & ZIP_STAT_SIZE)) {
    return FieldError(name, "the archive's directory is damaged");
  }
  if (stat.size > zip_uint64_t(max_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        name, " is ", stat.size, " bytes uncompressed, more than the ", max_bytes, " allowed"));
  }
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(
      zip_fopen_index(zip, zip_uint64_t(index), 0), zip_fclose);
  if (file == nullptr) return FieldError(name, absl::StrCat("libzip: ", zip_strerror(zip)));
  std::string data(stat.size, '\0');
  zip_uint64_t done = 0;
  while (done < stat.size) {
    const zip_int64_t n = zip_fread(file.get(), data.data() + done, stat.size - done);
    if (n <= 0) return FieldError(name, "the member is damaged (it ends early or fails its CRC)");
    done += zip_uint64_t(n);
  }
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

absl::StatusOr<KerasArchive> ReadKerasArchive(absl::string_view bytes, int64_t max_member_bytes) {
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
  KerasArchive archive;
  KILN_ASSIGN_OR_RETURN(archive.config_json, ReadMember(zip, "config.json", max_member_bytes));
  KILN_ASSIGN_OR_RETURN(archive.weights_h5, ReadMember(zip, "model.weights.h5", max_member_bytes));
  if (zip_name_locate(zip, "metadata.json", 0) >= 0) {
    KILN_ASSIGN_OR_RETURN(archive.metadata_json,
                          ReadMember(zip, "metadata.json", max_member_bytes));
  }
  return archive;
}

}  // namespace kiln
