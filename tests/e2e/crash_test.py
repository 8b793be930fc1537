"""Crash tests of the real kiln-server binary. SIGKILL at random moments of a fit, and
failpoints that abort it at named points of the store's write path; after each crash a new
server starts on the same state directory. Every call that was answered OK is there, the
previous checkpoint is usable, no file is left that the database does not name, and a fit
resumed again and again ends with the weights of a fit that was never interrupted (one worker
thread: bit for bit)."""
import os
import random
import sqlite3
import subprocess
import time
import unittest

import numpy as np

from kiln.v1 import jobs_pb2, service_pb2
from kiln_client import Client, KilnError
from kiln_e2e import KilnServer

# Conv2D, BatchNormalization (moving statistics), Dropout (a random stream), DepthwiseConv2D,
# pooling and Dense: every kind of state a checkpoint must carry.
MODEL = {
    "name": "crashy",
    "nodes": [
        {"id": "image", "input": {"shape": [12, 12, 2]}},
        {"id": "conv", "layer": {"conv2d": {"filters": 8, "kernel_size": [3]}},
         "inputs": ["image"]},
        {"id": "bn", "layer": {"batch_normalization": {}}, "inputs": ["conv"]},
        {"id": "relu", "layer": {"relu": {}}, "inputs": ["bn"]},
        {"id": "drop", "layer": {"dropout": {"rate": 0.3}}, "inputs": ["relu"]},
        {"id": "dw", "layer": {"depthwise_conv2d": {"kernel_size": [3], "depth_multiplier": 2}},
         "inputs": ["drop"]},
        {"id": "pool", "layer": {"global_average_pooling2d": {}}, "inputs": ["dw"]},
        {"id": "out", "layer": {"dense": {"units": 3, "activation": "softmax"}},
         "inputs": ["pool"]},
    ],
    "compile": {"optimizer": {"adam": {"learning_rate": 0.01}},
                "loss": {"name": "sparse_categorical_crossentropy"}, "metrics": ["accuracy"]},
}
LAYERS = ["conv", "bn", "dw", "out"]
FIT = dict(epochs=150, batch_size=16, seed=3, checkpoint_every_batches=4)


def make_data(n=320, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 12, 12, 2), dtype=np.float32)
    y = rng.integers(0, 3, n).astype(np.int32)
    x[np.arange(n), y * 4, :, 0] += 1.0  # a learnable band per class
    return x, y


def weights(session):
    return {layer: session.get_weights(layer, model="crashy") for layer in LAYERS}


def assert_same_weights(test, got, expected):
    for layer, ws in expected.items():
        for name, value in ws.items():
            test.assertTrue(np.array_equal(got[layer][name], value),
                            f"{layer}.{name} differs from the uninterrupted fit")


def prepared_session(client, name):
    session = client.create_session(name, seed=7)
    session.define_model(MODEL)
    x, y = make_data()
    session.upload_dataset("train", x, y)
    return session


def unreferenced_files(state_dir):
    """Files under tensors/ that no row of the database names, and temporary files."""
    db = sqlite3.connect(f"file:{state_dir}/kiln.db?mode=ro", uri=True)
    named = set()
    for table in ("weights", "optimizers", "datasets", "checkpoints"):
        for session_id, file in db.execute(f"SELECT session_id, file FROM {table}"):
            if file:
                named.add(os.path.join(state_dir, "tensors", session_id, file))
    db.close()
    found = set()
    for root, _, files in os.walk(os.path.join(state_dir, "tensors")):
        found.update(os.path.join(root, f) for f in files)
    return sorted(found - named)


class CrashTest(unittest.TestCase):
    def setUp(self):
        self.server = KilnServer("--worker_threads=1").start()

    def tearDown(self):
        self.server.cleanup()

    def connect(self):
        return Client(self.server.address, timeout=60)

    def reference_weights(self, client):
        reference = prepared_session(client, "reference")
        history = reference.fit("crashy", dataset="train", verbose=0, **FIT)
        expected = weights(reference)
        reference.delete()
        return history, expected

    def test_sigkill_at_random_moments_of_a_fit_then_resume_loses_nothing(self):
        client = self.connect()
        history, expected = self.reference_weights(client)
        session = prepared_session(client, "crashing")
        job = session.start_fit("crashy", dataset="train", **FIT)
        rng = random.Random(20261201)
        kills, checkpoint = 0, 0
        while True:
            # Each kill comes at a random moment after the fit took a checkpoint since the last
            # resume, however slow the machine: every cycle moves the fit on.
            checkpoint = self.wait_for_checkpoint_after(session, job.id, checkpoint)
            time.sleep(rng.uniform(0, 0.3))
            self.server.kill()
            kills += 1
            self.server.start()
            session = self.connect().session(session.id)
            state = session.job(job.id).state
            if state == jobs_pb2.SUCCEEDED:
                break
            self.assertEqual(state, jobs_pb2.INTERRUPTED, self.server.log())
            session.start_resume(job.id)
        self.assertGreaterEqual(kills, 10, "the fit ended before ten kills: make it longer")

        assert_same_weights(self, weights(session), expected)
        done = session.job(job.id)
        self.assertEqual([e.logs[0].value for e in done.history], history["loss"])
        # One event log across every crash: 1, 2, 3, ... with a seam where each resume began.
        events = list(session.watch(job.id))
        self.assertEqual([e.sequence for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(sum(e.HasField("resumed") for e in events), done.resumes)
        self.assertEqual(done.resumes, kills - 1)  # the last kill found it done
        self.assertEqual(unreferenced_files(self.server.state_dir), [])
        print(f"{kills} kills, {done.resumes} resumes, {len(events)} events")

    def wait_for_checkpoint_after(self, session, job_id, number):
        """Waits until the job has a checkpoint numbered above `number` or has ended; returns
        its last checkpoint's number."""
        while True:
            job = session.job(job_id)
            if job.last_checkpoint > number or job.state not in (jobs_pb2.QUEUED,
                                                                 jobs_pb2.RUNNING):
                return job.last_checkpoint
            time.sleep(0.02)

    def crash_at(self, failpoint, call):
        """Restarts the server with `failpoint` armed, makes `call` (which the failpoint ends
        with an abort), and starts it again without."""
        self.server.restart(env=dict(os.environ, KILN_FAILPOINTS=failpoint))
        with self.assertRaises(KilnError):
            call(self.connect())
        self.assertEqual(self.server.wait_exit(), -6, self.server.log())  # SIGABRT
        self.server.start()
        return self.connect()

    def test_failpoints_in_the_write_path_keep_every_answered_call(self):
        client = self.connect()
        session = prepared_session(client, "failpoints")
        sid = session.id
        kernel = session.get_weights("dw", model="crashy")["kernel"]
        answered = kernel + 1.0
        session.set_weights("dw", {"kernel": answered}, model="crashy")
        unanswered = kernel + 2.0

        def set_weights(c):
            c.session(sid).set_weights("dw", {"kernel": unanswered}, model="crashy")

        # Before the commit the change is not there; after it, it is, though no one heard OK.
        for failpoint, kept in [("weights.after_temp_write=abort", answered),
                                ("weights.after_rename=abort", answered),
                                ("weights.after_commit=abort", unanswered)]:
            client = self.crash_at(failpoint, set_weights)
            got = client.session(sid).get_weights("dw", model="crashy")["kernel"]
            np.testing.assert_array_equal(got, kept, failpoint)
            self.assertEqual(unreferenced_files(self.server.state_dir), [], failpoint)
            client.session(sid).set_weights("dw", {"kernel": answered}, model="crashy")

        def upload(c):
            x, y = make_data(40, seed=9)
            c.session(sid).upload_dataset("lost", x, y)

        for failpoint in ("dataset.half_written=abort", "dataset.after_temp_write=abort"):
            client = self.crash_at(failpoint, upload)
            names = [d.name for d in client.session(sid).datasets()]
            self.assertEqual(names, ["train"], failpoint)
            self.assertEqual(unreferenced_files(self.server.state_dir), [], failpoint)

        def add_input(c):
            c.session(sid).add_input([3], name="late_in")

        client = self.crash_at("op.after_commit=abort", add_input)
        info = client._call(client._sessions, "GetSession",
                            service_pb2.GetSessionRequest(session_id=sid))
        self.assertIn("late_in", [t.producer for t in info.tensors])

    def test_a_crash_in_the_middle_of_a_checkpoint_leaves_the_previous_one_usable(self):
        client = self.connect()
        history, expected = self.reference_weights(client)
        session = prepared_session(client, "checkpoints")
        sid = session.id
        initial = weights(session)
        jobs = []

        def fit(c):
            jobs.append(c.session(sid).start_fit("crashy", dataset="train", **FIT))
            while True:  # until the server is gone (a watch would retry for a while)
                c.session(sid).job(jobs[-1].id)
                time.sleep(0.05)

        # The 5th checkpoint's file is half written when the server dies, then one is renamed
        # into place but not yet in the database: each time the 4th is the newest.
        for failpoint in ("checkpoint.half_written=abort@5", "checkpoint.after_rename=abort@5"):
            for layer, ws in initial.items():  # the weights a fit starts from, again
                client.session(sid).set_weights(layer, ws, model="crashy")
            client = self.crash_at(failpoint, fit)
            session = client.session(sid)
            self.assertEqual(session.job(jobs[-1].id).state, jobs_pb2.INTERRUPTED)
            numbers = [c.number for c in session.checkpoints(jobs[-1].id)]
            self.assertEqual(numbers[-1], 4, failpoint)
            self.assertEqual(unreferenced_files(self.server.state_dir), [], failpoint)
        session.resume(jobs[-1].id, verbose=0)
        assert_same_weights(self, weights(session), expected)


class StateDirectoryErrorsTest(unittest.TestCase):
    """A state directory that cannot be written, really: the server runs as an unprivileged
    user (tests run as root here) and a directory it writes to loses its write permission."""

    def test_an_unwritable_state_directory_fails_writes_and_serves_reads(self):
        prefix = []
        if os.geteuid() == 0:
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        server = KilnServer("--worker_threads=1", command_prefix=prefix)
        try:
            if prefix:
                os.chown(server.state_dir, 65534, 65534)
            server.start()
            session = prepared_session(Client(server.address), "unwritable")
            kernel = session.get_weights("dw", model="crashy")["kernel"]
            session_dir = os.path.join(server.state_dir, "tensors", session.id)
            os.chmod(session_dir, 0o555)
            try:
                with self.assertRaises(KilnError) as refused:
                    session.set_weights("dw", {"kernel": kernel + 1}, model="crashy")
                self.assertEqual(refused.exception.code.name, "UNAVAILABLE")
                self.assertIn("the state directory is not writable", refused.exception.message)
                self.assertIn("Permission denied", refused.exception.message)
                np.testing.assert_array_equal(
                    session.get_weights("dw", model="crashy")["kernel"], kernel)
                self.assertEqual(len(session.predict("crashy", make_data(2)[0])), 2)
            finally:
                os.chmod(session_dir, 0o755)
            session.set_weights("dw", {"kernel": kernel + 1}, model="crashy")
        finally:
            server.cleanup()


    def test_a_full_state_directory_fails_writes_and_leaves_nothing_half_written(self):
        server = KilnServer("--worker_threads=1")
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                                  server.state_dir], capture_output=True, text=True)
        if mounted.returncode != 0:
            server.cleanup()
            self.skipTest(f"no tmpfs to fill (mount: {mounted.stderr.strip()}); the service "
                          "tests fill the disk with failpoints instead")
        try:
            server.start()
            session = prepared_session(Client(server.address), "full")
            x = np.zeros((2000, 12, 12, 2), dtype=np.float32)  # 2.3 MB: more than there is
            with self.assertRaises(KilnError) as refused:
                session.upload_dataset("big", x, np.zeros(2000, dtype=np.int32))
            self.assertEqual(refused.exception.code.name, "RESOURCE_EXHAUSTED")
            self.assertIn("the state directory is full", refused.exception.message)
            self.assertEqual([d.name for d in session.datasets()], ["train"])
            self.assertEqual(unreferenced_files(server.state_dir), [])
            # Reads go on, and a smaller change still fits.
            self.assertEqual(len(session.predict("crashy", make_data(2)[0])), 2)
            session.upload_dataset("small", *make_data(10))
            server.stop()
        finally:
            server.stop()
            subprocess.run(["umount", server.state_dir], check=False)
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
