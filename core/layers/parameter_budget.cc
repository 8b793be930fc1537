#include "core/layers/parameter_budget.h"

#include "absl/strings/str_cat.h"

namespace kiln {
namespace {

thread_local ScopedParameterBudget* current = nullptr;

}  // namespace

ScopedParameterBudget::ScopedParameterBudget(int64_t limit, std::string limit_flag)
    : left_(limit), limit_flag_(std::move(limit_flag)), limit_(limit), previous_(current) {
  current = this;
}

ScopedParameterBudget::~ScopedParameterBudget() { current = previous_; }

absl::Status ScopedParameterBudget::Take(int64_t elements, absl::string_view what) {
  ScopedParameterBudget* budget = current;
  if (budget == nullptr) return absl::OkStatus();
  if (elements > budget->left_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, " would have ", elements, " parameters, more than the ", budget->left_,
        " left of the ", budget->limit_, " a model may have (", budget->limit_flag_, ")"));
  }
  budget->left_ -= elements;
  return absl::OkStatus();
}

}  // namespace kiln
