"""End-to-end: the `kiln` CLI against a real kiln-server process.

Each test drives the CLI as a user would from a shell (stdout piped, so progress comes as
plain lines) and checks its output, exit status and the files it writes.
"""
import json
import unittest

import numpy as np

from kiln_e2e import MODEL, CliTestCase

class CliTest(CliTestCase):
    def test_help_and_usage_errors(self):
        self.assertIn("Usage: kiln COMMAND", self.kiln("--help").stdout)
        self.assertIn("unknown command", self.kiln("frobnicate", expect=2).stderr)
        self.assertIn("--session", self.kiln("model", "list", expect=2).stderr)
        self.assertIn("--dataset", self.kiln("fit", "--model=m", session="s", expect=2).stderr)

    def test_model_may_be_left_out_when_the_session_has_one(self):
        s = self.new_session()
        self.assertIn("no model yet", self.kiln("compile", session=s, expect=2).stderr)
        self.kiln("model", "define", self.path("model.json"), session=s)
        self.assertEqual(self.kiln("compile", session=s).stdout, "compiled tiny\n")
        self.assertIn('Model: "tiny"', self.kiln("model", "summary", session=s).stdout)
        with open(self.path("model.json")) as f:
            other = json.load(f)
        other["name"] = "other"
        with open(self.path("other.json"), "w") as f:
            json.dump(other, f)
        self.kiln("model", "define", self.path("other.json"), session=s)
        run = self.kiln("model", "summary", session=s, expect=2)
        self.assertIn("2 models (other, tiny); choose one with --model", run.stderr)

    def test_health(self):
        self.assertEqual(self.kiln("health").stdout, "SERVING\n")

    def test_unreachable_server_fails_with_unavailable(self):
        run = self.kiln("health", "--server=127.0.0.1:1", expect=1)
        self.assertIn("UNAVAILABLE", run.stderr)

    def test_session_lifecycle(self):
        s = self.new_session()
        self.assertIn(s, self.kiln("session", "list").stdout)
        shown = json.loads(self.kiln("session", "show", session=s).stdout)
        self.assertEqual(shown["name"], "cli-e2e")
        self.assertEqual(self.kiln("session", "delete", session=s).stdout, f"deleted {s}\n")
        run = self.kiln("session", "show", session=s, expect=1)
        self.assertIn("NOT_FOUND", run.stderr)
        self.assertIn(s, run.stderr)

    def test_model_define_prints_keras_summary(self):
        s = self.new_session()
        out = self.kiln("model", "define", self.path("model.json"), session=s).stdout
        self.assertIn("DepthwiseConv2D", out)
        self.assertIn("(None, 8, 8, 4)", out)
        # depthwise 3*3*4 + 4 bias; dense 256*2 + 2.
        self.assertIn("Total params: 554", out)
        self.assertEqual(self.kiln("model", "summary", "--model=tiny", session=s).stdout, out)
        self.assertIn("tiny", self.kiln("model", "list", session=s).stdout)
        # Defining it again without --replace is refused and changes nothing.
        run = self.kiln("model", "define", self.path("model.json"), session=s, expect=1)
        self.assertIn("ALREADY_EXISTS", run.stderr)

    def test_layer_on_wrong_rank_is_refused_naming_the_layer(self):
        s = self.new_session()
        bad = json.loads(json.dumps(MODEL))
        bad["name"] = "bad"
        bad["nodes"][0]["input"]["shape"] = [64]
        path = self.path("bad.json")
        with open(path, "w") as f:
            json.dump(bad, f)
        run = self.kiln("model", "define", path, session=s, expect=1)
        self.assertIn("INVALID_ARGUMENT", run.stderr)
        self.assertIn("dw", run.stderr)
        self.assertIn("ndim=4", run.stderr)  # Keras: "expected ndim=4, found ndim=2"
        self.assertNotIn("bad", self.kiln("model", "list", session=s).stdout)

    def test_fit_before_compile_is_a_failed_precondition(self):
        s = self.new_session()
        self.kiln("model", "define", self.path("model.json"), session=s)
        self.kiln("data", "upload", "--name=train", f"--x={self.x_path}",
                  f"--y={self.path('y.npy')}", session=s)
        run = self.kiln("fit", "--model=tiny", "--dataset=train", session=s, expect=1)
        self.assertIn("FAILED_PRECONDITION", run.stderr)
        self.assertIn("compile", run.stderr)

    def test_fit_evaluate_predict(self):
        s = self.trained_session()
        self.assertIn("train: 256 samples, x (256, 8, 8, 1), y (256)",
                      self.kiln("data", "list", session=s).stdout)
        fit = self.kiln("fit", "--dataset=train", "--epochs=4",
                        "--batch_size=32", "--seed=3", "--validation_split=0.25", session=s)
        lines = fit.stdout.splitlines()
        # Piped: one plain line per epoch, no carriage returns.
        self.assertNotIn("\r", fit.stdout)
        self.assertEqual([l for l in lines if l.startswith("Epoch")],
                         [f"Epoch {i}/4" for i in range(1, 5)])
        epoch_lines = [l for l in lines if l.startswith("6/6 - ")]
        self.assertEqual(len(epoch_lines), 4, fit.stdout)
        for line in epoch_lines:
            for key in ("loss:", "accuracy:", "val_loss:", "val_accuracy:"):
                self.assertIn(key, line)
        last_accuracy = float(epoch_lines[-1].split("accuracy: ")[1].split()[0])
        self.assertGreater(last_accuracy, 0.9, fit.stdout)

        evaluate = self.kiln("evaluate", "--dataset=train", session=s).stdout
        # A progress line for the run (8 batches of 32), then the results.
        self.assertRegex(evaluate, r"^8/8 - \d+s \d+ms/step - loss: [0-9.]+ - accuracy: [0-9.]+\n"
                                   r"loss: [0-9.]+ - accuracy: [0-9.]+\n$")
        self.assertGreater(float(evaluate.splitlines()[1].split("accuracy: ")[1]), 0.9)

        unary = self.path("unary.npy")
        self.kiln("predict", "--model=tiny", f"--input={self.x_path}", f"--output={unary}",
                  session=s)
        p = np.load(unary)
        self.assertEqual(p.shape, (256, 2))
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
        labels = np.load(self.path("y.npy"))
        self.assertGreater((p.argmax(axis=1) == labels).mean(), 0.9)

        batch = self.path("batch.npy")
        out = self.kiln("predict", "--model=tiny", "--dataset=train", f"--output={batch}",
                        "--batch_size=100", session=s).stdout
        self.assertIn(f"wrote {batch}: (256, 2)", out)
        np.testing.assert_allclose(np.load(batch), p, rtol=1e-5, atol=1e-6)
        # Read back, the predictions left the session: nothing counts toward its limit.
        self.assertNotIn("predictions", self.kiln("data", "list", session=s).stdout)

        shown = self.kiln("predict", "--model=tiny", f"--input={self.x_path}", session=s).stdout
        self.assertIn("predictions: (256, 2)", shown)
        self.assertIn("... 246 more rows", shown)

        jobs = self.kiln("jobs", "list", session=s).stdout.splitlines()
        self.assertEqual(len(jobs), 3, jobs)  # fit, evaluate, predict (unary Predict is no job)
        fit_job = jobs[0].split()[0]
        self.assertIn(" fit ", jobs[0])
        self.assertRegex(jobs[0], r"succeeded +epoch 4/4 - loss: ")
        # Watching a finished job replays its events.
        replay = self.kiln("jobs", "watch", fit_job, session=s).stdout
        self.assertEqual(replay.count("Epoch "), 4)
        self.assertIn(f"{fit_job} succeeded", replay)

    def test_data_whose_shape_does_not_match_the_model(self):
        s = self.trained_session()
        wrong = self.path("wrong.npy")
        np.save(wrong, np.zeros((4, 6, 6, 1), np.float32))
        run = self.kiln("predict", "--model=tiny", f"--input={wrong}", session=s, expect=1)
        self.assertIn("INVALID_ARGUMENT", run.stderr)
        self.assertIn("(None, 8, 8, 1)", run.stderr)
        self.assertIn("(4, 6, 6, 1)", run.stderr)

    def test_detached_fit_can_be_watched_and_cancelled(self):
        s = self.trained_session()
        job = self.kiln("fit", "--model=tiny", "--dataset=train", "--epochs=100000",
                        "--batch_size=8", "--detach", session=s).stdout.strip()
        self.assertEqual(self.kiln("jobs", "cancel", job, session=s).stdout.split()[0], job)
        run = self.kiln("jobs", "watch", job, session=s, expect=1)
        self.assertIn(f"{job} cancelled", run.stdout)
        self.assertIn("cancelled", self.kiln("jobs", "list", session=s).stdout)
        # Watching a finished job from past its last event still reports how it ended.
        last = json.loads(self.kiln("jobs", "list", "--json", session=s).stdout)
        last_sequence = last["jobs"][0]["last_sequence"]
        run = self.kiln("jobs", "watch", job, f"--from={last_sequence}", session=s, expect=1)
        self.assertIn(f"{job} cancelled", run.stdout)
        self.assertIn("CANCELLED", run.stderr)


if __name__ == "__main__":
    unittest.main()
