#!/usr/bin/python3
"""Kiln through its gRPC API vs PyTorch, in one run: starts kiln-server with --worker_threads=T
for each thread count, runs bench/service_bench (TinyMobileNet training and batch-64 Predict)
and the PyTorch channels_last peer (bench/torch_tiny_mobilenet.py) alternately for several
rounds, and prints a Markdown table of medians and of the per-round Kiln/PyTorch ratios; then
Predict latency (batch 1 and 64) and RPCs/s with 8 concurrent clients.

    /usr/bin/python3 bench/compare_service.py --build build --rounds 5
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_tiny_mobilenet  # noqa: E402  (the peer, measured in this process)


class Server:
    def __init__(self, build, threads, extra=()):
        self.state = tempfile.mkdtemp(prefix="kiln-bench-")
        self.process = subprocess.Popen(
            [os.path.join(build, "server", "kiln-server"), "--listen=127.0.0.1:0",
             f"--state_dir={self.state}", f"--worker_threads={threads}", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = os.path.join(self.state, "port")
        while not os.path.exists(port):
            if self.process.poll() is not None:
                raise RuntimeError("kiln-server did not start")
            time.sleep(0.05)
        with open(port) as f:
            self.address = f"127.0.0.1:{f.read().strip()}"

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def service_bench(build, address, modes, *flags):
    out = subprocess.run([os.path.join(build, "bench", "service_bench"), f"--server={address}",
                          f"--modes={modes}", *flags], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--torch-iters", type=int, default=30)
    args = parser.parse_args()

    print("| threads | | Kiln (service) | PyTorch | Kiln/PyTorch |")
    print("|---|---|---|---|---|")
    for t in args.threads:
        server = Server(args.build, t)
        rows = {"train": ([], [], []), "infer": ([], [], [])}
        try:
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds}, {t} thread(s)", file=sys.stderr, flush=True)
                # Alternate which side goes first, so drift between the two cancels out.
                order = ["kiln", "torch"] if r % 2 == 0 else ["torch", "kiln"]
                for side in order:
                    if side == "kiln":
                        kiln = service_bench(args.build, server.address, "train,infer")
                    else:
                        peer = torch_tiny_mobilenet.measure(t, args.torch_iters)
                for key in rows:
                    k, p = kiln[f"{key}_img_s"], peer[f"{key}_img_s"]
                    rows[key][0].append(k)
                    rows[key][1].append(p)
                    rows[key][2].append(k / p)
        finally:
            server.stop()
        for key, label in (("train", "training img/s"), ("infer", "inference img/s (Predict, batch 64)")):
            k, p, ratio = (statistics.median(v) for v in rows[key])
            print(f"| {t} | {label} | {k:.0f} | {p:.0f} | {ratio:.2f} |", flush=True)

    # Latency and throughput of the Predict RPC, at the largest thread count.
    t = max(args.threads)
    server = Server(args.build, t)
    try:
        results = [service_bench(args.build, server.address, "latency,infer,rps")
                   for _ in range(max(1, args.rounds // 2))]
    finally:
        server.stop()
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print()
    print(f"Predict RPC on loopback, {t} compute thread(s), medians of {len(results)} runs:")
    print()
    print("| | p50 ms | p99 ms |")
    print("|---|---|---|")
    print(f"| batch 1 | {med['predict1_p50_ms']:.2f} | {med['predict1_p99_ms']:.2f} |")
    print(f"| batch 64 | {med['predict64_p50_ms']:.2f} | {med['predict64_p99_ms']:.2f} |")
    print(f"| {med['rps_clients']:.0f} concurrent clients, batch 1: {med['rps']:.0f} RPCs/s | "
          f"{med['rps_p50_ms']:.2f} | {med['rps_p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
