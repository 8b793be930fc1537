// The catalogue of what Kiln supports (kiln.v1.Catalogue), built from the options on the API's
// messages and the engine's name tables - the same facts validation reads - so that it lists
// exactly what the engine accepts: every LayerSpec case, every class of the Initializer,
// Regularizer, Constraint and Optimizer oneofs, every activation, loss and metric name.
#ifndef KILN_CORE_CATALOGUE_CATALOGUE_H_
#define KILN_CORE_CATALOGUE_CATALOGUE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kiln/v1/catalogue.pb.h"

namespace kiln {

// The whole catalogue (built once).
const v1::Catalogue& FullCatalogue();

// The entries one identifier names: a class name, a snake_case name, an alias, or an
// activation, loss or metric name. NOT_FOUND at `name` when none does; an empty name gives
// the whole catalogue.
absl::StatusOr<v1::Catalogue> FindInCatalogue(absl::string_view name);

}  // namespace kiln

#endif  // KILN_CORE_CATALOGUE_CATALOGUE_H_
