"""Shared harness for the end-to-end tests: starts the real kiln-server binary on a free
loopback port and stops it with SIGTERM, checking that it shuts down cleanly.

The binaries come from the environment the CMake test sets: KILN_SERVER_BIN and KILN_CLI_BIN;
build/python (generated API modules and kiln_client) must be on PYTHONPATH.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import numpy as np

SERVER_BIN = os.environ.get("KILN_SERVER_BIN", "build/server/kiln-server")
CLI_BIN = os.environ.get("KILN_CLI_BIN", "build/client/kiln")


def make_data(n=256, seed=0):
    """(n, 8, 8, 1) images, class 1 when the left half is brighter than the right: easy to
    learn, so accuracy after a few epochs shows that training really trains."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1), dtype=np.float32)
    y = (x[:, :, :4].mean(axis=(1, 2, 3)) > x[:, :, 4:].mean(axis=(1, 2, 3))).astype(np.int32)
    x[:, :, :4] += 0.5 * (2 * y[:, None, None, None] - 1)
    return x, y


class KilnServer:
    """A kiln-server process. `address` is host:port once start() returns. It keeps its state
    in a fresh temporary directory; restart() starts it again on the same state."""

    def __init__(self, *flags: str, env=None, command_prefix=()):
        self.flags = list(flags)
        self.env = env
        self.command_prefix = list(command_prefix)  # e.g. setpriv, to run it as another user
        self.state_dir = tempfile.mkdtemp(prefix="kiln-e2e-")
        self.log_path = os.path.join(self.state_dir, "server.log")
        self.process = None
        self.address = ""

    def start(self, env=None) -> "KilnServer":
        port_file = os.path.join(self.state_dir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.command_prefix +
                [SERVER_BIN, "--listen=127.0.0.1:0", f"--state_dir={self.state_dir}"] +
                self.flags, stdout=log, stderr=subprocess.STDOUT,
                env=env if env is not None else self.env)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if self.process.poll() is not None:
                raise RuntimeError(f"kiln-server exited {self.process.returncode}:\n{self.log()}")
            if time.time() > deadline:
                raise RuntimeError(f"kiln-server did not start:\n{self.log()}")
            time.sleep(0.05)
        with open(port_file) as f:
            self.address = f"127.0.0.1:{f.read().strip()}"
        return self

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def kill(self) -> int:
        """SIGKILL, as a crash or an OOM kill would stop it; returns the exit status."""
        self.process.kill()
        code = self.process.wait()
        self.process = None
        return code

    def wait_exit(self, timeout: float = 30) -> int:
        """Waits for a server that is stopping by itself (a failpoint's abort)."""
        code = self.process.wait(timeout)
        self.process = None
        return code

    def restart(self, env=None) -> "KilnServer":
        if self.process is not None:
            self.stop()
        return self.start(env)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit status (the process is killed if it overstays `timeout`)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = -signal.SIGKILL
        self.process = None
        return code

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """One kiln-server for the whole class; it must exit 0 on SIGTERM at the end."""

    server_flags = ()
    server_env = None  # the server's environment; None: the tests' own

    @classmethod
    def setUpClass(cls):
        cls.server = KilnServer(*cls.server_flags, env=cls.server_env).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        log = cls.server.log()
        cls.server.cleanup()
        if code != 0:
            raise AssertionError(f"kiln-server exited {code} on SIGTERM:\n{log}")


# A small DepthwiseConv2D classifier over 8x8 images; separable data makes its accuracy a
# meaningful check that training through the CLI really trains.
MODEL = {
    "name": "tiny",
    "nodes": [
        {"id": "image", "input": {"shape": [8, 8, 1]}},
        {"id": "dw", "layer": {"depthwise_conv2d": {"kernel_size": [3], "padding": "same",
                                                    "depth_multiplier": 4}},
         "inputs": ["image"]},
        {"id": "relu", "layer": {"relu": {}}, "inputs": ["dw"]},
        {"id": "flat", "layer": {"flatten": {}}, "inputs": ["relu"]},
        {"id": "out", "layer": {"dense": {"units": 2, "activation": "softmax"}},
         "inputs": ["flat"]},
    ],
}


class CliTestCase(ServerTestCase):
    """Drives the `kiln` CLI as a user would from a shell (stdout piped, so progress comes as
    plain lines) against the class's server, with x.npy, y.npy (make_data) and model.json
    (MODEL) in a temporary directory."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.TemporaryDirectory()
        x, y = make_data()
        cls.x_path = cls.path("x.npy")
        np.save(cls.x_path, x)
        np.save(cls.path("y.npy"), y)
        with open(cls.path("model.json"), "w") as f:
            json.dump(MODEL, f)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()
        super().tearDownClass()

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir.name, name)

    def env(self, session=None):
        env = dict(os.environ, KILN_SERVER=self.server.address)
        env.pop("KILN_SESSION", None)
        if session:
            env["KILN_SESSION"] = session
        return env

    def kiln(self, *args, session=None, expect=0, timeout=300, env=None):
        run = subprocess.run([CLI_BIN, *args], env=env or self.env(session),
                             capture_output=True, text=True, timeout=timeout)
        self.assertEqual(run.returncode, expect,
                         f"kiln {' '.join(args)}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}")
        return run

    def new_session(self, *flags):
        session = self.kiln("session", "create", "--name=cli-e2e", *flags).stdout.strip()
        self.assertRegex(session, r"^[0-9a-z-]+$")
        return session

    def trained_session(self):
        s = self.new_session()
        self.kiln("model", "define", self.path("model.json"), session=s)
        self.kiln("compile", "--model=tiny", "--optimizer=adam", "--learning_rate=0.01",
                  session=s)
        self.kiln("data", "upload", "--name=train", f"--x={self.x_path}",
                  f"--y={self.path('y.npy')}", session=s)
        return s
