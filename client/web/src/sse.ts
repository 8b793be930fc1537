// A job's events over Server-Sent Events: GET /v1/jobs/{job}/events on the HTTP door. An
// EventSource reconnects by itself with Last-Event-ID (the event's sequence), so a dropped
// connection loses nothing; it cannot send headers, so the token goes in the query.
import { fromJson } from "@bufbuild/protobuf";
import { apiBaseUrl, getToken } from "./client";
import { JobEventSchema, type JobEvent } from "./gen/kiln/v1/jobs_pb";

export interface JobWatch {
  close(): void;
}

export interface WatchHandlers {
  onEvent(e: JobEvent): void;
  onEnd(): void; // the job ended and the server closed the stream
  onError(message: string): void;
}

export function jobEventsUrl(sessionId: string, jobId: string, base = apiBaseUrl()): string {
  const q = new URLSearchParams({ session_id: sessionId });
  const token = getToken();
  if (token) q.set("access_token", token);
  return `${base}/v1/jobs/${encodeURIComponent(jobId)}/events?${q}`;
}

export function watchJob(sessionId: string, jobId: string, h: WatchHandlers): JobWatch {
  const source = new EventSource(jobEventsUrl(sessionId, jobId));
  let last = 0n;
  let closed = false;
  const close = () => {
    closed = true;
    source.close();
  };
  source.onmessage = (m: MessageEvent<string>) => {
    let event: JobEvent;
    try {
      event = fromJson(JobEventSchema, JSON.parse(m.data), { ignoreUnknownFields: true });
    } catch (e) {
      h.onError(`unreadable job event: ${String(e)}`);
      return;
    }
    // Sequences are gapless and ordered; a replay after a reconnect may repeat some.
    if (event.sequence <= last) return;
    last = event.sequence;
    h.onEvent(event);
  };
  // Without close() here the EventSource would reconnect to a finished job forever.
  source.addEventListener("end", () => {
    close();
    h.onEnd();
  });
  // The watch itself failed (the error's JSON in data): reconnecting would fail again.
  source.addEventListener("failed", (m) => {
    close();
    let message = "the job's event stream failed";
    try {
      message = (JSON.parse((m as MessageEvent<string>).data) as { message?: string }).message ?? message;
    } catch {
      // not JSON: keep the general message
    }
    h.onError(message);
  });
  source.onerror = () => {
    // CONNECTING: it is reconnecting by itself. CLOSED: the server refused the stream (an HTTP
    // error status or a wrong content type), which EventSource does not retry.
    if (!closed && source.readyState === EventSource.CLOSED) h.onError("the job's event stream was refused");
  };
  return { close };
}
