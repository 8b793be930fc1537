// Job events as Server-Sent Events: GET /v1/jobs/{job}/events?session_id=S streams the job's
// events (JobService.WatchJob) as `id: <sequence>` / `data: <JobEvent JSON>` messages, a
// `: keepalive` comment after each quiet interval, and `event: end` once the job has ended (a
// client closes its EventSource then; otherwise it would reconnect). A reconnecting
// EventSource sends Last-Event-ID, and the stream resumes after that sequence number, so no
// event is lost. EventSource cannot send headers: `access_token=T` in the URL stands for
// `Authorization: Bearer T`. Errors before the stream (unknown job, no token) are Connect's
// error JSON with its HTTP status, which makes an EventSource stop; errors during it are an
// `event: failed` message with that JSON.
#ifndef KILN_SERVER_HTTP_JOB_EVENTS_H_
#define KILN_SERVER_HTTP_JOB_EVENTS_H_

#include <httplib.h>

#include <memory>

#include "server/http/gateway.h"

namespace kiln::server {

void InstallJobEventRoutes(std::shared_ptr<const Gateway> gateway, httplib::Server& server);

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_JOB_EVENTS_H_
