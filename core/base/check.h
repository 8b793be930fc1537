// KILN_CHECK: aborts with a message when an internal invariant is broken. It exists because the
// Abseil release Kiln builds against (20220623) predates absl/log. It is for programming errors
// only: anything a user can send is validated and answered with an absl::Status instead.
#ifndef KILN_CORE_BASE_CHECK_H_
#define KILN_CORE_BASE_CHECK_H_

#include <sstream>

namespace kiln::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Turns the stream expression into void so it can sit in the ternary of KILN_CHECK.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace kiln::internal

#define KILN_CHECK(condition)                 \
  (condition) ? (void)0                       \
              : ::kiln::internal::Voidify() & \
                    ::kiln::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define KILN_CHECK_EQ(a, b) KILN_CHECK((a) == (b)) << (a) << " vs " << (b) << " "

#ifdef NDEBUG
#define KILN_DCHECK(condition) \
  while (false) KILN_CHECK(condition)
#else
#define KILN_DCHECK(condition) KILN_CHECK(condition)
#endif

#endif  // KILN_CORE_BASE_CHECK_H_
