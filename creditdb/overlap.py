"""Overlap of database I/O with computation: read-ahead and write-behind on one thread.

The project's loads and scoring runs keep the database and the CPU busy at the same time
in two shapes, both here and nowhere else:

* :func:`read_ahead`: a background thread produces the next item of an iterator while
  the caller works on the current one (scoring reads the next part of the firms);
* :class:`WriteBehind`: the caller hands a job (writing one chunk) to a background
  thread and prepares the next chunk meanwhile; before the next job starts the previous
  one is finished, so at most one job runs and at most two chunks are in memory.

Both finish any job in flight before they return, also when the caller fails: a
transaction is never rolled back under a running ``COPY``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")
M = TypeVar("M")


def read_ahead(items: Iterator[T], thread_name: str = "creditdb-read-ahead") -> Iterator[T]:
    """Yield ``items`` in order while a thread already produces the next one.

    ``items`` is advanced only from that thread, one item ahead of the caller. When the
    caller stops early (closes this generator or raises) a read in flight is let finish
    and ``items`` is closed if it is a generator. An exception raised by ``items``
    reaches the caller at the item where it happened.
    """
    done = object()
    with ThreadPoolExecutor(1, thread_name_prefix=thread_name) as pool:
        ahead: Future[Any] = pool.submit(next, items, done)
        try:
            while (item := ahead.result()) is not done:
                ahead = pool.submit(next, items, done)
                yield item
        finally:
            if not ahead.cancel():
                ahead.exception()
            close = getattr(items, "close", None)
            if close is not None:
                close()


class WriteBehind(Generic[M]):
    """One background job at a time, tagged with what the caller needs to account for it.

    Use as a context manager::

        with WriteBehind() as behind:
            for chunk in chunks:
                prepared = prepare(chunk)
                if (done := behind.finish()) is not None:
                    account(*done)          # (tag, result) of the previous job
                behind.start(tag, write, prepared)
            if (done := behind.finish()) is not None:
                account(*done)

    :meth:`start` with ``fn=None`` records a tag without a job (its result is None). On
    leaving the block with an exception, a job still running is waited for (its own
    exception is not raised over the caller's).
    """

    def __init__(self, thread_name: str = "creditdb-write-behind") -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=thread_name)
        self._pending: tuple[M, Future[Any] | None] | None = None

    def __enter__(self) -> WriteBehind[M]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is not None and self._pending is not None and self._pending[1] is not None:
                wait_for([self._pending[1]])
        finally:
            self._pending = None
            self._pool.shutdown(wait=True)

    @property
    def pending(self) -> bool:
        """Whether a job (or a tag) was started and not yet finished."""
        return self._pending is not None

    def start(self, tag: M, fn: Callable[..., Any] | None = None, *args: Any) -> None:
        """Run ``fn(*args)`` in the background (``fn=None``: no job); the previous job must be finished."""
        if self._pending is not None:
            raise RuntimeError("WriteBehind.start: finish() the previous job first")
        self._pending = (tag, None if fn is None else self._pool.submit(fn, *args))

    def finish(self) -> tuple[M, Any] | None:
        """Wait for the pending job: ``(tag, result)`` (its exception is raised), or None if none."""
        if self._pending is None:
            return None
        tag, job = self._pending
        try:
            result = None if job is None else job.result()
        finally:
            if job is None or job.done():
                self._pending = None
        return tag, result


__all__ = ["WriteBehind", "read_ahead"]
