"""End-to-end: the Python client installed as a package, outside the source tree - from the
wheel the build makes (build/dist) and from the repository's client/python with pip (its
setup.py generating the API modules) - into a fresh virtual
environment (it sees Debian's grpcio, protobuf and numpy: no index is reachable), then used
from another directory against a real kiln-server."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from kiln_e2e import CLI_BIN, ServerTestCase

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(CLI_BIN)))
REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

SCRIPT = """
import sys
import kiln_client
from kiln_client import Client
assert kiln_client.__file__.startswith(sys.prefix), kiln_client.__file__
client = Client(sys.argv[1])
with client.create_session("installed") as session:
    tensor = session.add_input([4])
    print("input", list(tensor.shape))
print("from", kiln_client.__file__)
"""


class PythonPackageTest(ServerTestCase):
    def install_and_use(self, source):
        with tempfile.TemporaryDirectory() as venv, tempfile.TemporaryDirectory() as elsewhere:
            subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                           check=True)
            python = os.path.join(venv, "bin", "python")
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            # README's command: dependencies come from Debian's packages, nothing from the network.
            install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-index",
                                      "--no-build-isolation", source],
                                     env=env, capture_output=True, text=True, cwd=elsewhere)
            self.assertEqual(install.returncode, 0, install.stderr)
            run = subprocess.run([python, "-c", SCRIPT, self.server.address], env=env,
                                 capture_output=True, text=True, cwd=elsewhere, timeout=120)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("input [None, 4]", run.stdout)  # with its batch dimension
            self.assertIn(os.path.join(venv, "lib"), run.stdout)

    def test_the_wheel(self):
        wheels = glob.glob(os.path.join(BUILD, "dist", "kiln_client-*-py3-none-any.whl"))
        self.assertEqual(len(wheels), 1, wheels)
        self.install_and_use(wheels[0])

    def test_the_repository(self):
        # A copy, so that pip's in-tree build leaves the checkout as it was.
        with tempfile.TemporaryDirectory() as repo:
            for part in ("client/python/kiln_client", "proto"):
                shutil.copytree(os.path.join(REPO, part), os.path.join(repo, part))
            for part in ("client/python/pyproject.toml", "client/python/setup.py",
                         "CMakeLists.txt"):
                shutil.copy(os.path.join(REPO, part), os.path.join(repo, part))
            self.install_and_use(os.path.join(repo, "client", "python"))


if __name__ == "__main__":
    unittest.main()
