"""End-to-end: who may call kiln-server. Bearer tokens name tenants (re-read on SIGHUP), a
tenant sees only its own sessions, and tokens never reach the log; TLS and mutual TLS with
certificates that openssl makes at test time; a non-loopback address needs authentication."""
import hashlib
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

from kiln_client import Client, KilnError
from kiln_client.session import Session
from kiln.v1 import service_pb2
from kiln_e2e import CLI_BIN, MODEL, SERVER_BIN, KilnServer, make_data

ALICE, BOB, CAROL = "alice-token-0123456789", "bob-token-9876543210", "carol-token-5555"


def token_line(tenant, token):
    return f"{tenant}:{hashlib.sha256(token.encode()).hexdigest()}\n"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)


def make_certificate(directory, ca, name, san=None):
    """A certificate for CN=name signed by `ca`, with subjectAltName `san` if given."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout",
            f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    extra = []
    if san:
        with open(os.path.join(directory, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *extra, cwd=directory)


def owner_of(client, session_id):
    return next(x.owner for x in client.list_sessions() if x.id == session_id)


def tensor_names(client, session_id):
    info = client._call(client._sessions, "GetSession",
                        service_pb2.GetSessionRequest(session_id=session_id))
    return [t.producer for t in info.tensors]


def error_of(call):
    try:
        call()
    except KilnError as e:
        return e
    raise AssertionError("the call succeeded")


class TokenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.tokens = os.path.join(cls.dir.name, "tokens")
        with open(cls.tokens, "w") as f:
            f.write("# tenants of the test\n" + token_line("alice", ALICE) + token_line("bob", BOB))
        cls.server = KilnServer(f"--auth_tokens_file={cls.tokens}").start()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        log = cls.server.log()
        cls.server.cleanup()
        cls.dir.cleanup()
        for token in (ALICE, BOB, CAROL):
            assert token not in log, "a token reached the server's log"
        assert code == 0, log

    def client(self, token):
        return Client(self.server.address, token=token)

    def test_a_call_without_a_valid_token_is_unauthenticated(self):
        for token in ("", "not-a-token"):
            e = error_of(lambda: self.client(token).list_sessions())
            self.assertEqual(e.code, grpc.StatusCode.UNAUTHENTICATED, e)
        self.assertIn("Bearer", error_of(lambda: self.client("").create_session()).message)
        # Health needs no token: probes and `kiln health` work without one.
        self.assertTrue(self.client("").health())

    def test_a_tenant_sees_only_its_own_sessions(self):
        alice, bob = self.client(ALICE), self.client(BOB)
        s = alice.create_session(name="mine")
        self.assertEqual(owner_of(alice, s.id), "alice")
        self.assertRegex(s.id, r"^s-[0-9a-f]{32}$")  # 128 random bits
        x, y = make_data(16)
        s.define_model({"name": "m", "nodes": [
            {"id": "in", "input": {"shape": [8, 8, 1]}},
            {"id": "flat", "layer": {"flatten": {}}, "inputs": ["in"]},
            {"id": "out", "layer": {"dense": {"units": 2, "activation": "softmax"}},
             "inputs": ["flat"]}]})
        s.compile("m")
        job = s.start_fit("m", x=x, y=y, epochs=1, batch_size=8)
        self.assertRegex(job.id, r"^job-[0-9a-f]{32}$")
        s.wait(job.id)

        unknown = error_of(lambda: bob.session("s-" + "0" * 32))
        for call in (lambda: bob.session(s.id), lambda: bob.session(s.id).delete()):
            e = error_of(call)
            self.assertEqual(e.code, grpc.StatusCode.NOT_FOUND)
            # Word for word the answer for an id that does not exist, but for the id itself.
            self.assertEqual(e.message.replace(s.id, "ID"), unknown.message.replace("s-" + "0" * 32, "ID"))
        self.assertNotIn(s.id, [x.id for x in bob.list_sessions()])
        self.assertIn(s.id, [x.id for x in alice.list_sessions()])
        # Bob cannot reach Alice's jobs or models through her session id either.
        foreign = Session(bob, service_pb2.Session(id=s.id))
        for call in (lambda: foreign.job(job.id), lambda: foreign.model("m"),
                     lambda: list(foreign.watch(job.id)), lambda: foreign.predict("m", x[:1])):
            self.assertEqual(error_of(call).code, grpc.StatusCode.NOT_FOUND)
        self.assertEqual(alice.session(s.id).job(job.id).id, job.id)
        s.delete()

    def test_session_ids_are_scoped_by_tenant(self):
        # Ids were one namespace across tenants: a create with another tenant's id answered
        # ALREADY_EXISTS, which told the caller that the session existed.
        session_id = "s-" + "5e" * 16
        request = service_pb2.CreateSessionRequest(name="same id", session_id=session_id)
        alice, bob = self.client(ALICE), self.client(BOB)
        a = Session(alice, alice._call(alice._sessions, "CreateSession", request))
        b = Session(bob, bob._call(bob._sessions, "CreateSession", request))
        self.assertEqual((a.id, b.id), (session_id, session_id))
        e = error_of(lambda: alice._call(alice._sessions, "CreateSession", request))
        self.assertEqual(e.code, grpc.StatusCode.ALREADY_EXISTS)  # among its own sessions
        a.add_input([3], name="alices")
        b.add_input([5], name="bobs")
        self.server.restart()  # each comes back as its owner's, under the same id
        alice, bob = self.client(ALICE), self.client(BOB)
        self.assertEqual(owner_of(alice, session_id), "alice")
        self.assertEqual(owner_of(bob, session_id), "bob")
        self.assertEqual(tensor_names(alice, session_id), ["alices"])
        self.assertEqual(tensor_names(bob, session_id), ["bobs"])
        bob.session(session_id).delete()
        self.assertNotIn(session_id, [x.id for x in bob.list_sessions()])
        self.assertEqual(tensor_names(alice, session_id), ["alices"])
        alice.session(session_id).delete()

    def test_the_cli_sends_the_token(self):
        env = dict(os.environ, KILN_SERVER=self.server.address)
        env.pop("KILN_TOKEN", None)
        run = subprocess.run([CLI_BIN, "session", "list"], env=env, capture_output=True, text=True)
        self.assertEqual(run.returncode, 1, run)
        self.assertIn("UNAUTHENTICATED", run.stderr)
        run = subprocess.run([CLI_BIN, "session", "create", "--name=cli"],
                             env=dict(env, KILN_TOKEN=BOB), capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        session = run.stdout.strip()
        run = subprocess.run([CLI_BIN, "session", "list", f"--token={BOB}"], env=env,
                             capture_output=True, text=True)
        self.assertIn(session, run.stdout)
        self.assertNotIn(session, [x.id for x in self.client(ALICE).list_sessions()])
        self.client(BOB).session(session).delete()

    def test_sighup_rereads_the_tokens_file(self):
        with open(self.tokens, "a") as f:
            f.write(token_line("carol", CAROL))
        self.server.process.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while True:
            try:
                self.client(CAROL).list_sessions()
                break
            except KilnError as e:
                self.assertEqual(e.code, grpc.StatusCode.UNAUTHENTICATED)
                self.assertLess(time.time(), deadline, "SIGHUP did not add carol")
                time.sleep(0.05)
        # A broken file is refused and the tokens in use stay.
        with open(self.tokens) as f:
            good = f.read()
        with open(self.tokens, "w") as f:
            f.write("carol:not-hex\n")
        self.server.process.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "tokens kept" not in self.server.log():
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        self.assertIn("line 1: the digest must be 64 hex digits", self.server.log())
        self.client(CAROL).list_sessions()
        with open(self.tokens, "w") as f:
            f.write(good)
        self.server.process.send_signal(signal.SIGHUP)


class RevocationTest(unittest.TestCase):
    def test_revoking_a_token_ends_the_streams_it_opened(self):
        """A token revoked by SIGHUP kept its tenant's open WatchJob streams running."""
        with tempfile.TemporaryDirectory() as directory:
            tokens = os.path.join(directory, "tokens")
            with open(tokens, "w") as f:
                f.write(token_line("alice", ALICE) + token_line("dave", "dave-token-4444"))
            server = KilnServer(f"--auth_tokens_file={tokens}", "--worker_threads=1").start()
            try:
                session = Client(server.address, token="dave-token-4444").create_session()
                session.define_model(MODEL)
                session.compile("tiny")
                session.upload_dataset("train", *make_data())
                job = session.start_fit("tiny", dataset="train", epochs=100000, batch_size=8)
                events = session.watch(job.id)
                next(events)  # the stream is open
                with open(tokens, "w") as f:
                    f.write(token_line("alice", ALICE))
                server.process.send_signal(signal.SIGHUP)
                with self.assertRaises(KilnError) as ended:
                    for _ in events:
                        pass
                self.assertEqual(ended.exception.code, grpc.StatusCode.UNAUTHENTICATED)
                self.assertIn("revoked", ended.exception.message)
            finally:
                server.cleanup()


class FailedTokenTest(unittest.TestCase):
    def test_wrong_tokens_are_rate_limited_per_address(self):
        """Nothing bounded how fast a client could guess tokens: 20 wrong ones a minute from
        an address, then even a good one from there waits (gRPC and the HTTP door alike)."""
        with tempfile.TemporaryDirectory() as directory:
            tokens = os.path.join(directory, "tokens")
            with open(tokens, "w") as f:
                f.write(token_line("alice", ALICE))
            server = KilnServer(f"--auth_tokens_file={tokens}").start()
            try:
                # (A client call may make more than one RPC: count answers, not calls.)
                refused = 0
                for i in range(21):
                    e = error_of(lambda: Client(server.address, token=f"guess-{i}").list_sessions())
                    if e.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        break
                    self.assertEqual(e.code, grpc.StatusCode.UNAUTHENTICATED, e)
                    refused += 1
                self.assertGreaterEqual(refused, 1)
                self.assertLessEqual(refused, 20)
                e = error_of(lambda: Client(server.address, token=ALICE).list_sessions())
                self.assertEqual(e.code, grpc.StatusCode.RESOURCE_EXHAUSTED, e)
                self.assertIn("too many requests with a wrong token from this address", e.message)
            finally:
                server.cleanup()


class StartupTest(unittest.TestCase):
    def run_server(self, *flags, stdin=None):
        return subprocess.run([SERVER_BIN, "--ephemeral", *flags], input=stdin,
                              capture_output=True, text=True, timeout=30)

    def test_hash_token_prints_the_tokens_file_line(self):
        run = self.run_server("--hash_token=alice", stdin=ALICE + "\n")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout, token_line("alice", ALICE))
        run = self.run_server("--hash_token=al ice", stdin=ALICE)
        self.assertEqual(run.returncode, 2)
        self.assertIn("a tenant name is 1 to 64 letters", run.stderr)

    def test_a_public_address_needs_authentication(self):
        run = self.run_server("--listen=0.0.0.0:0")
        self.assertEqual(run.returncode, 1)
        lines = run.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, run.stderr)
        self.assertRegex(lines[0], r"refusing to serve 0\.0\.0\.0:0 without authentication: "
                         r"give --auth_tokens_file or --tls_client_ca, or --insecure")
        with tempfile.TemporaryDirectory() as d:
            server = KilnServer("--listen=0.0.0.0:0", "--insecure")
            try:
                server.start()
                self.assertIn("no authentication", server.log())
            finally:
                self.assertEqual(server.stop(), 0)
                server.cleanup()

    def test_unreadable_tokens_file_is_refused(self):
        run = self.run_server("--auth_tokens_file=/nonexistent/tokens")
        self.assertEqual(run.returncode, 1)
        self.assertIn("cannot read the tokens file /nonexistent/tokens", run.stderr)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_is_bounded_by_the_grace_during_a_long_initialisation(self):
        """An Orthogonal initialisation of a 3000x3000 kernel takes ~20 s here; SIGTERM with a
        1 s grace cancels its call, the initialisation stops with it (it used to run on, and
        the process was ended 3 s past the grace), and the server exits cleanly at once."""
        server = KilnServer("--shutdown_grace=1s").start()
        self.addCleanup(server.cleanup)
        session = Client(server.address).create_session()
        x = session.add_input([3000])
        thread = threading.Thread(target=lambda: error_of(lambda: session.add_layer(
            {"dense": {"units": 3000, "kernel_initializer": {"orthogonal": {}}}}, inputs=[x])))
        thread.start()
        time.sleep(1.0)
        start = time.time()
        code = server.stop(timeout=30)
        elapsed = time.time() - start
        thread.join()
        self.assertLess(elapsed, 1 + 3 + 2, server.log())  # grace + slack + process exit
        self.assertEqual(code, 0, server.log())
        self.assertNotIn("exiting now", server.log())
        # What answered OK before is there after a restart; the cancelled layer is not.
        server.start()
        restarted = Client(server.address)
        self.assertIn(session.id, [s.id for s in restarted.list_sessions()])
        stored = restarted._call(restarted._sessions, "GetSession",
                                 service_pb2.GetSessionRequest(session_id=session.id))
        self.assertEqual(len(stored.layers), 0)


class TlsTest(unittest.TestCase):
    """TLS, then mutual TLS whose client certificates name tenants."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        make_certificate(d, "ca", "server", san="DNS:localhost,IP:127.0.0.1")
        make_certificate(d, "ca", "alice")
        make_certificate(d, "other-ca", "mallory")

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def file(self, name):
        return os.path.join(self.dir.name, name)

    def server(self, *flags):
        server = KilnServer(f"--tls_cert={self.file('server.pem')}",
                            f"--tls_key={self.file('server.key')}", *flags).start()
        self.addCleanup(server.cleanup)
        return server

    def test_tls_works_and_plaintext_fails_cleanly(self):
        server = self.server()
        client = Client(server.address, tls_ca=self.file("ca.pem"))
        with client.create_session() as s:
            self.assertEqual(owner_of(client, s.id), "")
        plain = error_of(lambda: Client(server.address, timeout=5).list_sessions())
        self.assertEqual(plain.code, grpc.StatusCode.UNAVAILABLE)
        # A server certificate from a CA the client does not trust is refused too.
        untrusted = error_of(
            lambda: Client(server.address, timeout=5, tls_ca=self.file("other-ca.pem")).list_sessions())
        self.assertEqual(untrusted.code, grpc.StatusCode.UNAVAILABLE)
        self.assertTrue(client.health())  # the server is unharmed
        env = dict(os.environ, KILN_SERVER=server.address)
        run = subprocess.run([CLI_BIN, "session", "list", f"--tls_ca={self.file('ca.pem')}"],
                             env=env, capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)

    def test_mutual_tls_names_the_tenant_and_refuses_other_certificates(self):
        server = self.server(f"--tls_client_ca={self.file('ca.pem')}", "--listen=0.0.0.0:0")
        address = server.address.replace("127.0.0.1", "localhost")
        alice = Client(address, tls_ca=self.file("ca.pem"), tls_cert=self.file("alice.pem"),
                       tls_key=self.file("alice.key"))
        with alice.create_session() as s:
            self.assertEqual(owner_of(alice, s.id), "alice")
        for cert in (None, "mallory"):
            kwargs = {} if cert is None else {"tls_cert": self.file(f"{cert}.pem"),
                                              "tls_key": self.file(f"{cert}.key")}
            e = error_of(lambda: Client(address, timeout=5, tls_ca=self.file("ca.pem"),
                                        **kwargs).list_sessions())
            self.assertEqual(e.code, grpc.StatusCode.UNAVAILABLE, e)
        env = dict(os.environ, KILN_SERVER=address)
        run = subprocess.run([CLI_BIN, "session", "create", f"--tls_ca={self.file('ca.pem')}",
                              f"--tls_cert={self.file('alice.pem')}",
                              f"--tls_key={self.file('alice.key')}"],
                             env=env, capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn(run.stdout.strip(), [x.id for x in alice.list_sessions()])
        run = subprocess.run([CLI_BIN, "session", "list", "--tls_ca=/nonexistent.pem"], env=env,
                             capture_output=True, text=True)
        self.assertEqual(run.returncode, 2)
        self.assertIn("--tls_ca: cannot read /nonexistent.pem", run.stderr)


if __name__ == "__main__":
    unittest.main()
