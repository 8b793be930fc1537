// ClosestMatch: the "did you mean" of every error that names a word the user got wrong - a CLI
// command or flag, a JSON field, a catalogue name. One rule everywhere: the candidate fewest
// edits away (insert, delete, replace, swap two neighbours), when that is few enough to be a
// likely typo; else, for a word that begins a candidate ("depthwise" of "depthwise_conv2d"),
// the shortest such candidate.
#ifndef KILN_CORE_BASE_CLOSEST_MATCH_H_
#define KILN_CORE_BASE_CLOSEST_MATCH_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace kiln {

// The candidate closest to `word`, if one is close enough to be what was meant.
std::optional<std::string> ClosestMatch(absl::string_view word,
                                        const std::vector<std::string>& candidates);

}  // namespace kiln

#endif  // KILN_CORE_BASE_CLOSEST_MATCH_H_
