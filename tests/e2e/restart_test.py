"""End-to-end: the `kiln` CLI and the Python client across restarts of kiln-server - sessions,
models, weights and datasets come back; a fit the restart interrupted resumes (`kiln jobs
resume`, Session.resume) and its checkpoints can be listed, restored and deleted."""
import subprocess
import unittest

import numpy as np

from kiln.v1 import jobs_pb2
from kiln_client import Client, KilnError
from kiln_e2e import CLI_BIN, CliTestCase

EPOCHS = 60


class RestartTest(CliTestCase):
    def interrupted_fit(self, session):
        """A fit with checkpoints every 2 batches, interrupted by a restart of the server."""
        job = self.kiln("fit", "--dataset=train", f"--epochs={EPOCHS}", "--batch_size=8",
                        "--checkpoint_every_batches=2", "--keep_checkpoints=5", "--detach",
                        session=session).stdout.strip()
        client = Client(self.server.address)
        while client.session(session).job(job).epoch < 1:
            pass
        self.server.restart()
        return job

    def test_the_cli_resumes_a_fit_that_a_restart_interrupted(self):
        s = self.trained_session()
        job = self.interrupted_fit(s)
        self.assertIn('"tiny"', self.kiln("session", "show", session=s).stdout)
        self.assertRegex(self.kiln("jobs", "list", session=s).stdout, rf"{job} +fit +tiny +interrupted")
        listed = self.kiln("checkpoints", "list", job, session=s).stdout.splitlines()
        self.assertEqual(len(listed), 5)
        self.assertRegex(listed[-1], r"shutdown, \d+ bytes\)$")
        newest = int(listed[-1].split()[0])

        resumed = self.kiln("jobs", "resume", job, session=s)
        self.assertRegex(resumed.stdout.splitlines()[0],
                         rf"^{job} resumed from checkpoint {newest}: epoch \d+/{EPOCHS}, batch \d+$")
        self.assertIn(f"Epoch {EPOCHS}/{EPOCHS}", resumed.stdout)
        self.assertRegex(self.kiln("jobs", "list", session=s).stdout, rf"{job} +fit +tiny +succeeded")
        # Done: nothing to resume; its checkpoints stay until deleted.
        again = self.kiln("jobs", "resume", job, session=s, expect=1)
        self.assertIn("is SUCCEEDED; only an INTERRUPTED, FAILED or CANCELLED fit", again.stderr)
        oldest = int(self.kiln("checkpoints", "list", job, session=s).stdout.split()[0])
        restored = self.kiln("checkpoints", "restore", job, str(oldest), session=s)
        self.assertRegex(restored.stdout, rf"^restored checkpoint +{oldest} ")
        self.kiln("checkpoints", "delete", job, str(oldest), session=s)
        self.assertNotIn(f"{oldest:3d}  ", self.kiln("checkpoints", "list", job, session=s).stdout)
        bad = self.kiln("checkpoints", "delete", job, "first", session=s, expect=2)
        self.assertIn("a checkpoint number is a positive integer", bad.stderr)
        gone = self.kiln("checkpoints", "restore", job, str(oldest), session=s, expect=1)
        self.assertIn(f"has no checkpoint {oldest}", gone.stderr)

    def test_a_fit_followed_through_a_restart_says_how_to_resume_it(self):
        s = self.trained_session()
        fit = self.start_fit_process(s)
        client = Client(self.server.address)
        job = None
        while job is None or client.session(s).job(job).epoch < 1:
            jobs = client.session(s).jobs()
            job = jobs[0].id if jobs else None
        self.server.restart()
        out, err = fit.communicate(timeout=120)
        self.assertEqual(fit.returncode, 1, err)
        self.assertIn(f"job {job} interrupted", err)
        self.assertIn(f"`kiln jobs resume {job}` continues it", err)

    def start_fit_process(self, session):
        return subprocess.Popen([CLI_BIN, "fit", "--dataset=train", "--epochs=400",
                                 "--batch_size=8"], env=self.env(session), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def test_the_python_client_resumes_and_restores(self):
        s = self.trained_session()
        job = self.interrupted_fit(s)
        session = Client(self.server.address).session(s)
        self.assertEqual(session.job(job).state, jobs_pb2.INTERRUPTED)
        checkpoints = session.checkpoints(job)
        self.assertEqual(checkpoints[-1].reason, "shutdown")
        history = session.resume(job, verbose=0)
        self.assertEqual(len(history["loss"]), EPOCHS)
        self.assertEqual(session.job(job).resumes, 1)
        trained = session.get_weights("out", model="tiny")
        first = session.checkpoints(job)[0]
        self.assertEqual(session.restore_checkpoint(job, first.number).number, first.number)
        restored = session.get_weights("out", model="tiny")
        self.assertFalse(np.array_equal(restored["kernel"], trained["kernel"]))
        session.restore_checkpoint(job)  # the newest: the fit's end
        np.testing.assert_array_equal(session.get_weights("out", model="tiny")["kernel"],
                                      trained["kernel"])
        with self.assertRaises(KilnError) as refused:
            session.start_resume(job)
        self.assertEqual(refused.exception.code.name, "FAILED_PRECONDITION")
        session.delete_checkpoint(job, first.number)
        self.assertNotIn(first.number, [c.number for c in session.checkpoints(job)])
        # The weights survive a restart as the last call left them.
        self.server.restart()
        again = Client(self.server.address).session(s).get_weights("out", model="tiny")
        np.testing.assert_array_equal(again["kernel"], trained["kernel"])


if __name__ == "__main__":
    unittest.main()
