"""End-to-end: the `kiln` CLI with jobs and the arrays they leave - Ctrl-C cancels a followed
fit, a queued job says so, predictions do not pile up in the session, and weights, datasets and
models can be read, written and deleted. (Piped progress between epoch lines is checked with
synthetic events in tests/client/cli/progress_test.cc.)
"""
import os
import signal
import subprocess
import time
import unittest

import numpy as np

from kiln_e2e import CLI_BIN, CliTestCase


class CliJobsTest(CliTestCase):
    def start_kiln(self, *args, session):
        """The CLI as a background process whose output is read line by line."""
        return subprocess.Popen([CLI_BIN, *args], env=self.env(session), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def read_until(self, process, prefix):
        for line in process.stdout:
            if line.startswith(prefix):
                return line
        self.fail(f"no line starting {prefix!r}; stderr:\n{process.stderr.read()}")

    def test_ctrl_c_cancels_the_followed_fit(self):
        s = self.trained_session()
        fit = self.start_kiln("fit", "--dataset=train", "--epochs=100000", "--batch_size=8",
                              session=s)
        self.read_until(fit, "Epoch 1/100000")
        fit.send_signal(signal.SIGINT)
        out, err = fit.communicate(timeout=60)
        self.assertEqual(fit.returncode, 130, err)
        self.assertIn("Ctrl-C: cancelling job-", err)
        self.assertRegex(err, r"job job-[0-9a-f]+ cancelled")
        jobs = self.kiln("jobs", "list", session=s).stdout
        self.assertRegex(jobs, r"fit +tiny +cancelled")
        # --detach leaves the job alone; Ctrl-C while only watching stops the watch, not the job.
        job = self.kiln("fit", "--dataset=train", "--epochs=100000", "--batch_size=8",
                        "--detach", session=s).stdout.strip()
        watch = self.start_kiln("jobs", "watch", job, session=s)
        self.read_until(watch, "Epoch 1/100000")
        watch.send_signal(signal.SIGINT)
        watch.communicate(timeout=60)
        self.assertEqual(watch.returncode, 130)
        self.assertRegex(self.kiln("jobs", "list", session=s).stdout,
                         rf"{job} +fit +tiny +running")
        self.kiln("jobs", "cancel", job, session=s)

    def test_a_second_ctrl_c_stops_waiting_even_when_the_server_hangs(self):
        s = self.trained_session()
        fit = self.start_kiln("fit", "--dataset=train", "--epochs=100000", "--batch_size=8",
                              session=s)
        self.read_until(fit, "Epoch 1/100000")
        self.server.process.send_signal(signal.SIGSTOP)  # the cancel will hang
        try:
            fit.send_signal(signal.SIGINT)
            time.sleep(0.5)
            fit.send_signal(signal.SIGINT)
            fit.communicate(timeout=5)  # at once, not after the cancel's deadline
            self.assertEqual(fit.returncode, 130)
        finally:
            self.server.process.send_signal(signal.SIGCONT)
        self.kiln("session", "delete", session=s)  # cancels the job that still runs

    def test_a_queued_job_says_so(self):
        s = self.trained_session()
        first = self.kiln("fit", "--dataset=train", "--epochs=100000", "--batch_size=8",
                          "--detach", session=s).stdout.strip()
        second = self.start_kiln("fit", "--dataset=train", "--epochs=2", session=s)
        line = self.read_until(second, "job-")
        self.assertRegex(line, r"^job-[0-9a-f]+ is queued: it starts when the jobs ahead of it end")
        jobs = self.kiln("jobs", "list", session=s).stdout.splitlines()
        self.assertRegex(jobs[-1], r"fit +tiny +queued *$")  # no "epoch 1/0"
        self.kiln("jobs", "cancel", first, session=s)
        out, err = second.communicate(timeout=120)
        self.assertEqual(second.returncode, 0, err)
        self.assertIn("Epoch 2/2", out)

    def test_predictions_do_not_pile_up_in_the_session(self):
        s = self.trained_session()
        self.kiln("fit", "--dataset=train", "--epochs=1", session=s)
        self.kiln("predict", "--dataset=train", f"--output={self.path('p.npy')}", session=s)
        self.assertEqual(np.load(self.path("p.npy")).shape, (256, 2))
        self.assertNotIn("predictions", self.kiln("data", "list", session=s).stdout)
        kept = self.kiln("predict", "--dataset=train", "--keep", session=s)
        self.assertRegex(kept.stderr, r"kept the predictions as the session's dataset "
                                      r"(predictions-job-[0-9a-f]+) \(2048 bytes")
        name = kept.stderr.split("dataset ")[1].split()[0]
        self.assertIn(f"kiln data delete {name}", kept.stderr)
        self.assertIn(name, self.kiln("data", "list", session=s).stdout)
        # The kept dataset reads back as the same predictions, then is freed.
        self.kiln("data", "read", name, f"--output={self.path('kept.npy')}", session=s)
        np.testing.assert_allclose(np.load(self.path("kept.npy")), np.load(self.path("p.npy")),
                                   rtol=1e-6)
        self.assertEqual(self.kiln("data", "delete", name, session=s).stdout,
                         f"deleted dataset {name}\n")
        self.assertNotIn(name, self.kiln("data", "list", session=s).stdout)
        detached = self.kiln("predict", "--dataset=train", "--detach", session=s)
        self.assertRegex(detached.stdout, r"^job-[0-9a-f]+\n$")
        self.assertIn("kiln data read predictions-job-", detached.stderr)
        self.assertIn("kiln data delete predictions-job-", detached.stderr)

    def test_data_read_writes_the_array_it_was_given(self):
        s = self.trained_session()
        self.kiln("data", "read", "train", f"--output={self.path('x_back.npy')}", session=s)
        np.testing.assert_array_equal(np.load(self.path("x_back.npy")), np.load(self.x_path))
        self.kiln("data", "read", "train", "--array=y", f"--output={self.path('y_back.npy')}",
                  session=s)
        np.testing.assert_array_equal(np.load(self.path("y_back.npy")),
                                      np.load(self.path("y.npy")))
        run = self.kiln("data", "read", "nope", f"--output={self.path('n.npy')}", session=s,
                        expect=1)
        self.assertIn("NOT_FOUND", run.stderr)
        self.assertFalse(os.path.exists(self.path("n.npy")))

    def test_weights_round_trip_as_npy_files(self):
        s = self.trained_session()
        out_dir = self.path("weights")
        os.makedirs(out_dir, exist_ok=True)
        got = self.kiln("weights", "get", "dw", f"--output_dir={out_dir}", session=s).stdout
        self.assertIn("kernel: (3, 3, 1, 4)", got)  # Keras layout (kh, kw, C, M)
        kernel = np.load(os.path.join(out_dir, "dw.kernel.npy"))
        self.assertEqual(kernel.shape, (3, 3, 1, 4))
        new_kernel = self.path("k.npy")
        np.save(new_kernel, np.arange(36, dtype=np.float32).reshape(3, 3, 1, 4))
        self.assertEqual(self.kiln("weights", "set", "dw", f"kernel={new_kernel}",
                                   session=s).stdout, "set kernel of layer dw\n")
        self.kiln("weights", "get", "dw", f"--output_dir={out_dir}", session=s)
        np.testing.assert_array_equal(np.load(os.path.join(out_dir, "dw.kernel.npy")),
                                      np.load(new_kernel))
        wrong = self.path("wrong.npy")
        np.save(wrong, np.zeros((2, 2), np.float32))
        run = self.kiln("weights", "set", "dw", f"kernel={wrong}", session=s, expect=1)
        self.assertIn("weights[0].tensor", run.stderr)
        self.assertIn("(3, 3, 1, 4)", run.stderr)
        self.assertIn("is not WEIGHT=FILE.npy",
                      self.kiln("weights", "set", "dw", "kernel", session=s, expect=2).stderr)

    def test_models_can_be_deleted(self):
        s = self.trained_session()
        self.assertEqual(self.kiln("model", "delete", "tiny", session=s).stdout,
                         "deleted model tiny\n")
        self.assertEqual(self.kiln("model", "list", session=s).stdout, "")
        self.assertIn("NOT_FOUND", self.kiln("model", "delete", "tiny", session=s,
                                             expect=1).stderr)

    def test_sessions_with_the_same_seed_train_alike(self):
        weights = []
        for _ in range(2):
            s = self.new_session("--seed=5")
            self.kiln("model", "define", self.path("model.json"), session=s)
            self.kiln("compile", "--learning_rate=0.01", session=s)
            self.kiln("data", "upload", "--name=train", f"--x={self.x_path}",
                      f"--y={self.path('y.npy')}", session=s)
            self.kiln("fit", "--dataset=train", "--epochs=2", session=s)
            out_dir = self.path(f"seeded-{s}")
            os.makedirs(out_dir)
            self.kiln("weights", "get", "out", f"--output_dir={out_dir}", session=s)
            weights.append(np.load(os.path.join(out_dir, "out.kernel.npy")))
            self.kiln("session", "delete", session=s)
        np.testing.assert_array_equal(weights[0], weights[1])


if __name__ == "__main__":
    unittest.main()
