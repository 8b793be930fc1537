"""End-to-end: the card editor in a real browser. kiln-server serves client/web/dist (built by
scripts/build) at / of its HTTP door, and client/web/test/editor.test.mjs drives Debian's
chromium headless through playwright-core: a DepthwiseConv2D model built from cards with its
shapes, a bad argument's error on its field, initializer and regularizer cards wired into its
sockets, one epoch of training on an uploaded dataset with a growing chart and the final
accuracy, a second fit cancelled (its event stream dropped and resumed without losing a point),
a prediction, and Keras files in and out. Its screenshots are kept in the build's
test-results/web/."""
import os
import subprocess
import unittest

from kiln_e2e import KilnServer
from http_gateway_test import http_port

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
WEB_ROOT = os.path.join(REPO, "client", "web", "dist")
ARTIFACTS = os.environ.get("KILN_TEST_ARTIFACTS",
                           os.path.join(REPO, "build", "test-results", "web"))


class WebEditorTest(unittest.TestCase):
    def test_the_editor_builds_trains_and_predicts_in_a_browser(self):
        self.assertTrue(os.path.exists(os.path.join(WEB_ROOT, "index.html")),
                        "client/web/dist is not built: run client/web/build.sh (scripts/build does)")
        # Event streams end every second, so the test sees EventSource resume them.
        server = KilnServer("--http_listen=127.0.0.1:0", f"--web_root={WEB_ROOT}",
                            "--http_max_stream_time=1s", "--worker_threads=1").start()
        try:
            run = subprocess.run(
                ["node", os.path.join(REPO, "client", "web", "test", "editor.test.mjs"),
                 f"http://127.0.0.1:{http_port(server)}", ARTIFACTS],
                capture_output=True, text=True, timeout=600)
            print(run.stdout)
            self.assertEqual(run.returncode, 0,
                             f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}\n"
                             f"screenshots: {ARTIFACTS}")
        finally:
            code = server.stop()
            log = server.log()
            server.cleanup()
        self.assertEqual(code, 0, log)


if __name__ == "__main__":
    unittest.main()
