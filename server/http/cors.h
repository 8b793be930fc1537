// CORS for the HTTP door: pages from the allowed origins (--http_cors_origins; "*" for any)
// may call the API with fetch and EventSource. Preflights (OPTIONS) from them are answered
// with the methods and headers Connect and Kiln use; from other origins they are refused (403),
// and other origins' responses carry no CORS headers, so their browsers withhold them. Bearer
// tokens travel in the Authorization header, never cookies, so credentials are not allowed.
#ifndef KILN_SERVER_HTTP_CORS_H_
#define KILN_SERVER_HTTP_CORS_H_

#include <httplib.h>

#include <string>
#include <vector>

namespace kiln::server {

void InstallCors(std::vector<std::string> allowed_origins, httplib::Server& server);

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_CORS_H_
