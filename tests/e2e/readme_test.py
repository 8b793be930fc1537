"""End-to-end: README.md's code blocks, run as a reader pastes them.

Every fenced block whose info string is `sh` or `python` is an example, and this test runs it;
blocks marked `text` are synopses and listings. Shell blocks run with `bash -e -o pipefail` from
the repository root, with `build/` meaning the build under test; Python blocks run with Debian's
interpreter against a kiln-server of their own ($KILN_SERVER) and must leave no session behind.
Two blocks are run with a change, said where it is made: `./scripts/test` is what runs this test
and is left out, and the demo trains one epoch rather than eight to fit CI's time.
"""
import os
import re
import subprocess
import tempfile
import unittest

from kiln_e2e import CLI_BIN, KilnServer

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(CLI_BIN)))


def readme_blocks():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)]


def with_build_dir(script: str) -> str:
    """`build/...` paths -> the build under test (build-asan/, a CI build dir, ...)."""
    return re.sub(r"(?<![\w/.-])build/", BUILD + "/", script)


class ReadmeTest(unittest.TestCase):
    def setUp(self):
        self.blocks = readme_blocks()
        self.run_kinds = {"sh", "python"}
        self.assertTrue(any(kind == "sh" for kind, _ in self.blocks))
        self.assertTrue(any(kind == "python" for kind, _ in self.blocks))
        for kind, _ in self.blocks:
            self.assertIn(kind, self.run_kinds | {"text"},
                          "every README block is `sh`, `python` (run here) or `text`")

    def run_sh(self, script: str, env: dict, timeout: float = 900):
        run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=timeout)
        self.assertEqual(run.returncode, 0,
                         f"README block failed:\n{script}\nstdout:\n{run.stdout}\n"
                         f"stderr:\n{run.stderr}")
        return run

    def test_shell_blocks(self):
        with tempfile.TemporaryDirectory() as serve_dir:
            env = dict(os.environ, BUILD_DIR=BUILD, KILN_SERVE_DIR=serve_dir,
                       KILN_LISTEN="127.0.0.1:0",  # port 50051 may be taken on this machine
                       KILN_HTTP_LISTEN="127.0.0.1:0",  # and 8080
                       EPOCHS="1")  # the demo, cut to one epoch for CI
            env.pop("KILN_SERVER", None)
            env.pop("KILN_SESSION", None)
            ran = 0
            for kind, script in self.blocks:
                if kind != "sh":
                    continue
                if script.strip().startswith("./scripts/test"):
                    continue  # it runs this very test
                with self.subTest(block=script.splitlines()[0]):
                    try:
                        run = self.run_sh(with_build_dir(script), env)
                    finally:
                        subprocess.run([os.path.join(REPO, "scripts", "serve"), "stop"],
                                       env=env, capture_output=True)
                    ran += 1
                    if "./scripts/demo" in script:
                        self.assertRegex(run.stdout, r"test accuracy 0\.\d{4}")
                        # The restarted server has the trained model, scoring as it did.
                        self.assertIn("the same as before the restart", run.stdout)
                    if "session create" in script:
                        self.assertIn("deleted", run.stdout)  # the block frees its session
            self.assertGreaterEqual(ran, 2)

    def test_python_blocks(self):
        server = KilnServer().start()
        try:
            env = dict(os.environ, KILN_SERVER=server.address,
                       PYTHONPATH=os.path.join(BUILD, "python"))
            for kind, script in self.blocks:
                if kind != "python":
                    continue
                with self.subTest(block=script.splitlines()[0]):
                    run = subprocess.run(["/usr/bin/python3", "-c", script], cwd=REPO, env=env,
                                         capture_output=True, text=True, timeout=600)
                    self.assertEqual(run.returncode, 0,
                                     f"README block failed:\n{script}\n{run.stdout}\n"
                                     f"{run.stderr}")
                    # Something sensible: a model that trains to a real accuracy.
                    for accuracy in re.findall(r"'accuracy': ([0-9.]+)", run.stdout):
                        self.assertGreater(float(accuracy), 0.8, run.stdout)
                    sessions = subprocess.run([CLI_BIN, "session", "list"], env=env,
                                              capture_output=True, text=True)
                    self.assertEqual(sessions.stdout, "", "the example left a session behind")
        finally:
            self.assertEqual(server.stop(), 0, server.log())
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
