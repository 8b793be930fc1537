// Connect routes: every method of the given services at POST /<package.Service>/<Method>, by
// the Connect protocol. Unary methods take and answer application/json or application/proto;
// streaming ones (server or client streams) application/connect+json or +proto in envelopes,
// ending with Connect's end-of-stream message. Routes come from the descriptors, so a method
// added to the API is served with no change here. Errors are Connect's error JSON with the
// google.rpc details the RPC gave (the BadRequest field path among them).
#ifndef KILN_SERVER_HTTP_CONNECT_ROUTES_H_
#define KILN_SERVER_HTTP_CONNECT_ROUTES_H_

#include <httplib.h>

#include <memory>
#include <vector>

#include "server/http/gateway.h"

namespace google::protobuf {
class ServiceDescriptor;
}

namespace kiln::server {

void InstallConnectRoutes(const std::vector<const google::protobuf::ServiceDescriptor*>& services,
                          std::shared_ptr<const Gateway> gateway, httplib::Server& server);

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_CONNECT_ROUTES_H_
