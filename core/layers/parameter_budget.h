// ScopedParameterBudget: how many weight elements the layers built on this thread may still
// create. Layer::AddWeight takes from it before it allocates, so a request for a huge layer
// (Dense(2**25) on a wide input: 48 bytes asking for gigabytes) is refused from its shapes,
// before a byte is allocated or initialised. The server installs one per request with its
// --max_model_parameters; outside any scope (tests, restore) weights are not counted.
#ifndef KILN_CORE_LAYERS_PARAMETER_BUDGET_H_
#define KILN_CORE_LAYERS_PARAMETER_BUDGET_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kiln {

class ScopedParameterBudget {
 public:
  // `limit_flag` names the setting in messages ("--max_model_parameters").
  ScopedParameterBudget(int64_t limit, std::string limit_flag);
  ~ScopedParameterBudget();
  ScopedParameterBudget(const ScopedParameterBudget&) = delete;
  ScopedParameterBudget& operator=(const ScopedParameterBudget&) = delete;

  // Takes `elements` for `what` ("weight \"kernel\" of layer \"dense\""), or RESOURCE_EXHAUSTED
  // naming the limit when they do not fit (taking nothing).
  static absl::Status Take(int64_t elements, absl::string_view what);

 private:
  int64_t left_;
  const std::string limit_flag_;
  const int64_t limit_;
  ScopedParameterBudget* const previous_;
};

}  // namespace kiln

#endif  // KILN_CORE_LAYERS_PARAMETER_BUDGET_H_
