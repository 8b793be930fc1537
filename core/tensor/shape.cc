#include "core/tensor/shape.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kiln {

std::optional<int64_t> CheckedProduct(const std::vector<int64_t>& dims, int64_t limit) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d <= 0 || n > limit / d) return std::nullopt;
    n *= d;
  }
  return n;
}

int64_t Shape::num_elements() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

bool Shape::is_fully_defined() const {
  for (int64_t d : dims_) {
    if (d < 0) return false;
  }
  return true;
}

Shape Shape::WithBatch(int64_t batch) const {
  Shape out = *this;
  if (!out.dims_.empty()) out.dims_[0] = batch;
  return out;
}

Shape Shape::WithoutBatch() const {
  if (dims_.empty()) return Shape();
  return Shape(std::vector<int64_t>(dims_.begin() + 1, dims_.end()));
}

std::string Shape::ToString() const {
  std::string body = absl::StrJoin(dims_, ", ", [](std::string* out, int64_t d) {
    absl::StrAppend(out, d < 0 ? "None" : absl::StrCat(d));
  });
  return dims_.size() == 1 ? absl::StrCat("(", body, ",)") : absl::StrCat("(", body, ")");
}

}  // namespace kiln
