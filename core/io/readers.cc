#include "core/io/readers.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/status.h"

namespace kiln {
namespace {

constexpr int64_t kMaxElements = int64_t{1} << 32;

absl::Status Malformed(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

template <typename T>
T LoadLittle(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // x86-64 is little-endian
  return v;
}

// Checks that `dims` are non-negative and their product fits; returns the element count.
absl::StatusOr<int64_t> CountElements(const std::vector<int64_t>& dims, absl::string_view source) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return Malformed(source, "negative dimension");
    if (d != 0 && n > kMaxElements / d) return Malformed(source, "array too large");
    n *= d;
  }
  return n;
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no such file: ", path));
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  return ReadOpenFile(fd, path, max_bytes);
}

absl::StatusOr<std::string> ReadOpenFile(int fd, absl::string_view name, size_t max_bytes) {
  gzFile file = gzdopen(fd, "rb");  // owns fd from here on
  if (file == nullptr) {
    close(fd);
    return absl::ResourceExhaustedError(absl::StrCat("cannot read ", name, ": out of memory"));
  }
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const int n = gzread(file, buffer, sizeof(buffer));
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      return absl::InvalidArgumentError(absl::StrCat("cannot read ", name, ": ", message));
    }
    if (n == 0) break;
    if (out.size() + size_t(n) > max_bytes) {
      gzclose(file);
      return absl::ResourceExhaustedError(
          absl::StrCat(name, " is larger than the limit of ", max_bytes, " bytes"));
    }
    out.append(buffer, n);
  }
  gzclose(file);
  return out;
}

absl::StatusOr<Tensor> ParseIdx(absl::string_view bytes, absl::string_view source) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 4 || p[0] != 0 || p[1] != 0) return Malformed(source, "not an IDX file");
  const int type = p[2], rank = p[3];
  if (rank == 0 || bytes.size() < 4 + 4 * size_t(rank)) {
    return Malformed(source, "truncated IDX header");
  }
  std::vector<int64_t> dims(rank);
  for (int i = 0; i < rank; ++i) dims[i] = BigEndian32(p + 4 + 4 * i);
  KILN_ASSIGN_OR_RETURN(int64_t n, CountElements(dims, source));
  size_t width = 0;
  DType dtype = DType::kFloat32;
  switch (type) {
    case 0x08:
      width = 1;
      dtype = DType::kUInt8;
      break;
    case 0x09:
      width = 1;
      dtype = DType::kInt32;
      break;
    case 0x0B:
      width = 2;
      dtype = DType::kInt32;
      break;
    case 0x0C:
      width = 4;
      dtype = DType::kInt32;
      break;
    case 0x0D:
      width = 4;
      dtype = DType::kFloat32;
      break;
    case 0x0E:
      width = 8;
      dtype = DType::kFloat32;
      break;
    default:
      return Malformed(source, absl::StrCat("unknown IDX data type 0x", absl::Hex(type)));
  }
  const size_t offset = 4 + 4 * size_t(rank);
  if (bytes.size() - offset != size_t(n) * width) {
    return Malformed(source, absl::StrCat("IDX data has ", bytes.size() - offset,
                                          " bytes, the header promises ", size_t(n) * width));
  }
  Tensor out(dtype, Shape(dims));
  const unsigned char* d = p + offset;
  for (int64_t i = 0; i < n; ++i) {
    const unsigned char* e = d + i * width;
    switch (type) {
      case 0x08:
        out.data<uint8_t>()[i] = e[0];
        break;
      case 0x09:
        out.data<int32_t>()[i] = int8_t(e[0]);
        break;
      case 0x0B:
        out.data<int32_t>()[i] = int16_t((e[0] << 8) | e[1]);
        break;
      case 0x0C:
        out.data<int32_t>()[i] = int32_t(BigEndian32(e));
        break;
      case 0x0D: {
        const uint32_t bits = BigEndian32(e);
        std::memcpy(&out.data<float>()[i], &bits, 4);
        break;
      }
      case 0x0E: {
        const uint64_t bits = (uint64_t(BigEndian32(e)) << 32) | BigEndian32(e + 4);
        double v;
        std::memcpy(&v, &bits, 8);
        out.data<float>()[i] = float(v);
        break;
      }
    }
  }
  return out;
}

absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes, absl::string_view source) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != "\x93NUMPY") {
    return Malformed(source, "not an NPY file (no \\x93NUMPY magic)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = LoadLittle<uint16_t>(bytes.data() + 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Malformed(source, "truncated NPY header");
    header_len = LoadLittle<uint32_t>(bytes.data() + 8);
    offset = 12;
  } else {
    return Malformed(source, absl::StrCat("unsupported NPY version ", major));
  }
  if (bytes.size() < offset + header_len) return Malformed(source, "truncated NPY header");
  const absl::string_view header = bytes.substr(offset, header_len);
  auto value_of = [&](absl::string_view key) -> absl::string_view {
    const size_t k = header.find(absl::StrCat("'", key, "'"));
    if (k == absl::string_view::npos) return {};
    size_t colon = header.find(':', k);
    if (colon == absl::string_view::npos) return {};
    absl::string_view rest = absl::StripLeadingAsciiWhitespace(header.substr(colon + 1));
    if (!rest.empty() && rest[0] == '(') return rest.substr(1, rest.find(')') - 1);
    if (!rest.empty() && rest[0] == '\'') return rest.substr(1, rest.find('\'', 1) - 1);
    return rest.substr(0, rest.find_first_of(",}"));
  };
  const absl::string_view descr = value_of("descr");
  if (absl::StripAsciiWhitespace(value_of("fortran_order")) == "True") {
    return Malformed(source, "Fortran-order NPY arrays are not supported; save with C order");
  }
  std::vector<int64_t> dims;
  for (absl::string_view part : absl::StrSplit(value_of("shape"), ',', absl::SkipWhitespace())) {
    int64_t d;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d)) {
      return Malformed(source, "bad shape in NPY header");
    }
    dims.push_back(d);
  }
  KILN_ASSIGN_OR_RETURN(int64_t n, CountElements(dims, source));
  if (descr.size() < 3 || descr[0] == '>') {
    return Malformed(source,
                     absl::StrCat("unsupported NPY dtype '", descr, "' (big-endian or unknown)"));
  }
  const absl::string_view kind = descr.substr(1);
  size_t width = 0;
  DType dtype;
  if (kind == "f4") {
    width = 4;
    dtype = DType::kFloat32;
  } else if (kind == "f8") {
    width = 8;
    dtype = DType::kFloat32;
  } else if (kind == "i1") {
    width = 1;
    dtype = DType::kInt32;
  } else if (kind == "i2") {
    width = 2;
    dtype = DType::kInt32;
  } else if (kind == "i4") {
    width = 4;
    dtype = DType::kInt32;
  } else if (kind == "i8") {
    width = 8;
    dtype = DType::kInt64;
  } else if (kind == "u1" || kind == "b1") {
    width = 1;
    dtype = DType::kUInt8;
  } else
    return Malformed(source, absl::StrCat("unsupported NPY dtype '", descr, "'"));
  const size_t data_offset = offset + header_len;
  if (bytes.size() - data_offset != size_t(n) * width) {
    return Malformed(source, absl::StrCat("NPY data has ", bytes.size() - data_offset,
                                          " bytes, the header promises ", size_t(n) * width));
  }
  Tensor out(dtype, Shape(dims));
  const char* d = bytes.data() + data_offset;
  for (int64_t i = 0; i < n; ++i) {
    const char* e = d + i * width;
    if (kind == "f4")
      out.data<float>()[i] = LoadLittle<float>(e);
    else if (kind == "f8")
      out.data<float>()[i] = float(LoadLittle<double>(e));
    else if (kind == "i1")
      out.data<int32_t>()[i] = LoadLittle<int8_t>(e);
    else if (kind == "i2")
      out.data<int32_t>()[i] = LoadLittle<int16_t>(e);
    else if (kind == "i4")
      out.data<int32_t>()[i] = LoadLittle<int32_t>(e);
    else if (kind == "i8")
      out.data<int64_t>()[i] = LoadLittle<int64_t>(e);
    else
      out.data<uint8_t>()[i] = LoadLittle<uint8_t>(e);
  }
  return out;
}

absl::StatusOr<Tensor> ParseCsv(absl::string_view text, absl::string_view source,
                                std::optional<bool> header) {
  std::vector<float> values;
  int64_t columns = -1, rows = 0, line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
    std::vector<float> row;
    bool numeric = true;
    for (absl::string_view f : fields) {
      float v;
      if (!absl::SimpleAtof(absl::StripAsciiWhitespace(f), &v)) {
        numeric = false;
        break;
      }
      row.push_back(v);
    }
    if (line_number == 1 && (header.value_or(!numeric))) continue;
    if (!numeric) {
      return Malformed(source, absl::StrCat("line ", line_number, " has a non-numeric field"));
    }
    if (columns < 0) columns = int64_t(row.size());
    if (int64_t(row.size()) != columns) {
      return Malformed(source, absl::StrCat("line ", line_number, " has ", row.size(),
                                            " fields, expected ", columns));
    }
    values.insert(values.end(), row.begin(), row.end());
    ++rows;
  }
  if (rows == 0) return Malformed(source, "no data rows");
  Tensor out(DType::kFloat32, Shape{rows, columns});
  std::copy(values.begin(), values.end(), out.data<float>());
  return out;
}

absl::StatusOr<Tensor> ReadArrayFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseArrayFile(bytes, path);
}

absl::StatusOr<Tensor> ParseArrayFile(absl::string_view bytes, absl::string_view name) {
  absl::string_view format = name;
  absl::ConsumeSuffix(&format, ".gz");
  if (absl::EndsWith(format, ".npy")) return ParseNpy(bytes, name);
  if (absl::EndsWith(format, ".csv")) return ParseCsv(bytes, name);
  if (absl::EndsWith(format, ".idx") || absl::EndsWith(format, "-ubyte") ||
      absl::StrContains(format, "-idx")) {
    return ParseIdx(bytes, name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(name,
                   ": unknown format; use a .npy, .csv or IDX (.idx, *-ubyte) file, "
                   "optionally gzip-compressed (.gz)"));
}

}  // namespace kiln
