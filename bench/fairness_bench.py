#!/usr/bin/python3
"""Fairness: how long one tenant's batch-1 Predict takes while another tenant keeps the server
busy with batch-512 Predicts, from several threads on one session and on one session per
thread. kiln-server runs with tokens and durable state on loopback. Prints a Markdown table of
the light tenant's p50/p99 alone and under each load, and the heavy tenant's throughput.

    /usr/bin/python3 bench/fairness_bench.py --build build --heavy_threads 6 --calls 40
"""
import argparse
import os
import signal
import statistics
import shutil
import sys
import threading
import time

from load_bench import start_server

LAYERS = ({"conv2d": {"filters": 32, "kernel_size": [3], "padding": "same",
                      "activation": "relu"}},
          {"conv2d": {"filters": 32, "kernel_size": [3], "padding": "same",
                      "activation": "relu"}},
          {"flatten": {}}, {"dense": {"units": 10, "activation": "softmax"}})


def build_model(session):
    image = session.add_input([28, 28, 1])
    t = image
    for spec in LAYERS:
        t = session.add_layer(spec, inputs=[t])[1][0]
    session.create_model([image], [t], name="m")
    return session


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def light_latencies(session, x, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        session.predict("m", x)
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--heavy_threads", type=int, default=6)
    parser.add_argument("--heavy_batch", type=int, default=512)
    parser.add_argument("--calls", type=int, default=40, help="light Predicts per phase")
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    import numpy as np
    from kiln_client import Client

    tokens = {"heavy": f"heavy-{os.getpid()}", "light": f"light-{os.getpid()}"}
    server, address, state = start_server(args.build, tokens)
    heavy = Client(address, token=tokens["heavy"], timeout=600)
    light = Client(address, token=tokens["light"], timeout=600)
    heavy.wait_ready()
    rng = np.random.default_rng(0)
    x_heavy = rng.random((args.heavy_batch, 28, 28, 1), dtype=np.float32)
    x_light = x_heavy[:1]
    light_session = build_model(light.create_session(name="light"))
    shared = build_model(heavy.create_session(name="heavy-shared"))
    own = [build_model(heavy.create_session(name=f"heavy-{i}"))
           for i in range(args.heavy_threads)]
    for s in [light_session, shared, *own]:
        s.predict("m", x_light)  # plans built before measuring

    rows = [("alone", light_latencies(light_session, x_light, args.calls), None)]
    for label, sessions in ((f"{args.heavy_threads} threads on one heavy session",
                             [shared] * args.heavy_threads),
                            (f"{args.heavy_threads} threads on a session each", own)):
        stop, done = threading.Event(), [0]
        lock = threading.Lock()

        def hammer(s):
            while not stop.is_set():
                s.predict("m", x_heavy)
                with lock:
                    done[0] += 1

        threads = [threading.Thread(target=hammer, args=(s,)) for s in sessions]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the heavy tenant's calls are queued and running
        with lock:
            before = done[0]
        start = time.perf_counter()
        times = light_latencies(light_session, x_light, args.calls)
        elapsed = time.perf_counter() - start
        with lock:
            finished = done[0] - before
        stop.set()
        for t in threads:
            t.join()
        rows.append((label, times, finished * args.heavy_batch / elapsed))

    server.send_signal(signal.SIGTERM)
    server.wait(60)
    shutil.rmtree(state, ignore_errors=True)
    print(f"## Fairness: light tenant's batch-1 Predict ({args.calls} calls) while a heavy "
          f"tenant runs batch-{args.heavy_batch} Predicts\n")
    print("| heavy load | light p50 ms | light p99 ms | heavy images/s |\n|---|---:|---:|---:|")
    for label, times, rate in rows:
        print(f"| {label} | {statistics.median(times) * 1e3:.1f} | "
              f"{percentile(times, 0.99) * 1e3:.1f} | {'' if rate is None else f'{rate:.0f}'} |")


if __name__ == "__main__":
    main()
