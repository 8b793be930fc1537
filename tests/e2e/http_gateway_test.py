"""End-to-end: the HTTP door of a real kiln-server with plain HTTP, as a browser or curl uses
it. Every method of every service answers by the Connect protocol; a model is defined,
compiled and trained over it; job events stream as Server-Sent Events, resume after
Last-Event-ID and stay alive while quiet; server streams come in Connect's envelopes; errors are
Connect's JSON with their HTTP status and the BadRequest field path; CORS preflights; and with
tokens, calls and event streams need them (EventSource's in the URL)."""
import base64
import http.client
import json
import os
import re
import signal
import struct
import tempfile
import time
import unittest

from kiln.v1 import service_pb2
from kiln_e2e import MODEL, KilnServer, ServerTestCase, make_data
from security_test import token_line

ORIGIN = "http://app.example"


def http_port(server):
    deadline = time.time() + 30
    while time.time() < deadline:
        match = re.search(r"HTTP on port (\d+):", server.log())
        if match:
            return int(match.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no HTTP port in the log:\n{server.log()}")


def envelope(message: dict) -> bytes:
    payload = json.dumps(message).encode()
    return struct.pack(">BI", 0, len(payload)) + payload


def envelopes(body: bytes):
    """(flags, parsed JSON) of each message of a Connect stream body."""
    out, at = [], 0
    while at < len(body):
        flags, size = struct.unpack(">BI", body[at:at + 5])
        out.append((flags, json.loads(body[at + 5:at + 5 + size])))
        at += 5 + size
    return out


class Door:
    """Plain HTTP calls to one server's door."""

    def __init__(self, port, token=None):
        self.port, self.token = port, token

    def request(self, method, path, body=b"", headers=None, timeout=60):
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response, connection

    def call(self, service, method, message=None, headers=None):
        """A unary call with JSON: (HTTP status, parsed body)."""
        response, connection = self.request(
            "POST", f"/kiln.v1.{service}/{method}", json.dumps(message or {}).encode(),
            {"Content-Type": "application/json", **(headers or {})})
        body = response.read()
        connection.close()
        return response.status, json.loads(body)

    def ok(self, service, method, message=None):
        status, body = self.call(service, method, message)
        assert status == 200, f"{service}/{method}: {status} {body}"
        return body

    def stream(self, service, method, message):
        """A server-streaming call: (HTTP status, [(flags, message)])."""
        response, connection = self.request(
            "POST", f"/kiln.v1.{service}/{method}", envelope(message),
            {"Content-Type": "application/connect+json"})
        body = response.read()
        connection.close()
        return response.status, envelopes(body)

    def events(self, session, job, headers=None, query="", until_end=True, max_lines=100000):
        """The lines of GET /v1/jobs/{job}/events until `event: end` (or the stream closes):
        (HTTP status, lines)."""
        response, connection = self.request(
            "GET", f"/v1/jobs/{job}/events?session_id={session}{query}", headers=headers)
        lines = []
        if response.status == 200:
            for _ in range(max_lines):
                line = response.fp.readline()
                if not line:
                    break
                lines.append(line.decode().rstrip("\n"))
                if until_end and lines[-1] == "event: end":
                    break
                if not until_end and lines[-1] == ": keepalive":
                    break
        else:
            lines = [response.read().decode()]
        connection.close()
        return response.status, lines


def event_ids(lines):
    return [int(line[4:]) for line in lines if line.startswith("id: ")]


def event_data(lines):
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {\"")]


def inline_data():
    x, y = make_data(64)
    return {"inline": {
        "x": [{"dtype": "FLOAT32", "shape": list(x.shape),
               "data": base64.b64encode(x.tobytes()).decode()}],
        "y": {"dtype": "INT32", "shape": list(y.shape),
              "data": base64.b64encode(y.tobytes()).decode()}}}


class HttpGatewayTest(ServerTestCase):
    server_flags = ("--http_listen=127.0.0.1:0", "--http_keepalive=0.2s",
                    f"--http_cors_origins={ORIGIN}", "--max_concurrent_jobs=1",
                    "--worker_threads=1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.door = Door(http_port(cls.server))

    def compiled_session(self):
        session = self.door.ok("SessionService", "CreateSession", {"name": "http"})["id"]
        self.door.ok("ModelService", "DefineModel", {"sessionId": session, "definition": MODEL})
        self.door.ok("ModelService", "Compile", {
            "sessionId": session, "model": "tiny",
            "config": {"optimizer": {"adam": {"learning_rate": 0.01}},
                       "loss": {"name": "sparse_categorical_crossentropy"},
                       "metrics": ["accuracy"]}})
        return session

    def fit(self, session, epochs):
        return self.door.ok("JobService", "StartFit", {
            "sessionId": session, "model": "tiny", "data": inline_data(),
            "config": {"epochs": epochs, "batchSize": 16, "validationSplit": 0.25}})["id"]

    def test_every_method_of_every_service_answers(self):
        methods = 0
        for service in service_pb2.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods += 1
                streaming = method.client_streaming or method.server_streaming
                if streaming:
                    status, messages = self.door.stream(service.name, method.name, {})
                    self.assertEqual(status, 200, method.full_name)
                    self.assertEqual(messages[-1][0], 2, method.full_name)  # end of stream
                    error = messages[-1][1].get("error", {})
                else:
                    status, body = self.door.call(service.name, method.name, {})
                    error = body if status != 200 else {}
                # Each answered for itself: an empty request is refused by the method (or,
                # for CreateSession and the catalogue, served), never left unrouted.
                self.assertNotEqual(error.get("code"), "unimplemented", method.full_name)
        self.assertGreater(methods, 30)

    def test_a_model_trains_with_live_events_that_resume(self):
        session = self.compiled_session()
        job = self.fit(session, epochs=2)
        status, lines = self.door.events(session, job)
        self.assertEqual(status, 200)
        self.assertEqual(lines[-1], "event: end")
        ids = event_ids(lines)
        self.assertEqual(ids, list(range(1, len(ids) + 1)))
        events = event_data(lines)
        self.assertTrue(any("batchEnd" in e for e in events))
        self.assertEqual(sum("epochEnd" in e for e in events), 2)
        finished = [e["finished"] for e in events if "finished" in e]
        self.assertEqual(finished[0]["state"], "SUCCEEDED")
        logged = {m["name"] for e in events if "epochEnd" in e for m in e["epochEnd"]["logs"]}
        self.assertLessEqual({"loss", "accuracy", "val_loss", "val_accuracy"}, logged)

        # An EventSource that reconnects sends the last id it saw and misses nothing.
        status, resumed = self.door.events(session, job, headers={"Last-Event-ID": "3"})
        self.assertEqual(event_ids(resumed), ids[3:])
        # The same events by Connect's server streaming.
        status, messages = self.door.stream("JobService", "WatchJob",
                                            {"sessionId": session, "jobId": job,
                                             "fromSequence": 3})
        self.assertEqual(status, 200)
        self.assertEqual([int(m["sequence"]) for _, m in messages[:-1]], ids[3:])
        self.assertEqual(messages[-1], (2, {}))

    def test_a_quiet_event_stream_is_kept_alive(self):
        session = self.compiled_session()
        running = self.fit(session, epochs=200)
        queued = self.fit(session, epochs=1)  # waits: one job at a time
        try:
            status, lines = self.door.events(session, queued, until_end=False, max_lines=50)
            self.assertEqual(status, 200)
            self.assertEqual(lines[-1], ": keepalive")
        finally:
            for job in (queued, running):
                self.door.ok("JobService", "CancelJob", {"sessionId": session, "jobId": job})
        status, lines = self.door.events(session, running)
        self.assertEqual(event_data(lines)[-1]["finished"]["state"], "CANCELLED")

    def test_errors_are_connect_json_with_the_field_path(self):
        session = self.door.ok("SessionService", "CreateSession", {})["id"]
        status, error = self.door.call("ModelService", "AddLayer", {
            "sessionId": session, "spec": {"dense": {"units": -1}}})
        self.assertEqual((status, error["code"]), (400, "invalid_argument"))
        self.assertIn("Received: units=-1", error["message"])
        self.assertEqual(error["details"][0]["type"], "google.rpc.BadRequest")
        self.assertEqual(error["details"][0]["debug"]["fieldViolations"][0]["field"],
                         "spec.dense.units")

        status, error = self.door.call("SessionService", "GetSession", {"sessionId": "s-none"})
        self.assertEqual((status, error["code"]), (404, "not_found"))

        self.door.ok("ModelService", "DefineModel", {"sessionId": session, "definition": MODEL})
        status, error = self.door.call("JobService", "StartFit", {
            "sessionId": session, "model": "tiny", "data": inline_data()})
        self.assertEqual((status, error["code"]), (400, "failed_precondition"))

        status, error = self.door.call("ModelService", "Teleport", {})
        self.assertEqual((status, error["code"]), (404, "unimplemented"))

        status, error = self.door.call("SessionService", "CreateSession", {"ttl": 5})
        self.assertEqual((status, error["code"]), (400, "invalid_argument"))

        status, events = self.door.events(session, "j-none")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(events[0])["code"], "not_found")

        # An id echoed in a message is cut short, never inside a character.
        status, error = self.door.call("SessionService", "GetSession",
                                       {"sessionId": "a" * 63 + "\u00e9" * 3})
        self.assertEqual((status, error["code"]), (404, "not_found"))
        self.assertIn("a" * 63 + "...", error["message"])

    def test_a_page_of_another_name_cannot_reach_an_unauthenticated_loopback_door(self):
        status, error = self.door.call("SessionService", "ListSessions",
                                       headers={"Host": "attacker.example"})
        self.assertEqual((status, error["code"]), (403, "permission_denied"))

    def test_export_streams_the_file(self):
        session = self.compiled_session()
        status, messages = self.door.stream("ModelService", "ExportModel",
                                            {"sessionId": session, "model": "tiny",
                                             "format": "KERAS_FORMAT_JSON"})
        self.assertEqual(status, 200)
        self.assertEqual(messages[-1], (2, {}))
        data = b"".join(base64.b64decode(m["data"]) for _, m in messages[:-1])
        self.assertEqual(json.loads(data)["class_name"], "Functional")

    def test_cors_preflight_allows_the_configured_origin(self):
        response, connection = self.door.request("OPTIONS", "/kiln.v1.ModelService/AddLayer",
                                                 headers={"Origin": ORIGIN,
                                                          "Access-Control-Request-Method": "POST"})
        response.read()
        connection.close()
        self.assertEqual(response.status, 204)
        self.assertEqual(response.getheader("Access-Control-Allow-Origin"), ORIGIN)
        self.assertIn("Authorization", response.getheader("Access-Control-Allow-Headers"))
        response, connection = self.door.request("OPTIONS", "/kiln.v1.ModelService/AddLayer",
                                                 headers={"Origin": "http://elsewhere.example",
                                                          "Access-Control-Request-Method": "POST"})
        response.read()
        connection.close()
        self.assertEqual(response.status, 403)


class HttpGatewayShutdownTest(unittest.TestCase):
    """SIGTERM while browsers watch a fit and keep calling: the event stream gets the job's
    last event (INTERRUPTED), calls in flight finish, later ones are refused, and the server
    exits 0."""

    def test_calls_during_the_drain_are_answered_and_the_server_exits_cleanly(self):
        server = KilnServer("--http_listen=127.0.0.1:0", "--worker_threads=1",
                            "--shutdown_grace=5s").start()
        try:
            door = Door(http_port(server))
            session = door.ok("SessionService", "CreateSession")["id"]
            door.ok("ModelService", "DefineModel", {"sessionId": session, "definition": MODEL})
            door.ok("ModelService", "Compile", {
                "sessionId": session, "model": "tiny",
                "config": {"optimizer": {"name": "sgd"},
                           "loss": {"name": "sparse_categorical_crossentropy"}}})
            job = door.ok("JobService", "StartFit", {
                "sessionId": session, "model": "tiny", "data": inline_data(),
                "config": {"epochs": 100000, "batchSize": 1}})["id"]
            response, connection = door.request(
                "GET", f"/v1/jobs/{job}/events?session_id={session}")
            self.assertEqual(response.status, 200)
            self.assertTrue(response.fp.readline())  # the stream is open
            server.process.send_signal(signal.SIGTERM)
            answered = set()
            while server.process.poll() is None:
                try:
                    status, _ = door.call("SessionService", "GetSession", {"sessionId": session})
                    answered.add(status)
                except OSError:
                    break  # the listener has closed
            rest = ""
            try:
                for line in response.fp:
                    rest += line.decode()
            except OSError:
                pass
            connection.close()
            self.assertIn('"state":"INTERRUPTED"', rest, f"{rest[-2000:]}\n{server.log()}")
            # No `event: end`: an interrupted fit can be resumed after a restart, so an
            # EventSource should reconnect rather than close.
            self.assertNotIn("event: end", rest)
            self.assertEqual(server.wait_exit(), 0, server.log())
            self.assertLessEqual(answered, {200, 503})
        finally:
            server.cleanup()


class HttpGatewayAuthTest(ServerTestCase):
    """With --auth_tokens_file the door asks for the same tokens as gRPC."""

    TOKEN = "web-token-0123456789"

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        tokens = os.path.join(cls.dir.name, "tokens")
        with open(tokens, "w") as f:
            f.write(token_line("web", cls.TOKEN))
        cls.server_flags = (f"--auth_tokens_file={tokens}", "--http_listen=127.0.0.1:0",
                            "--http_max_streams_per_tenant=1")
        super().setUpClass()
        cls.port = http_port(cls.server)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.dir.cleanup()

    def test_calls_and_event_streams_need_the_token(self):
        status, error = Door(self.port).call("SessionService", "CreateSession")
        self.assertEqual((status, error["code"]), (401, "unauthenticated"))
        status, error = Door(self.port, "wrong").call("SessionService", "CreateSession")
        self.assertEqual((status, error["code"]), (401, "unauthenticated"))
        door = Door(self.port, self.TOKEN)
        session = door.ok("SessionService", "CreateSession")["id"]
        door.ok("ModelService", "DefineModel", {"sessionId": session, "definition": MODEL})
        door.ok("ModelService", "Compile", {
            "sessionId": session, "model": "tiny",
            "config": {"optimizer": {"name": "sgd"}, "loss": {"name": "sparse_categorical_crossentropy"}}})
        job = door.ok("JobService", "StartFit", {"sessionId": session, "model": "tiny",
                                                 "data": inline_data()})["id"]
        # EventSource sends no headers: the token comes in the URL.
        status, lines = Door(self.port).events(session, job, query=f"&access_token={self.TOKEN}")
        self.assertEqual(status, 200)
        self.assertEqual(lines[-1], "event: end")
        status, body = Door(self.port).events(session, job)
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body[0])["code"], "unauthenticated")


if __name__ == "__main__":
    unittest.main()
