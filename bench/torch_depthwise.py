#!/usr/bin/python3
"""PyTorch peer for bench/depthwise_bench: depthwise 3x3 forward, backward-data and
backward-weights, channels_last, on the same two shapes. Prints one JSON object per line.

Run with Debian's interpreter (python3-torch): /usr/bin/python3 bench/torch_depthwise.py --threads 2
"""
import argparse
import json

import torch
import torch.nn.functional as F

from peer_timing import median_ms

SHAPES = {"A_N32_C64_56x56_s1": (32, 64, 56, 56, 1), "B_N64_C32_112x112_s2": (64, 32, 112, 112, 2)}


def bench(name, threads, iters, warmup):
    n, c, h, w, s = SHAPES[name]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c, 1, 3, 3)
    # padding=1 gives TF "same"'s output size for both shapes (only the pad placement differs).
    oh, ow = (h + s - 1) // s, (w + s - 1) // s
    grad = torch.randn(n, c, oh, ow).contiguous(memory_format=torch.channels_last)

    def forward():
        with torch.no_grad():
            return F.conv2d(x, weight, stride=s, padding=1, groups=c)

    def backward(mask):
        return torch.ops.aten.convolution_backward(grad, x, weight, None, [s, s], [1, 1], [1, 1],
                                                   False, [0, 0], c, mask)

    assert forward().shape == (n, c, oh, ow)
    results = {
        "fwd_inference": median_ms(forward, iters, warmup),
        "bwd_data": median_ms(lambda: backward([True, False, False]), iters, warmup),
        "bwd_weights": median_ms(lambda: backward([False, True, False]), iters, warmup),
    }
    for pass_name, ms in results.items():
        print(json.dumps({"peer": "pytorch", "shape": name, "pass": pass_name, "threads": threads,
                          "ms": ms}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    for t in args.threads:
        for shape in SHAPES:
            bench(shape, t, args.iters, args.warmup)
