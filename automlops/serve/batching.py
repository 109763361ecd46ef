"""Opportunistic micro-batching: requests that are waiting for the model while it is busy are
scored together in one call, so the model's fixed cost per call (pipeline transforms, thread
start-up, AutoGluon's ensemble plumbing) is paid once for all of them. A request that arrives to an
idle model is scored at once: batching never adds waiting, it only fills the time the model was
busy anyway. Rows are validated per request first, so one bad request cannot fail its neighbours;
requests typed in plain Python (contract.TypedRows) share one model frame, built once per batch.

A small batch for a model that answers it in a few milliseconds (serve.inline_ms, measured on
its own recent calls) is scored on the event loop itself: the hop to a worker thread and back
cost about as much as a LightGBM pipeline's whole one-row prediction, and the loop would only
wait for it anyway. Slow models (AutoGluon ensembles) and large batches go to worker threads, so
the loop stays free for probes and for reading the requests that form the next batch."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np
import pandas as pd

from automlops.bundle import Bundle
from automlops.data.contract import TypedRows, typed_frame
from automlops.scoring import score_arrays

ModelRows = pd.DataFrame | TypedRows  # enforce_contract's frame, or rows typed without pandas
Scores = tuple[np.ndarray, np.ndarray | None]  # labels, and class probabilities when asked
Item = tuple[Bundle, ModelRows, bool, "asyncio.Future[Scores]"]
INLINE_ROWS = 64  # batches up to this many rows may be scored on the event loop (serve.inline_ms)


class MicroBatcher:
    def __init__(self, max_rows: int, inline_ms: float = 0.0, lanes: int | None = None) -> None:
        self.max_rows = max_rows  # rows per model call (serve.max_rows: one request's worth)
        self.inline_seconds = inline_ms / 1000  # a small call expected under this runs on the loop; 0: never
        self.lanes = lanes or os.cpu_count() or 1  # model calls at once, one thread each
        self._queue: asyncio.Queue[Item] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_small: tuple[Bundle, float] | None = None  # the served model and the seconds of its last small call

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._lane()) for _ in range(self.lanes)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def score(self, bundle: Bundle, x: ModelRows, probabilities: bool) -> Scores:
        assert self._queue is not None, "MicroBatcher.start() runs in the app's lifespan"
        done: asyncio.Future[Scores] = asyncio.get_running_loop().create_future()
        await self._queue.put((bundle, x, probabilities, done))
        return await done

    async def _lane(self) -> None:
        from starlette.concurrency import run_in_threadpool

        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            rows = _count(batch[0][1])
            while not self._queue.empty() and rows < self.max_rows:
                batch.append(self._queue.get_nowait())
                rows += _count(batch[-1][1])
            groups: dict[tuple[int, bool], list[Item]] = {}
            for item in batch:  # one model call per served version (a reload may be under way) and answer shape
                groups.setdefault((id(item[0]), item[2]), []).append(item)
            for items in groups.values():
                small = sum(_count(item[1]) for item in items) <= INLINE_ROWS
                try:
                    if small and self._cheap(items[0][0]):
                        answers, seconds = _timed_score(items)
                    else:
                        answers, seconds = await run_in_threadpool(_timed_score, items)
                    if small:
                        self._remember(items[0][0], seconds)
                except Exception as error:  # reaches each waiting request's own error handling
                    answers = [error] * len(items)
                for (_, _, _, done), answer in zip(items, answers):
                    if done.done():
                        continue
                    if isinstance(answer, Exception):
                        done.set_exception(answer)
                    else:
                        done.set_result(answer)

    def _cheap(self, bundle: Bundle) -> bool:
        """True when this model's last small call took less than serve.inline_ms (unknown: False)."""
        last = self._last_small
        return last is not None and last[0] is bundle and last[1] < self.inline_seconds

    def _remember(self, bundle: Bundle, seconds: float) -> None:
        self._last_small = (bundle, seconds)  # a reloaded version replaces the old one's figure


def _timed_score(items: list[Item]) -> tuple[list[Any], float]:
    """_score_together and its wall time, measured where it runs (not the hop to a thread)."""
    started = time.perf_counter()
    answers = _score_together(items)
    return answers, time.perf_counter() - started


def _count(x: ModelRows) -> int:
    return x.count if isinstance(x, TypedRows) else len(x)


def _score_together(items: list[Item]) -> list[Any]:
    bundle, _, probabilities, _ = items[0]
    parts = [x for _, x, _, _ in items]
    labels, proba = score_arrays(bundle, _one_frame(parts, bundle), probabilities)
    answers, start = [], 0
    for part in parts:
        end = start + _count(part)
        answers.append((labels[start:end], None if proba is None else proba[start:end]))
        start = end
    return answers


def _one_frame(parts: list[ModelRows], bundle: Bundle) -> pd.DataFrame:
    """The model frame of every request's rows, in order."""
    typed = [part for part in parts if isinstance(part, TypedRows)]
    if len(typed) == len(parts):
        return typed_frame(typed, bundle.contract)
    frames = [typed_frame([part], bundle.contract) if isinstance(part, TypedRows) else part for part in parts]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
