"""End-to-end: kiln-server as an operator runs it. Flags from KILN_* environment variables (the
command line wins; a bad value names its variable), the HTTP listener's /metrics, /healthz and
/readyz from outside the process, JSON log lines that name the session the CLI and the Python
client send as x-kiln-session, and the compute threads the log says it runs."""
import json
import os
import re
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import numpy as np

from kiln_client import Client
from kiln_e2e import CLI_BIN, MODEL, SERVER_BIN, ServerTestCase


def json_lines(log):
    """Every line of a --log_format=json log, parsed (a line that is not JSON fails)."""
    return [json.loads(line) for line in log.splitlines() if line.strip()]


class OperationsTest(ServerTestCase):
    server_env = dict(os.environ, KILN_HTTP_LISTEN="127.0.0.1:0", KILN_LOG_FORMAT="json",
                      KILN_LOG_RPCS="none", KILN_WORKER_THREADS="1")
    server_flags = ("--log_rpcs=all",)  # the command line wins over KILN_LOG_RPCS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.http_port = cls.wait_for_http_port()

    @classmethod
    def wait_for_http_port(cls):
        for _ in range(100):
            for line in json_lines(cls.server.log()):
                match = re.match(r"HTTP on port (\d+):", line["message"])
                if match:
                    return int(match.group(1))
            time.sleep(0.05)
        raise AssertionError(f"no HTTP port in the log:\n{cls.server.log()}")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}",
                                        timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def rpc_lines(self, method):
        return [line for line in json_lines(self.server.log())
                if line.get("rpc") == f"/kiln.v1.{method}"]

    def test_every_line_is_json_and_says_the_compute_threads(self):
        lines = json_lines(self.server.log())
        self.assertTrue(all({"time", "level", "message"} <= line.keys() for line in lines))
        messages = [line["message"] for line in lines]
        self.assertIn("1 compute thread (--worker_threads)", messages)
        self.assertTrue(any(m.startswith("listening on port ") for m in messages), messages)

    def test_metrics_and_probes_over_http(self):
        client = Client(self.server.address)
        session = client.create_session(name="ops")
        try:
            status, text = self.get("/metrics")
            self.assertEqual(status, 200)
            self.assertRegex(text, r'kiln_rpc_requests_total\{method="/kiln.v1.SessionService/'
                                   r'CreateSession",code="OK"\} [1-9]')
            self.assertIn("\nkiln_compute_threads 1\n", text)
            self.assertRegex(text, r"\nkiln_sessions [1-9]")
            self.assertRegex(text, r"\nprocess_resident_memory_bytes [1-9]")
        finally:
            session.delete()
        self.assertEqual(self.get("/healthz")[0], 200)
        self.assertEqual(self.get("/readyz")[0], 200)
        self.assertEqual(self.get("/nothing-here")[0], 404)

    def test_the_python_client_names_its_session(self):
        client = Client(self.server.address)
        session = client.create_session(name="ops-python")
        try:
            session.add_input([4])
            session.upload_dataset("d", np.zeros((2, 4), np.float32))
        finally:
            session.delete()
        for method in ("ModelService/AddInput", "DataService/UploadDataset",
                       "SessionService/DeleteSession"):
            sessions = {line.get("session") for line in self.rpc_lines(method)}
            self.assertIn(session.id, sessions, method)

    def test_the_cli_names_its_session(self):
        env = dict(os.environ, KILN_SERVER=self.server.address)
        run = lambda *args: subprocess.run([CLI_BIN, *args], env=env, capture_output=True,
                                           text=True, check=True).stdout.strip()
        session = run("session", "create", "--name=ops-cli")
        model = os.path.join(self.server.state_dir, "model.json")
        with open(model, "w") as f:
            json.dump(MODEL, f)
        run("model", "define", model, f"--session={session}")
        run("session", "delete", f"--session={session}")
        sessions = {line.get("session") for line in self.rpc_lines("ModelService/DefineModel")}
        self.assertIn(session, sessions)
        failed = [line for line in json_lines(self.server.log()) if line.get("code") not in
                  (None, "OK")]
        self.assertTrue(all(line["level"] in ("warning", "error") for line in failed))


class EnvironmentErrorTest(unittest.TestCase):
    def test_a_bad_value_names_its_variable(self):
        env = dict(os.environ, KILN_MAX_SESSIONS="lots")
        run = subprocess.run([SERVER_BIN, "--listen=127.0.0.1:0", "--ephemeral"], env=env,
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn("KILN_MAX_SESSIONS=lots", run.stderr)

    def test_help_names_the_variables(self):
        run = subprocess.run([SERVER_BIN, "--help"], capture_output=True, text=True, timeout=30)
        self.assertIn("$KILN_HTTP_LISTEN", run.stdout)
        self.assertIn("$KILN_STATE_DIR", run.stdout)
        self.assertNotIn("$KILN_HASH_TOKEN", run.stdout)


if __name__ == "__main__":
    unittest.main()
