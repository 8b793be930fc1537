#!/usr/bin/python3
"""The PyTorch peer for bench/compare_service.py: TinyMobileNet exactly as in
../shared/peers/torch_bench.py (32x32x3 -> Conv 3x3/32 + BN + ReLU -> 4 x [depthwise 3x3 + BN +
ReLU + pointwise + BN + ReLU] (strides 1,2,1,2; channels 64,128,128,256) -> mean -> Linear 10),
batch 64, SGD(0.01, momentum 0.9), cross-entropy, channels_last, at a given thread count.

    /usr/bin/python3 bench/torch_tiny_mobilenet.py --threads 2
"""
import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_timing import median_ms


class DwBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(self.bn1(self.dw(x)))
        return F.relu(self.bn2(self.pw(x)))


class TinyMobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        cfg = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2)]
        self.blocks = nn.Sequential(*[DwBlock(a, b, s) for a, b, s in cfg])
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = self.blocks(x)
        return self.fc(x.mean((2, 3)))


def measure(threads, iters=30, warm=5, batch=64):
    """Median training-step and inference milliseconds, channels_last."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = TinyMobileNet().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(x)

    model.train()
    train_ms = median_ms(step, iters, warm)
    model.eval()
    infer_ms = median_ms(infer, iters, warm)
    return {"threads": threads, "train_step_ms": train_ms, "train_img_s": batch / train_ms * 1e3,
            "infer_ms": infer_ms, "infer_img_s": batch / infer_ms * 1e3}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(measure(args.threads, args.iters)))
