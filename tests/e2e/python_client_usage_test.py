"""End-to-end: the Python client as a newcomer uses it - seeded sessions that repeat their
results, `with` blocks that leave nothing behind, malformed specs that raise KilnError naming
the field, Ctrl-C that cancels a fit, a watch left early that ends its stream, progress that is
never silent for long when piped, health by service name, and predictions over a dataset that
do not pile up in the session.
"""
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import grpc
import numpy as np

from kiln_client import Client, KilnError
from kiln_client import with_default_port
from kiln_client.progress import Progress
from kiln.v1 import jobs_pb2
from kiln_e2e import ServerTestCase, make_data
from python_client_test import build_model


class PythonClientUsageTest(ServerTestCase):
    def setUp(self):
        self.client = Client(self.server.address, timeout=120)
        self.client.wait_ready()

    def tearDown(self):
        for s in self.client.list_sessions():
            self.client.session(s.id).delete()
        self.client.channel.close()

    def test_a_seeded_session_repeats_its_weights_and_training(self):
        x, y = make_data()
        results = []
        for _ in range(2):
            with self.client.create_session("seeded", seed=21) as s:
                build_model(s)
                initial = s.get_weights("dense")
                s.upload_dataset("train", x, y)
                history = s.fit("tiny", dataset="train", epochs=2, batch_size=16, verbose=0)
                job = s.jobs()[-1]
                results.append((initial, history, s.get_weights("dense"), job.seed))
        (w0, h0, t0, seed0), (w1, h1, t1, seed1) = results
        np.testing.assert_array_equal(w0["kernel"], w1["kernel"])
        self.assertEqual(h0, h1)
        np.testing.assert_array_equal(t0["kernel"], t1["kernel"])
        self.assertEqual(seed0, seed1)
        with self.client.create_session("other", seed=22) as s:
            build_model(s)
            self.assertFalse(np.array_equal(s.get_weights("dense")["kernel"], w0["kernel"]))

    def test_a_with_block_deletes_its_session(self):
        with self.client.create_session("scoped") as s:
            session_id = s.id
            self.assertIn(session_id, [x.id for x in self.client.list_sessions()])
        self.assertNotIn(session_id, [x.id for x in self.client.list_sessions()])
        with self.assertRaises(ValueError):
            with self.client.create_session("failing") as s:
                session_id = s.id
                raise ValueError("user code failed")
        self.assertNotIn(session_id, [x.id for x in self.client.list_sessions()])

    def test_malformed_specs_raise_kiln_error_with_the_field(self):
        with self.client.create_session("errors") as s:
            x = s.add_input([8, 8, 1])
            with self.assertRaises(KilnError) as e:
                s.add_layer({"depthwse_conv2d": {"kernel_size": [3]}}, [x])
            self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(e.exception.field, "spec.depthwse_conv2d")
            self.assertIn('did you mean "depthwise_conv2d"?', e.exception.message)
            with self.assertRaises(KilnError) as e:
                s.add_layer({"dense": {"unts": 3}}, [x])
            self.assertEqual(e.exception.field, "spec.dense.unts")
            self.assertIn('did you mean "units"?', e.exception.message)
            with self.assertRaises(KilnError) as e:
                s.add_layer({"dense": {"units": "three"}}, [x])
            self.assertEqual(e.exception.field, "spec.dense.units")
            with self.assertRaises(KilnError) as e:
                s.define_model('{"name": "m",\n "nodes": [}')
            self.assertIn("line 2, column 12", e.exception.message)
            with self.assertRaises(KilnError) as e:
                s.define_model({"name": "m", "nodes": [{"id": "a", "inputt": {}}]})
            self.assertEqual(e.exception.field, "definition.nodes[0].inputt")
            self.assertEqual(s.models(), [])

    def test_piped_progress_prints_within_each_interval(self):
        out = io.StringIO()  # not a terminal
        progress = Progress(out, interval=10.0)

        def event(seconds, **fields):
            e = jobs_pb2.JobEvent(**fields)
            e.time.FromNanoseconds(int(seconds * 1e9))
            return e

        progress(event(1000, train_begin=jobs_pb2.TrainBegin(epochs=1, steps_per_epoch=100)))
        progress(event(1000, epoch_begin=jobs_pb2.EpochBegin(epoch=0)))
        for i in range(1, 31):  # a batch every second, for 30 s
            progress(event(1000 + i, batch_end=jobs_pb2.BatchEnd(
                batch=3 * i, steps=100, logs=[jobs_pb2.Metric(name="loss", value=0.5)])))
        progress(event(1031, epoch_end=jobs_pb2.EpochEnd(epoch=0, seconds=31)))
        self.assertEqual(out.getvalue().splitlines(), [
            "Epoch 1/1",
            " 31/100 - ETA: 22s - loss: 0.5000",
            " 61/100 - ETA: 13s - loss: 0.5000",
            " 91/100 - ETA: 3s - loss: 0.5000",
            "100/100 - 31s 310ms/step",
        ])

    def test_ctrl_c_during_fit_cancels_the_job(self):
        script = textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
            from kiln_client import Client
            from kiln_e2e import make_data
            from python_client_test import build_model
            client = Client({self.server.address!r})
            session = client.create_session("interrupted")
            print(session.id, flush=True)
            build_model(session)
            x, y = make_data()
            session.upload_dataset("train", x, y)
            try:
                session.fit("tiny", dataset="train", epochs=100000, batch_size=8)
            except KeyboardInterrupt:
                print("KeyboardInterrupt", flush=True)
                raise
        """)
        # -X faulthandler: a child that hangs shows where when it is sent SIGABRT.
        child = subprocess.Popen([sys.executable, "-X", "faulthandler", "-c", script],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=os.environ)
        session_id = child.stdout.readline().strip()
        for line in child.stdout:
            if line.startswith("Epoch 1/"):
                break
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGABRT)
            out, err = child.communicate()
            self.fail(f"the client did not end 60 s after Ctrl-C:\n{out}\n{err}")
        self.assertNotEqual(child.returncode, 0)
        self.assertIn("KeyboardInterrupt", out)
        self.assertIn("Ctrl-C: cancelling job-", err)
        (job,) = self.client.session(session_id).jobs()
        self.assertEqual(job.state, jobs_pb2.CANCELLED)

    def test_a_watch_left_early_ends_its_stream(self):
        with self.client.create_session("left") as s:
            build_model(s)
            x, y = make_data()
            s.upload_dataset("train", x, y)
            job = s.start_fit("tiny", dataset="train", epochs=100000, batch_size=8)
            for _ in s.watch(job.id):
                break  # the generator is closed here: its stream is cancelled
            deadline = time.time() + 10
            while any(t.name == "kiln-stream-reader" for t in threading.enumerate()):
                self.assertLess(time.time(), deadline, "the stream's reader thread lives on")
                time.sleep(0.01)
            s.cancel(job.id)
            with self.assertRaises(KilnError) as e:
                s.wait(job.id)
            self.assertEqual(e.exception.state, jobs_pb2.CANCELLED)

    def test_health_by_service_name(self):
        self.assertTrue(self.client.health())
        self.assertTrue(self.client.health("kiln.v1.ModelService"))
        with self.assertRaises(KilnError) as e:
            self.client.health("kiln.v1.NoSuchService")
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        start = time.time()
        self.assertFalse(Client("127.0.0.1:1").health(wait=0.5))
        self.assertLess(time.time() - start, 3)  # it waits as long as asked, not longer
        with self.assertRaises(KilnError) as e:
            Client("127.0.0.1:1").create_session()
        self.assertIn("cannot reach a Kiln server at 127.0.0.1:1", e.exception.message)

    def test_predict_dataset_reads_back_and_frees(self):
        with self.client.create_session("predict") as s:
            build_model(s)
            x, y = make_data()
            s.upload_dataset("train", x, y)
            p = s.predict_dataset("tiny", "train")
            self.assertEqual(p.shape, (256, 2))
            np.testing.assert_allclose(p, s.predict("tiny", x), rtol=1e-5, atol=1e-6)
            self.assertEqual([d.name for d in s.datasets()], ["train"])
            kept = s.predict_dataset("tiny", "train", keep=True)
            self.assertEqual(len(s.datasets()), 2)
            np.testing.assert_array_equal(kept, p)

    def test_default_port(self):
        self.assertEqual(with_default_port("localhost"), "localhost:50051")
        self.assertEqual(with_default_port("10.0.0.1:7000"), "10.0.0.1:7000")
        self.assertEqual(with_default_port("::1"), "[::1]:50051")
        self.assertEqual(with_default_port("[::1]"), "[::1]:50051")
        self.assertEqual(with_default_port("unix:/tmp/kiln.sock"), "unix:/tmp/kiln.sock")


if __name__ == "__main__":
    unittest.main()
