#include "server/store/tensor_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/io/tensor_proto.h"
#include "server/store/failpoint.h"
#include "server/store/io_error.h"
#include "server/store/records.pb.h"

namespace kiln::store {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'T', 'F', '0', '1'};
constexpr size_t kPrefix = sizeof(kMagic) + 8 + 4;  // magic, header length, header CRC
constexpr uint64_t kAlign = 64;

uint32_t Crc32(const void* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(0, static_cast<const Bytef*>(data), size));
}

uint64_t AlignUp(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

void PutLittleEndian(char* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>(value >> (8 * i));
}

uint64_t GetLittleEndian(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= uint64_t(static_cast<unsigned char>(in[i])) << (8 * i);
  return value;
}

// The header with offsets (and, `with_crcs`, checksums) for `tensors`, and the size of the
// whole file, which does not depend on the checksums.
std::pair<TensorFileHeader, uint64_t> Layout(absl::Span<const NamedTensor> tensors,
                                             bool with_crcs) {
  TensorFileHeader header;
  for (const NamedTensor& t : tensors) {
    TensorFileHeader::Entry* e = header.add_entries();
    e->set_name(t.name);
    *e->mutable_spec() = SpecOf(t.tensor);
    e->set_size(t.tensor.byte_size());
    // Placeholders at their widest varints: the data starts after the largest header these
    // entries can have, so the real one always fits in front of it.
    e->set_offset(UINT64_MAX);
    e->set_crc32(UINT32_MAX);
  }
  uint64_t offset = AlignUp(kPrefix + header.ByteSizeLong());
  const uint64_t data_start = offset;
  for (int i = 0; i < header.entries_size(); ++i) {
    TensorFileHeader::Entry& e = *header.mutable_entries(i);
    e.set_offset(offset);
    e.set_crc32(with_crcs ? Crc32(tensors[i].tensor.raw_data(), tensors[i].tensor.byte_size()) : 0);
    offset = AlignUp(offset + e.size());
  }
  const uint64_t end = header.entries().empty() ? data_start
                                                : header.entries().rbegin()->offset() +
                                                      header.entries().rbegin()->size();
  return {std::move(header), end};
}

absl::Status WriteAll(int fd, const void* data, size_t size, uint64_t offset,
                      const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, p, std::min<size_t>(size, size_t{1} << 30), off_t(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(errno, absl::StrCat("writing ", path));
    }
    p += n;
    size -= size_t(n);
    offset += uint64_t(n);
  }
  return absl::OkStatus();
}

absl::Status ReadAll(int fd, void* data, size_t size, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::pread(fd, p, std::min<size_t>(size, size_t{1} << 30), off_t(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Damaged(absl::StrCat("tensor file ", path), std::strerror(errno));
    }
    if (n == 0) return Damaged(absl::StrCat("tensor file ", path), "truncated");
    p += n;
    size -= size_t(n);
    offset += uint64_t(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(errno, absl::StrCat("opening ", dir));
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  if (::fsync(fd) != 0) return IoError(errno, absl::StrCat("syncing ", dir));
  return absl::OkStatus();
}

int64_t TensorFileSize(absl::Span<const NamedTensor> tensors) {
  return int64_t(Layout(tensors, /*with_crcs=*/false).second);
}

absl::Status WriteTensorFile(const std::string& path, absl::Span<const NamedTensor> tensors,
                             absl::string_view kind) {
  const std::string temp = absl::StrCat(path, ".tmp");
  auto [header, end] = Layout(tensors, /*with_crcs=*/true);
  const std::string header_bytes = header.SerializeAsString();
  char prefix[kPrefix];
  std::memcpy(prefix, kMagic, sizeof(kMagic));
  PutLittleEndian(prefix + 8, header_bytes.size(), 8);
  PutLittleEndian(prefix + 16, Crc32(header_bytes.data(), header_bytes.size()), 4);

  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(errno, absl::StrCat("creating ", temp));
  bool keep = false;
  absl::Cleanup cleanup = [&] {
    if (fd >= 0) ::close(fd);
    if (!keep) ::unlink(temp.c_str());
  };
  KILN_RETURN_IF_ERROR(Failpoint(absl::StrCat(kind, ".write")));
  KILN_RETURN_IF_ERROR(WriteAll(fd, prefix, kPrefix, 0, temp));
  KILN_RETURN_IF_ERROR(WriteAll(fd, header_bytes.data(), header_bytes.size(), kPrefix, temp));
  for (int i = 0; i < header.entries_size(); ++i) {
    if (i == header.entries_size() / 2) {
      KILN_RETURN_IF_ERROR(Failpoint(absl::StrCat(kind, ".half_written")));
    }
    const Tensor& t = tensors[i].tensor;
    KILN_RETURN_IF_ERROR(
        WriteAll(fd, t.raw_data(), t.byte_size(), header.entries(i).offset(), temp));
  }
  if (::ftruncate(fd, off_t(end)) != 0) return IoError(errno, absl::StrCat("writing ", temp));
  if (::fdatasync(fd) != 0) return IoError(errno, absl::StrCat("syncing ", temp));
  KILN_RETURN_IF_ERROR(Failpoint(absl::StrCat(kind, ".after_temp_write")));
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return IoError(errno, absl::StrCat("renaming ", temp));
  }
  keep = true;  // renamed: nothing left at `temp`
  KILN_RETURN_IF_ERROR(Failpoint(absl::StrCat(kind, ".after_rename")));
  absl::Status synced = SyncDirectory(std::filesystem::path(path).parent_path().string());
  if (!synced.ok()) {
    ::unlink(path.c_str());
    return synced;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NamedTensor>> ReadTensorFile(const std::string& path) {
  const std::string what = absl::StrCat("tensor file ", path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Damaged(what, errno == ENOENT ? "missing" : std::strerror(errno));
  }
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  struct stat st;
  if (::fstat(fd, &st) != 0) return Damaged(what, std::strerror(errno));
  const uint64_t file_size = uint64_t(st.st_size);
  char prefix[kPrefix];
  if (file_size < kPrefix) return Damaged(what, "truncated");
  KILN_RETURN_IF_ERROR(ReadAll(fd, prefix, kPrefix, 0, path));
  if (std::memcmp(prefix, kMagic, sizeof(kMagic)) != 0) return Damaged(what, "not a tensor file");
  const uint64_t header_size = GetLittleEndian(prefix + 8, 8);
  if (header_size > file_size - kPrefix) return Damaged(what, "truncated");
  std::string header_bytes(header_size, '\0');
  KILN_RETURN_IF_ERROR(ReadAll(fd, header_bytes.data(), header_size, kPrefix, path));
  TensorFileHeader header;
  if (Crc32(header_bytes.data(), header_bytes.size()) != GetLittleEndian(prefix + 16, 4) ||
      !header.ParseFromString(header_bytes)) {
    return Damaged(what, "its header fails its checksum");
  }
  std::vector<NamedTensor> tensors;
  for (const TensorFileHeader::Entry& e : header.entries()) {
    absl::StatusOr<DType> dtype = FromProtoDType(e.spec().dtype(), "spec");
    std::vector<int64_t> dims(e.spec().shape().begin(), e.spec().shape().end());
    const std::optional<int64_t> n = CheckedProduct(dims);
    if (!dtype.ok() || !n.has_value() || uint64_t(*n) * SizeOf(*dtype) != e.size()) {
      return Damaged(what, absl::StrCat("entry \"", e.name(), "\" has an invalid shape"));
    }
    if (e.offset() > file_size || e.size() > file_size - e.offset()) {
      return Damaged(what, "truncated");
    }
    Tensor t(*dtype, Shape(dims));
    KILN_RETURN_IF_ERROR(ReadAll(fd, t.raw_data(), t.byte_size(), e.offset(), path));
    if (Crc32(t.raw_data(), t.byte_size()) != e.crc32()) {
      return Damaged(what, absl::StrCat("\"", e.name(), "\" fails its checksum"));
    }
    tensors.push_back(NamedTensor{e.name(), std::move(t)});
  }
  return tensors;
}

}  // namespace kiln::store
