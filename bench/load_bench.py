#!/usr/bin/python3
"""Load: N concurrent clients (default 32, each its own connection) against one kiln-server
with bearer-token auth and durable state, for a fixed time, on loopback. Each client, as one of
four tenants, loops over a mix: session churn (create, delete), card-by-card building (AddInput,
AddLayer x3, CreateModel), Predict, short fits whose watcher disconnects after the first event
and resumes from its last sequence, and deletes. Prints a Markdown report: requests/s, errors by
status code (any code outside EXPECTED fails the run), p50/p99 per operation, the server's RSS
before, at peak and after every session is deleted, and the state directory's size then.

    /usr/bin/python3 bench/load_bench.py --build build --clients 32 --seconds 60
"""
import argparse
import collections
import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# What a server may keep after every session is gone: allocator caches, gRPC's buffers, and
# oneDNN's primitive cache (bounded by ONEDNN_PRIMITIVE_CACHE_CAPACITY), not the sessions.
RSS_GROWTH_BOUND_MIB = 64

# Refusals a loaded server may rightly give: limits, and a session busy with its own fit.
EXPECTED = {"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION"}


def start_server(build, tokens, *flags):
    """kiln-server on a free loopback port with durable state and `tokens` ({tenant: token});
    returns (process, address, a temporary directory holding state/ and tokens)."""
    state = tempfile.mkdtemp(prefix="kiln-bench-")
    with open(os.path.join(state, "tokens"), "w") as f:
        for tenant, token in tokens.items():
            f.write(f"{tenant}:{hashlib.sha256(token.encode()).hexdigest()}\n")
    server = subprocess.Popen(
        [os.path.join(build, "server", "kiln-server"), "--listen=127.0.0.1:0",
         f"--state_dir={state}/state", f"--auth_tokens_file={state}/tokens", *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = os.path.join(state, "state", "port")
    while not os.path.exists(port):
        if server.poll() is not None:
            raise SystemExit("kiln-server did not start")
        time.sleep(0.05)
    with open(port) as f:
        return server, f"127.0.0.1:{f.read().strip()}", state


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def du_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = collections.defaultdict(list)
        self.errors = collections.Counter()
        self.requests = 0

    def timed(self, kind, call, rpcs=1):
        start = time.perf_counter()
        try:
            return call()
        except KilnError as e:
            with self.lock:
                self.errors[e.code.name] += 1
            raise
        finally:
            with self.lock:
                self.latency[kind].append(time.perf_counter() - start)
                self.requests += rpcs


def client_loop(address, token, stats, stop, seed):
    rng = random.Random(seed)
    client = Client(address, token=token, timeout=60)
    x = np.random.default_rng(seed).random((64, 8, 8, 1), dtype=np.float32)
    y = (np.arange(64) % 3).astype(np.int32)
    session = None

    def build(s):
        image = stats.timed("AddInput", lambda: s.add_input([8, 8, 1]))
        t = image
        for spec in ({"conv2d": {"filters": 4, "kernel_size": [3], "padding": "same"}},
                     {"flatten": {}}, {"dense": {"units": 3, "activation": "softmax",
                                                 "name": "out"}}):
            t = stats.timed("AddLayer", lambda: s.add_layer(spec, inputs=[t]))[1][0]
        stats.timed("CreateModel", lambda: s.create_model([image], [t], name="m"))
        stats.timed("Compile", lambda: s.compile("m", optimizer="adam"))

    while not stop.is_set():
        try:
            if session is None:
                session = stats.timed("CreateSession", lambda: client.create_session(name="load"))
                build(session)
            choice = rng.random()
            if choice < 0.45:
                n = rng.choice([1, 4, 16])
                stats.timed("Predict", lambda: session.predict("m", x[:n]))
            elif choice < 0.60:
                job = stats.timed("StartFit", lambda: session.start_fit(
                    "m", x=x, y=y, epochs=1, batch_size=16))
                seen = 0
                for event in session.watch(job.id):  # disconnects after the first event...
                    seen = event.sequence
                    break
                stats.timed("WatchJob", lambda: list(session.watch(job.id, from_sequence=seen)))
            elif choice < 0.75:
                stats.timed("ListSessions", lambda: client.list_sessions())
            elif choice < 0.88:
                stats.timed("GetWeights", lambda: session.get_weights("out", model="m"))
            else:
                stats.timed("DeleteSession", lambda: session.delete())
                session = None
        except KilnError as e:
            if e.code.name == "NOT_FOUND" or e.code.name in EXPECTED:
                session = None if e.code.name == "NOT_FOUND" else session
                time.sleep(0.01)
                continue
            raise
    if session is not None:
        try:
            session.delete()
        except KilnError:
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rss_growth_bound_mib", type=float, default=RSS_GROWTH_BOUND_MIB,
                        help="most the RSS after every session is deleted may exceed the RSS "
                             "before the run")
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    global Client, KilnError, np
    import numpy as np
    from kiln_client import Client, KilnError

    tokens = {f"tenant{i}": f"load-token-{i}-{os.getpid()}" for i in range(4)}
    server, address, state = start_server(args.build, tokens, "--max_concurrent_jobs=2")
    Client(address, token=tokens["tenant0"]).wait_ready()
    rss_before = rss_kib(server.pid)

    stats, stop = Stats(), threading.Event()
    failures = []

    def run(i):
        try:
            client_loop(address, list(tokens.values())[i % 4], stats, stop, i)
        except Exception as e:  # an unexpected status: the run fails
            failures.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.clients)]
    start = time.time()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.time() - start
    for token in tokens.values():  # every session is deleted
        c = Client(address, token=token)
        for s in c.list_sessions():
            c.session(s.id).delete()
    time.sleep(1.0)
    rss_after, rss_peak = rss_kib(server.pid), rss_kib(server.pid, "VmHWM")
    server.send_signal(signal.SIGTERM)
    code = server.wait(60)
    state_after = du_bytes(os.path.join(state, "state"))
    shutil.rmtree(state, ignore_errors=True)

    print(f"## Load: {args.clients} clients, {args.seconds:g} s, tokens and durable state on\n")
    print(f"- requests: {stats.requests} in {elapsed:.1f} s = {stats.requests / elapsed:.0f}/s")
    errors = ", ".join(f"{k} {v}" for k, v in sorted(stats.errors.items())) or "none"
    print(f"- errors by status: {errors}")
    print(f"- server RSS: {rss_before / 1024:.0f} MiB before, {rss_peak / 1024:.0f} MiB peak, "
          f"{rss_after / 1024:.0f} MiB after every session was deleted (bound: before + "
          f"{args.rss_growth_bound_mib:g} MiB)")
    print(f"- state directory after deletion: {state_after / 1024:.0f} KiB; exit on SIGTERM: "
          f"{code}\n")
    print("| operation | calls | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for kind, values in sorted(stats.latency.items()):
        values.sort()
        p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
        print(f"| {kind} | {len(values)} | {statistics.median(values) * 1e3:.1f} | "
              f"{p99 * 1e3:.1f} |")
    unexpected = set(stats.errors) - EXPECTED - {"NOT_FOUND"}
    over_bound = rss_after - rss_before > args.rss_growth_bound_mib * 1024
    if failures or unexpected or code != 0 or over_bound:
        print("\nFAILED:", failures[:5], sorted(unexpected), f"exit {code}",
              "RSS over its bound" if over_bound else "")
        sys.exit(1)


if __name__ == "__main__":
    main()
