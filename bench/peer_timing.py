"""Timing shared by the PyTorch peers: the median of `iters` calls after `warmup` calls."""
import statistics
import time


def median_ms(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
