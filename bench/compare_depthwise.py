#!/usr/bin/env python3
"""Runs Kiln's DepthwiseConv2D benchmark (bench/depthwise_bench), the bare oneDNN primitives
(same binary) and the PyTorch channels_last peer (bench/torch_depthwise.py) in one run, several
rounds interleaved, for 1 and 2 threads, and prints a Markdown table of medians and ratios.

    bench/compare_depthwise.py --build build --rounds 5
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = ["A_N32_C64_56x56_s1", "B_N64_C32_112x112_s2"]
PASSES = ["fwd_inference", "fwd_training", "bwd_data", "bwd_weights"]


def run_benchmark(binary, name_filter, threads, min_time):
    """One benchmark in a process of its own: earlier benchmarks' memory then cannot affect it."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
                          f"--benchmark_filter=^{name_filter}/"],
                         env=env, check=True, capture_output=True, text=True).stdout
    for b in json.loads(out)["benchmarks"]:
        impl, shape, pass_name = b["name"].split("/")[:3]
        yield impl, shape, pass_name, b["real_time"]  # milliseconds (the benchmark's unit)


def run_torch(threads, iters):
    out = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "torch_depthwise.py"),
                          "--threads", str(threads), "--iters", str(iters)],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        r = json.loads(line)
        yield "pytorch", r["shape"], r["pass"], r["ms"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--min-time", default="0.3")
    parser.add_argument("--torch-iters", type=int, default=30)
    args = parser.parse_args()
    binary = os.path.join(args.build, "bench", "depthwise_bench")
    times = collections.defaultdict(list)  # (impl, shape, pass, threads) -> [ms per round]
    for r in range(args.rounds):
        for t in args.threads:
            print(f"round {r + 1}/{args.rounds}, {t} thread(s)", file=sys.stderr, flush=True)
            for shape in SHAPES:
                for p in PASSES:
                    # Alternate which side runs first, so drift between the two cancels out.
                    sides = ["kiln", "onednn"] if r % 2 == 0 else ["onednn", "kiln"]
                    for side in sides:
                        for impl, sh, pass_name, ms in run_benchmark(
                                binary, f"{side}/{shape}/{p}", t, args.min_time):
                            times[impl, sh, pass_name, t].append(ms)
            for impl, shape, pass_name, ms in run_torch(t, args.torch_iters):
                times[impl, shape, pass_name, t].append(ms)

    print(f"Medians of {args.rounds} interleaved rounds (each round: Google Benchmark mean over "
          f">= {args.min_time} s for Kiln and oneDNN, median of {args.torch_iters} calls for "
          "PyTorch; every Kiln and oneDNN benchmark in a process of its own). Ratios are per round, "
          "then the median.\n")
    print("| shape | pass | threads | Kiln ms | oneDNN ms | PyTorch ms | Kiln / oneDNN | "
          "PyTorch / Kiln |")
    print("|---|---|---|---|---|---|---|---|")
    for t in args.threads:
        for shape in SHAPES:
            for p in PASSES:
                kiln = times.get(("kiln", shape, p, t))
                if not kiln:
                    continue
                onednn = times[("onednn", shape, p, t)]
                torch_times = times.get(("pytorch", shape, p, t))
                ratio_dnnl = statistics.median(k / o for k, o in zip(kiln, onednn))
                torch_ms = f"{statistics.median(torch_times):.2f}" if torch_times else "-"
                ratio_torch = (f"{statistics.median(pt / k for pt, k in zip(torch_times, kiln)):.2f}"
                               if torch_times else "-")
                print(f"| {shape.split('_')[0]} | {p} | {t} | {statistics.median(kiln):.2f} | "
                      f"{statistics.median(onednn):.2f} | {torch_ms} | {ratio_dnnl:.2f} | "
                      f"{ratio_torch} |")


if __name__ == "__main__":
    main()
