"""Pipeline stages in threads: an iterable consumed in a thread of its own, a bounded queue ahead of its consumer.

Decoding (PyAV), encoding (libx264), OpenCV, ONNX Runtime and torch release the GIL, so a chain of such stages
(decode -> segment -> write) keeps the cores busy; the bounded queues keep memory flat however long the clip.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from types import GeneratorType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Items a stage may run ahead of the next one: enough to ride over a slow batch or a keyframe, few enough that a
#: 720p clip holds tens of MB in flight, not a clip's worth.
QUEUE_ITEMS = 16


_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ThreadedStage(Generic[T]):
    """Iterate ``source`` in a thread of its own, ``maxsize`` items ahead of the consumer (a pipeline stage).

    An exception raised by ``source`` is raised by ``next()`` in the consumer. :meth:`close` (also on leaving a
    ``with`` block) stops the thread and waits for it: a consumer that stops early leaves no thread behind.
    """

    def __init__(self, source: Iterable[T], *, maxsize: int = QUEUE_ITEMS, name: str = "stage") -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self._source = source
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, name=f"humanseg-{name}", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as err:  # handed to the consumer, who raises it
            self._put(_Failed(err))
        finally:
            if isinstance(self._source, GeneratorType):
                self._source.close()  # a generator's finally runs here, in its thread; readers stay the owner's

    def __iter__(self) -> ThreadedStage[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failed):
            self._done = True
            raise item.error
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the thread (it finishes the item in hand) and wait for it."""
        self._stop.set()
        self._done = True
        self._thread.join()

    def __enter__(self) -> ThreadedStage[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
