"""Opportunistic micro-batching: requests that are waiting for the model while it is busy are
scored together in one call, so the model's fixed cost per call (pipeline transforms, thread
start-up, AutoGluon's ensemble plumbing) is paid once for all of them. A request that arrives to an
idle model is scored at once: batching never adds waiting, it only fills the time the model was
busy anyway. Rows are validated per request first, so one bad request cannot fail its neighbours."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pandas as pd

from automlops.deploy.bundle import Bundle
from automlops.predict import score_rows

Item = tuple[Bundle, pd.DataFrame, bool, "asyncio.Future[pd.DataFrame]"]


class MicroBatcher:
    def __init__(self, max_rows: int, lanes: int | None = None) -> None:
        self.max_rows = max_rows  # rows per model call (serve.max_rows: one request's worth)
        self.lanes = lanes or os.cpu_count() or 1  # model calls at once, one thread each
        self._queue: asyncio.Queue[Item] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._lane()) for _ in range(self.lanes)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def score(self, bundle: Bundle, x: pd.DataFrame, probabilities: bool) -> pd.DataFrame:
        assert self._queue is not None, "MicroBatcher.start() runs in the app's lifespan"
        done: asyncio.Future[pd.DataFrame] = asyncio.get_running_loop().create_future()
        await self._queue.put((bundle, x, probabilities, done))
        return await done

    async def _lane(self) -> None:
        from starlette.concurrency import run_in_threadpool

        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            rows = len(batch[0][1])
            while not self._queue.empty() and rows < self.max_rows:
                batch.append(self._queue.get_nowait())
                rows += len(batch[-1][1])
            groups: dict[tuple[int, bool], list[Item]] = {}
            for item in batch:  # one model call per served version (a reload may be under way) and answer shape
                groups.setdefault((id(item[0]), item[2]), []).append(item)
            for items in groups.values():
                try:
                    answers = await run_in_threadpool(_score_together, items)
                except Exception as error:  # reaches each waiting request's own error handling
                    answers = [error] * len(items)
                for (_, _, _, done), answer in zip(items, answers):
                    if done.done():
                        continue
                    if isinstance(answer, Exception):
                        done.set_exception(answer)
                    else:
                        done.set_result(answer)


def _score_together(items: list[Item]) -> list[Any]:
    bundle, _, probabilities, _ = items[0]
    frames = [x for _, x, _, _ in items]
    together = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    scored = score_rows(bundle, together, probabilities)
    answers, start = [], 0
    for x in frames:
        answers.append(scored.iloc[start:start + len(x)].set_axis(x.index))
        start += len(x)
    return answers
