#!/usr/bin/env python3
"""The cost of durable state, as a ratio in the same run: bench/durability_bench against a
kiln-server that keeps its state in a directory (the default) and one started --ephemeral,
alternating round by round, so that both see the same machine. Prints the median over rounds
of each call's p50 and p99 (microseconds) and durable / ephemeral ratios, as JSON."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def start_server(build, state_dir, *flags):
    port_file = os.path.join(state_dir, "port")
    log = open(os.path.join(state_dir, "server.log"), "w")
    process = subprocess.Popen([os.path.join(build, "server/kiln-server"), "--listen=127.0.0.1:0",
                                f"--state_dir={state_dir}", *flags], stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while not os.path.exists(port_file):
        if process.poll() is not None or time.time() > deadline:
            sys.exit(f"kiln-server did not start: see {state_dir}/server.log")
        time.sleep(0.05)
    with open(port_file) as f:
        return process, f"127.0.0.1:{f.read().strip()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", default="build")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    dirs = {mode: tempfile.mkdtemp(prefix=f"kiln-bench-{mode}-") for mode in ("durable",
                                                                            "ephemeral")}
    servers = {"durable": start_server(args.build, dirs["durable"]),
               "ephemeral": start_server(args.build, dirs["ephemeral"], "--ephemeral")}
    results = {mode: [] for mode in servers}
    try:
        for _ in range(args.rounds):
            for mode, (_, address) in servers.items():
                out = subprocess.run([os.path.join(args.build, "bench/durability_bench"),
                                      f"--server={address}", f"--calls={args.calls}"],
                                     check=True, capture_output=True, text=True).stdout
                results[mode].append(json.loads(out))
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
    report = {"rounds": args.rounds, "calls": args.calls}
    for call in ("create_session", "add_layer", "set_weights_1mib"):
        row = {}
        for mode in servers:
            for q in ("p50_us", "p99_us"):
                row[f"{mode}_{q}"] = round(statistics.median(r[call][q] for r in results[mode]), 1)
        for q in ("p50_us", "p99_us"):
            row[f"ratio_{q[:3]}"] = round(row[f"durable_{q}"] / row[f"ephemeral_{q}"], 2)
        report[call] = row
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
