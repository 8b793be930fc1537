"""Reads a gRPC response stream on a thread of its own, so that Ctrl-C lands in the reader's
queue wait and never inside grpc's own code.

A KeyboardInterrupt raised while the main thread waits inside grpc's stream iterator can leave
that call's internal state half-updated, and a later cancel or channel close on it can then
hang (grpc/grpc#19973 is one such case); the watch of a fit is where users press Ctrl-C.
"""
import queue
import threading
from typing import Iterator

_END = object()


class BackgroundStream:
    """Iterates `call` (a grpc response stream) from a daemon thread.

    Iterating yields the call's messages in order and raises its grpc.RpcError at the place it
    occurred; close() cancels the call, after which the reader thread ends by itself."""

    def __init__(self, call):
        self._call = call
        self._items: "queue.SimpleQueue" = queue.SimpleQueue()
        threading.Thread(target=self._read, name="kiln-stream-reader", daemon=True).start()

    def _read(self):
        try:
            for message in self._call:
                self._items.put(message)
            self._items.put(_END)
        except BaseException as e:  # grpc.RpcError, or a message that does not parse
            self._items.put(e)

    def __iter__(self) -> Iterator:
        while True:
            # SimpleQueue.get blocks in C with the lock wait open to signals: Ctrl-C raises here.
            item = self._items.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        self._call.cancel()
