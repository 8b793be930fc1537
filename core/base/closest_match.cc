#include "core/base/closest_match.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace kiln {
namespace {

// The optimal string alignment distance, so that "fti" is one edit from "fit".
size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::optional<std::string> ClosestMatch(absl::string_view word,
                                        const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  if (word.empty()) return best;
  // A typo: a third of the word at most (one edit for short words), and not all of it.
  size_t best_distance = std::min(std::max<size_t>(1, word.size() / 3), word.size() - 1) + 1;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  if (best.has_value() || word.size() < 3) return best;
  // A word cut short: the shortest candidate it begins, case aside.
  for (const std::string& c : candidates) {
    if (c.size() > word.size() && absl::StartsWithIgnoreCase(c, word) &&
        (!best.has_value() || c.size() < best->size())) {
      best = c;
    }
  }
  return best;
}

}  // namespace kiln
