"""End-to-end: what a hostile client or a hostile disk did to a real kiln-server process, and
what it does now. A .weights.h5 file that crashed libhdf5 took the whole server down; now its
import fails alone and the server answers the next call. A port file that could not be written
was left empty without a word; now the server stops and says why. Memory freed by deleted
sessions stayed with the process (RSS at its peak); now it comes back. A fit read back after a
SIGKILL said it had done no batch; now it says what its log saw."""
import os
import re
import subprocess
import tempfile
import time
import unittest

import grpc
import numpy as np

from kiln.v1 import jobs_pb2
from kiln_client import Client, KilnError
from kiln_e2e import SERVER_BIN, KilnServer

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "keras")
SMALL_MODEL = b"""{"class_name": "Sequential", "config": {"name": "m", "layers": [
  {"class_name": "InputLayer", "config": {"batch_shape": [null, 4], "name": "x"}},
  {"class_name": "Dense", "config": {"units": 3, "name": "dense"}}]}}"""


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024


class HostileTest(unittest.TestCase):
    def setUp(self):
        self.server = KilnServer("--ephemeral", "--file_reader_timeout=10s").start()
        self.client = Client(self.server.address)

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0, self.server.log())
        self.server.cleanup()

    def test_a_file_that_crashes_libhdf5_fails_alone(self):
        session = self.client.create_session()
        session.import_model(SMALL_MODEL, name="m")
        with open(os.path.join(FIXTURES, "hostile", "crashes_libhdf5.weights.h5"), "rb") as f:
            hostile = f.read()
        for _ in range(3):
            with self.assertRaises(KilnError) as raised:
                session.import_model(hostile, name="m")
            self.assertEqual(raised.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("the file is damaged or not a Keras file", str(raised.exception))
        # The same server, the same session: a good file still loads.
        session.import_model(session.export_model("m", format="weights"), name="m")
        self.assertEqual(self.server.process.poll(), None)

    def test_memory_of_deleted_sessions_comes_back(self):
        pid = self.server.process.pid
        with open(f"/proc/{pid}/maps") as maps:
            if any("libasan" in line or "libtsan" in line for line in maps):
                self.skipTest("a sanitizer's allocator keeps freed memory (ASan's quarantine): "
                              "RSS tells nothing here")
        # Warm up: libraries, pools and caches a first session brings in stay.
        warm = self.client.create_session()
        warm.upload_dataset("d", np.zeros((1024, 1024), np.float32))
        warm.delete()
        start = rss_bytes(pid)
        sessions = []
        for i in range(4):
            session = self.client.create_session()
            session.upload_dataset("d", np.full((8192, 1024), i, np.float32))  # 32 MiB
            sessions.append(session)
        peak = rss_bytes(pid)
        self.assertGreater(peak, start + (96 << 20), "the datasets were not held")
        for session in sessions:
            session.delete()
        after = rss_bytes(pid)
        self.assertLess(after, start + (64 << 20),
                        f"RSS {start >> 20} MiB at the start, {peak >> 20} at the peak, "
                        f"{after >> 20} after the sessions were deleted")


class InterruptedFitTest(unittest.TestCase):
    def test_a_fit_interrupted_by_sigkill_reports_the_batches_it_had_done(self):
        """The job log's last batch event is what survives a SIGKILL; a restored INTERRUPTED fit
        showed batches_done 0 before."""
        server = KilnServer("--worker_threads=1").start()
        try:
            session = Client(server.address).create_session("fit", seed=1)
            session.import_model(SMALL_MODEL, name="m")
            session.compile("m")
            x = np.random.default_rng(0).random((4096, 4), dtype=np.float32)
            session.upload_dataset("train", x, (x[:, 0] > 0.5).astype(np.int32))
            job = session.start_fit("m", dataset="train", epochs=1000, batch_size=4)
            # A batch event in the log (events are stored before a watcher sees them).
            seen = None
            for event in session.watch(job.id):
                if event.HasField("batch_end") and (event.batch_end.epoch > 0 or
                                                    event.batch_end.batch >= 20):
                    seen = event.batch_end
                    break
            server.kill()
            server.start()
            restored = Client(server.address).session(session.id).job(job.id)
            self.assertEqual(restored.state, jobs_pb2.INTERRUPTED)
            self.assertGreaterEqual(restored.batches_done,
                                    seen.epoch * seen.steps + seen.batch + 1)
        finally:
            server.cleanup()


class PortFileTest(unittest.TestCase):
    def test_a_port_file_that_cannot_be_written_stops_the_server(self):
        with tempfile.TemporaryDirectory() as state:
            os.mkdir(os.path.join(state, "port.tmp"))  # where the port is written first
            run = subprocess.run([SERVER_BIN, "--listen=127.0.0.1:0", f"--state_dir={state}"],
                                 capture_output=True, text=True, timeout=120)
            self.assertNotEqual(run.returncode, 0, run.stderr)
            self.assertIn("cannot write the port file", run.stderr)
            self.assertFalse(os.path.exists(os.path.join(state, "port")))


if __name__ == "__main__":
    unittest.main()
