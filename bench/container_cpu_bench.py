#!/usr/bin/python3
"""A fit in Kiln's image limited to one CPU (podman run --cpus=1): kiln-server's default
compute threads (sized from the cgroup quota) against --worker_threads=1 and against
--worker_threads=2 (what the default was before it read the quota, on a 2-CPU machine).
Each row: the median over --runs fits of the time per training step of the README's
MobileNet-style model, batch 64, on random 28x28 images sent inline, and the compute threads
the server's log reports. Needs the image (./scripts/container build) and root.

    /usr/bin/python3 bench/container_cpu_bench.py [--image localhost/kiln:latest]
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "build", "python"))
from kiln_client import Client  # noqa: E402

CONTAINER = os.path.join(REPO, "scripts", "container")
TOKEN = "cpu-bench-token"


def podman(*args):
    """podman's output; a container's own log lines come on stderr, so both."""
    run = subprocess.run([CONTAINER, "podman", *args], capture_output=True, text=True,
                         check=True)
    return run.stdout + run.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_model(session):
    def conv_bn_relu(x, spec):
        _, (x,) = session.add_layer(spec, [x])
        _, (x,) = session.add_layer({"batch_normalization": {}}, [x])
        _, (x,) = session.add_layer({"relu": {}}, [x])
        return x
    image = session.add_input([28, 28, 1])
    x = conv_bn_relu(image, {"conv2d": {"filters": 32, "kernel_size": [3], "padding": "same",
                                        "use_bias": False}})
    for filters, stride in [(64, 1), (128, 2), (128, 2)]:
        x = conv_bn_relu(x, {"depthwise_conv2d": {"kernel_size": [3], "strides": [stride],
                                                  "padding": "same", "use_bias": False}})
        x = conv_bn_relu(x, {"conv2d": {"filters": filters, "kernel_size": [1],
                                        "use_bias": False}})
    _, (x,) = session.add_layer({"global_average_pooling2d": {}}, [x])
    _, (out,) = session.add_layer({"dense": {"units": 10, "activation": "softmax"}}, [x])
    session.create_model([image], [out], name="m")
    session.compile("m", optimizer="adam", loss="sparse_categorical_crossentropy")


class Server:
    """kiln-server in the image with --cpus=1 and `flags`, a session with the model built and
    compiled, and data to fit; warmed by one fit."""

    count = 0

    def __init__(self, image, flags, samples, batch, tokens):
        Server.count += 1
        self.name = f"kiln-cpu-bench-{os.getpid()}-{Server.count}"
        self.samples, self.batch = samples, batch
        port = free_port()
        podman("run", "-d", "--name", self.name, "--cpus=1", "-p", f"127.0.0.1:{port}:50051",
               "-v", f"{tokens}:/etc/kiln/tokens:ro", image, "--ephemeral", *flags)
        client = Client(f"127.0.0.1:{port}", token=TOKEN)
        client.wait_ready(60)
        self.threads = next(json.loads(line)["message"] for line in
                            podman("logs", self.name).splitlines()
                            if line.startswith("{") and "compute thread" in line)
        rng = np.random.default_rng(0)
        self.x = rng.random((samples, 28, 28, 1), dtype=np.float32)
        self.y = rng.integers(0, 10, samples).astype(np.int32)
        self.session = client.create_session("cpu-bench", seed=1)
        build_model(self.session)
        self.fit()

    def fit(self):
        """Seconds per training step of one epoch."""
        start = time.perf_counter()
        self.session.fit("m", x=self.x, y=self.y, epochs=1, batch_size=self.batch, verbose=0)
        return (time.perf_counter() - start) / (self.samples // self.batch)

    def close(self):
        subprocess.run([CONTAINER, "podman", "rm", "-f", "-v", "-t", "0", self.name],
                       capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="localhost/kiln:latest")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    print(f"## A fit in a container with --cpus=1 ({args.samples} samples, batch "
          f"{args.batch_size}, median of {args.runs})\n")
    print("| kiln-server flags | compute threads (its log) | ms per step |\n|---|---|---:|")
    with tempfile.NamedTemporaryFile("w", suffix=".tokens") as tokens:
        tokens.write(f"bench:{hashlib.sha256(TOKEN.encode()).hexdigest()}\n")
        tokens.flush()
        os.chmod(tokens.name, 0o644)
        configs = ([], ["--worker_threads=1"], ["--worker_threads=2"])
        servers = []
        try:
            for flags in configs:
                servers.append(Server(args.image, flags, args.samples, args.batch_size,
                                      tokens.name))
            # Rounds take each server in turn, so that no configuration gets the machine's
            # first or last minutes to itself.
            times = [[] for _ in servers]
            for _ in range(args.runs):
                for server, measured in zip(servers, times):
                    measured.append(server.fit())
            for flags, server, measured in zip(configs, servers, times):
                print(f"| {' '.join(flags) or '(defaults)'} | {server.threads} | "
                      f"{statistics.median(measured) * 1e3:.1f} |")
        finally:
            for server in servers:
                server.close()
        # Two servers of one configuration fitting at once, each in its own --cpus=1
        # container, on this machine's cores.
        print("\n| two containers fitting at once, each with | ms per step (each) |\n|---|---:|")
        for flags in ([], ["--worker_threads=2"]):
            pair = []
            try:
                pair = [Server(args.image, flags, args.samples, args.batch_size, tokens.name)
                        for _ in range(2)]
                measured = []
                for _ in range(args.runs):
                    with concurrent.futures.ThreadPoolExecutor(2) as pool:
                        measured += list(pool.map(lambda server: server.fit(), pair))
                print(f"| {' '.join(flags) or '(defaults)'} | "
                      f"{statistics.median(measured) * 1e3:.1f} |")
            finally:
                for server in pair:
                    server.close()

if __name__ == "__main__":
    main()
