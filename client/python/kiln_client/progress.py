"""Keras-style progress for the jobs a client follows, drawn from their events."""
import sys

from kiln.v1 import jobs_pb2


class Progress:
    """Keras-style progress: a live bar on a terminal; otherwise one line per epoch, and a line
    at least every `interval` seconds in between so that a long epoch is not silent."""

    def __init__(self, out=sys.stdout, interval: float = 10.0):
        self.out = out
        self.tty = out.isatty()
        self.interval = interval
        self.epochs = self.steps = 0
        self.start = self.last_line = None  # seconds, by the server's clock (event times)

    def __call__(self, event: jobs_pb2.JobEvent):
        kind = event.WhichOneof("event")
        now = event.time.ToNanoseconds() / 1e9
        if self.start is None:
            self.start = self.last_line = now
        if kind == "train_begin":
            self.epochs = event.train_begin.epochs
            self.steps = event.train_begin.steps_per_epoch
        elif kind == "epoch_begin":
            self.start = self.last_line = now
            print(f"Epoch {event.epoch_begin.epoch + 1}/{self.epochs}", file=self.out, flush=True)
        elif kind == "batch_end" and event.batch_end.batch + 1 < event.batch_end.steps:
            b = event.batch_end
            done = b.batch + 1
            eta = (now - self.start) * (b.steps - done) / done
            count = f"{done:>{len(str(b.steps))}}/{b.steps}"
            if self.tty:
                bar = ("=" * (30 * done // b.steps) + ">").ljust(30, ".")[:30]
                text = f"\r{count} [{bar}] - ETA: {eta:.0f}s" + self._format(b.logs)
                print(text, end="", file=self.out, flush=True)
            elif now - self.last_line >= self.interval:
                self.last_line = now
                print(f"{count} - ETA: {eta:.0f}s" + self._format(b.logs), file=self.out,
                      flush=True)
        elif kind == "epoch_end":
            e = event.epoch_end
            steps = self.steps
            bar = f" [{'=' * 30}]" if self.tty else ""
            line = (f"{steps}/{steps}{bar} - {e.seconds:.0f}s "
                    f"{1e3 * e.seconds / max(steps, 1):.0f}ms/step" + self._format(e.logs))
            print(("\r" if self.tty else "") + line, file=self.out, flush=True)

    @staticmethod
    def _format(metrics) -> str:
        return "".join(f" - {m.name}: {m.value:.4f}" for m in metrics)
