// Readers: IDX (plain and gzip), NPY, CSV - valid files and malformed ones, which must give
// INVALID_ARGUMENT, never a crash - and the Fashion-MNIST loader.
#include "core/io/readers.h"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "core/io/builtin_datasets.h"
#include "core/io/npy_writer.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

std::string Idx(unsigned char type, std::vector<uint32_t> dims, const std::string& data) {
  std::string out = {0, 0, char(type), char(dims.size())};
  for (uint32_t d : dims) {
    out += char(d >> 24);
    out += char(d >> 16);
    out += char(d >> 8);
    out += char(d);
  }
  return out + data;
}

std::string Npy(const std::string& descr, const std::string& shape, const std::string& data,
                bool fortran = false) {
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (" +
                       shape + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  return out + header + data;
}

template <typename T>
std::string Bytes(std::vector<T> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(IdxTest, ParsesUint8AndBigEndianFloats) {
  auto t = ParseIdx(Idx(0x08, {2, 3}, std::string("\x01\x02\x03\x04\x05\xff", 6)), "u8");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{2, 3}));
  EXPECT_EQ(t->data<uint8_t>()[5], 255);
  auto f = ParseIdx(Idx(0x0D, {1}, std::string("\x3f\x80\x00\x00", 4)), "f32");  // 1.0f
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->data<float>()[0], 1.0f);
}

TEST(IdxTest, MalformedFilesAreInvalidArgument) {
  for (const std::string& bad :
       {std::string("xy"), Idx(0x08, {2, 3}, "abc"), Idx(0x07, {1}, "a"),
        std::string("\0\0\x08\x02\0\0", 6), Idx(0x08, {0xFFFFFFFF, 0xFFFFFFFF}, "")}) {
    auto t = ParseIdx(bad, "bad.idx");
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << t.status();
  }
}

TEST(NpyTest, ParsesCommonDtypes) {
  auto f4 = ParseNpy(Npy("<f4", "2, 2", Bytes<float>({1, 2, 3, 4})), "a.npy");
  ASSERT_TRUE(f4.ok()) << f4.status();
  EXPECT_EQ(f4->shape(), (Shape{2, 2}));
  EXPECT_EQ(f4->data<float>()[3], 4.0f);
  auto f8 = ParseNpy(Npy("<f8", "3,", Bytes<double>({0.5, 1.5, 2.5})), "b.npy");
  ASSERT_TRUE(f8.ok());
  EXPECT_EQ(f8->dtype(), DType::kFloat32);
  EXPECT_EQ(f8->data<float>()[2], 2.5f);
  auto i8 = ParseNpy(Npy("<i8", "2,", Bytes<int64_t>({7, -3})), "c.npy");
  ASSERT_TRUE(i8.ok());
  EXPECT_EQ(i8->data<int64_t>()[1], -3);
  auto u1 = ParseNpy(Npy("|u1", "4,", "\x01\x02\x03\x04"), "d.npy");
  ASSERT_TRUE(u1.ok());
  EXPECT_EQ(u1->data<uint8_t>()[3], 4);
  auto scalar = ParseNpy(Npy("<f4", "", Bytes<float>({9})), "e.npy");
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(scalar->num_elements(), 1);
}

TEST(NpyTest, WrittenFilesReadBack) {
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{5}, std::vector<int64_t>{2, 3}, std::vector<int64_t>{1, 2, 2, 1}}) {
    std::vector<float> values(Shape(shape).num_elements());
    for (size_t i = 0; i < values.size(); ++i) values[i] = 0.5f * i - 1;
    const std::string bytes = FormatNpy(DType::kFloat32, shape, Bytes<float>(values));
    EXPECT_EQ(bytes.find('\n') + 1, bytes.size() - values.size() * sizeof(float));
    EXPECT_EQ((bytes.size() - values.size() * sizeof(float)) % 64, 0u);  // numpy's alignment
    auto t = ParseNpy(bytes, "written.npy");
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->shape(), Shape(shape));
    EXPECT_EQ(std::vector<float>(t->data<float>(), t->data<float>() + values.size()), values);
  }
}

template <typename T>
void ExpectIntegersReadBack() {
  const std::vector<T> values = {0, 1, 7, 200};
  auto t = ParseNpy(FormatNpy(DTypeOf<T>(), {2, 2}, Bytes<T>(values)), "ints.npy");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DTypeOf<T>());
  EXPECT_EQ(t->shape(), Shape({2, 2}));
  const T* data = t->template data<T>();
  EXPECT_EQ(std::vector<T>(data, data + values.size()), values);
}

TEST(NpyTest, WrittenIntegerFilesKeepTheirDType) {
  ExpectIntegersReadBack<int32_t>();
  ExpectIntegersReadBack<int64_t>();
  ExpectIntegersReadBack<uint8_t>();
}

TEST(NpyTest, RejectsWhatItCannotRead) {
  EXPECT_FALSE(ParseNpy("not numpy", "x").ok());
  EXPECT_FALSE(ParseNpy(Npy(">f4", "1,", Bytes<float>({1})), "x").ok());
  EXPECT_FALSE(ParseNpy(Npy("<f4", "2, 2", Bytes<float>({1, 2, 3, 4}), true), "x").ok());
  EXPECT_FALSE(ParseNpy(Npy("<c8", "1,", Bytes<float>({1, 2})), "x").ok());
  EXPECT_FALSE(ParseNpy(Npy("<f4", "3,", Bytes<float>({1, 2})), "x").ok());
  EXPECT_FALSE(ParseNpy(Npy("<f4", "a, b", ""), "x").ok());
}

TEST(NpyTest, RandomBytesNeverCrash) {
  std::mt19937 gen(7);
  const std::string valid = Npy("<f4", "2, 3", Bytes<float>({1, 2, 3, 4, 5, 6}));
  for (int i = 0; i < 3000; ++i) {
    std::string mutated = valid;
    const int edits = 1 + int(gen() % 4);
    for (int e = 0; e < edits; ++e) mutated[gen() % mutated.size()] = char(gen());
    if (gen() % 5 == 0) mutated.resize(gen() % mutated.size());
    (void)ParseNpy(mutated, "fuzz");
    (void)ParseIdx(mutated, "fuzz");
    (void)ParseCsv(mutated, "fuzz");
  }
}

TEST(CsvTest, HeaderDetectionAndShapes) {
  auto t = ParseCsv("a,b,label\n1,2,0\n3.5,4,1\n", "t.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{2, 3}));
  EXPECT_EQ(t->data<float>()[3], 3.5f);
  auto no_header = ParseCsv("1,2\n3,4\n\n", "t.csv");
  ASSERT_TRUE(no_header.ok());
  EXPECT_EQ(no_header->shape(), (Shape{2, 2}));
  EXPECT_EQ(ParseCsv("1,2\n3\n", "t.csv").status().message(),
            "t.csv: line 2 has 1 fields, expected 2");
  EXPECT_FALSE(ParseCsv("1,x\n", "t.csv", false).ok());
  EXPECT_FALSE(ParseCsv("", "t.csv").ok());
}

TEST(ReadFileTest, GzipIsTransparentAndMissingIsNotFound) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "kiln_readers_test.csv.gz").string();
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string text = "1,2,3\n4,5,6\n";
  gzwrite(f, text.data(), unsigned(text.size()));
  gzclose(f);
  auto t = ReadArrayFile(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{2, 3}));
  std::remove(path.c_str());
  EXPECT_EQ(ReadFile("/nonexistent/kiln").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadArrayFile("/etc/hostname").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FashionMnistTest, LoadsTheDebianPackage) {
  auto test = LoadFashionMnist("test");
  if (absl::IsNotFound(test.status())) GTEST_SKIP() << test.status();
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->x[0].shape(), (Shape{10000, 28, 28, 1}));
  EXPECT_EQ(test->y.shape(), (Shape{10000}));
  std::vector<int> counts(10, 0);
  for (float label : test->y.values<float>()) counts[int(label)]++;
  for (int c : counts) EXPECT_EQ(c, 1000);  // the test split is balanced
  float max = 0;
  for (float v : test->x[0].values<float>()) max = std::max(max, v);
  EXPECT_LE(max, 1.0f);
  EXPECT_GT(max, 0.9f);
  EXPECT_FALSE(LoadFashionMnist("validation").ok());
}

}  // namespace
}  // namespace kiln
