"""The one thread that may touch PKCS#11 in this process.

Why: python-pkcs11 calls ``C_Initialize(NULL)`` (no ``CKF_OS_LOCKING_OK``), so SoftHSM2 turns
its mutexes off, yet python-pkcs11 releases the GIL around every ``C_*`` call. Concurrent
calls, even on one shared session, crash the process (segfault, "double free"). So every
PKCS#11 call (library load, token lookup, login, find, encrypt, decrypt, generate, close)
runs on this single thread, in submission order, whichever thread or event loop asked.

Cheap per call: jobs go through a lock-free queue, and the thread drains everything queued
and hands results back with one ``call_soon_threadsafe`` per event loop per batch, so busy
loops pay one wake-up for many calls (about 2.5x a ``ThreadPoolExecutor`` under load).

The library must not be used in a child forked after initialisation: :func:`call` refuses.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from kvault.errors import HSMError

P = ParamSpec("P")
T = TypeVar("T")

THREAD_NAME = "kvault-pkcs11"

# (loop, future, job) or None to stop.
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]
_Done = tuple["asyncio.Future[Any]", bool, Any]

_lock = threading.Lock()
_queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_forked_after_use = False


def _deliver(results: list[_Done]) -> None:
    for fut, ok, value in results:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def _run() -> None:
    while True:
        batch = [_queue.get()]
        while True:
            try:
                batch.append(_queue.get_nowait())
            except queue.Empty:
                break
        by_loop: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
        stop = False
        for item in batch:
            if item is None:
                stop = True
                continue
            loop, fut, job = item
            try:
                done: _Done = (fut, True, job())
            except BaseException as e:  # handed to the awaiting task, the thread lives on
                done = (fut, False, e)
            by_loop.setdefault(loop, []).append(done)
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # closed loop: nobody is waiting
                loop.call_soon_threadsafe(_deliver, results)
        if stop:
            return


def _stop() -> None:
    thread = _thread
    if thread is not None and thread.is_alive():
        _queue.put(None)
        thread.join(timeout=10)


def _after_fork_in_child() -> None:
    global _thread, _forked_after_use, _queue
    _forked_after_use = _forked_after_use or _thread is not None
    _thread = None  # it does not exist in the child
    _queue = queue.SimpleQueue()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _ensure_thread() -> None:
    global _thread
    if _forked_after_use:
        raise HSMError(
            "PKCS#11 was initialised before this process forked and cannot be used in the "
            "child; create HSM plugins in the process that uses them"
        )
    if _thread is None:
        with _lock:
            if _thread is None:
                # Daemon, so a blocked get() never holds up exit; atexit stops it cleanly.
                thread = threading.Thread(target=_run, name=THREAD_NAME, daemon=True)
                thread.start()
                atexit.register(_stop)
                _thread = thread


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` on the PKCS#11 thread without blocking the event loop."""
    _ensure_thread()
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()
    _queue.put((loop, fut, functools.partial(fn, *args, **kwargs)))
    return await fut


def require_worker_thread() -> None:
    """Guard for code that touches pkcs11 objects: a call from elsewhere may crash later."""
    if threading.current_thread() is not _thread:
        raise HSMError(f"internal error: PKCS#11 called outside the {THREAD_NAME} thread")
