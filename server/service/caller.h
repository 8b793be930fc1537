// Caller: who makes a request. Transports fill it in; until kiln-server authenticates callers,
// every caller is the anonymous one (empty id). A session belongs to the caller that created
// it, and other callers are told it does not exist.
#ifndef KILN_SERVER_SERVICE_CALLER_H_
#define KILN_SERVER_SERVICE_CALLER_H_

#include <string>

namespace kiln::server {

struct Caller {
  std::string id;  // "" for the anonymous caller
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_CALLER_H_
