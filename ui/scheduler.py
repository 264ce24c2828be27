"""Visitors who press Decode at about the same time share forward passes.

Greedy decodes (temperature 0, a deterministic remasking rule, at most `ShiftAtCommit`s) of one model with
the same settings are collected for `window_s`, left-padded into one batch and decoded together
with `mdlm_viz.stream`: one forward pass per step for the whole batch instead of one per visitor.
A visitor who arrives while a batch with the same settings runs waits for it to end (at most
`max_wait_s`), so a classroom pressing over a second or two shares a second batch.
Each row is exactly what a solo decode of that prompt gives (left padding is masked out; the
tests check tokens and traces), and each visitor still receives its steps as they are computed.
Visitors asking for the very same decode (a class pressing Decode on the same preset) share one
row: a greedy decode is a pure function of its prompt, settings and shifts. One who asks for a decode
that a running batch already computes joins that row at once: it is handed the steps computed so far,
then follows live, so a class pressing over a few seconds costs one decode, not one per wave.
Batches of different models or settings take turns step by step. Everything else (sampling
noise, random remasking, other shifts) decodes alone with its own seed (`SeededDecode`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import queue
import threading
import time
from dataclasses import dataclass, field

import torch

import mdlm_viz as mv
from mdlm_viz.chat import left_pad
from mdlm_viz.trace import Replay

from .models import LoadedModel
from .settings import DecodeSettings

_DONE = object()


def batchable(settings: DecodeSettings, interventions=()) -> bool:
    """Whether a decode gives the same tokens alone and in a batch: no randomness, and no shift
    but `ShiftAtCommit` (a row's own, refused quietly when it cannot apply; a `Shift` that cannot
    apply stops the whole decode, which must not stop other visitors' rows)."""
    return (settings.temperature == 0 and settings.remasking != "random"
            and all(isinstance(iv, mv.ShiftAtCommit) for iv in interventions))


@dataclass
class _Job:
    lm: LoadedModel
    prompt_ids: list[int]
    settings: DecodeSettings
    interventions: tuple = ()  # ShiftAtCommit only, re-addressed to the job's row of the batch
    arrived: float = field(default_factory=time.perf_counter)
    steps: queue.Queue = field(default_factory=queue.Queue)  # Step, then _DONE or an exception
    trace: mv.Trace | None = None
    row: int = 0  # this job's row in its batch

    @property
    def key(self) -> tuple:
        s = self.settings
        return (self.lm.name, s.gen_length, s.steps, s.block_length, s.remasking, s.cfg_scale, s.slack_bias)

    @property
    def decode(self) -> tuple:
        """What determines this row's tokens within a batch of `key`."""
        return tuple(self.prompt_ids), self.interventions


@dataclass
class _Batch:
    """A running batched decode: its jobs, the sampler's stream and every step computed so far."""

    jobs: list[_Job]
    stream: object  # mv.stream(...)
    steps: object  # iter(stream)
    rows: dict[tuple, int]  # _Job.decode -> its row
    history: list[list] = field(default_factory=list)  # per step, one Step per row

    @property
    def key(self) -> tuple:
        return self.jobs[0].key

    def join(self, job: _Job) -> bool:
        """Attach a job asking for a decode this batch already runs: replay its steps so far."""
        row = self.rows.get(job.decode) if job.key == self.key else None
        if row is None:
            return False
        job.row = row
        for rows in self.history:
            job.steps.put(rows[row])
        self.jobs.append(job)
        return True


class BatchedDecode:
    """One visitor's decode inside a shared batch, with `SeededDecode`'s interface."""

    def __init__(self, scheduler: "BatchScheduler", lm: LoadedModel, prompt_ids: list[int], settings: DecodeSettings,
                 interventions=()):
        self.lm, self.prompt_ids, self.settings = lm, prompt_ids, settings
        self.job = _Job(lm, prompt_ids, settings, tuple(interventions))
        kw = settings.sampler_kwargs(lm)
        self.live = mv.Trace(prompt=prompt_ids, gen_length=settings.gen_length, steps_total=settings.steps,
                             block_length=settings.block_length, mask_id=lm.facts.mask_id, settings={},
                             eos_id=lm.facts.eos_id, slack_id=lm.facts.slack_id, collapse=kw.get("collapse"))
        self.replay = Replay(self.live)
        scheduler.submit(self.job)

    def advance(self) -> mv.Step | None:
        """The next step of this row (waits for the batch); None when done; ValueError if the
        sampler refused the settings."""
        item = self.job.steps.get()
        if item is _DONE:
            return None
        if isinstance(item, Exception):
            raise item
        self.live.steps.append(item)
        return item

    @property
    def trace(self) -> mv.Trace:
        """The recorded trace, with its model's name and token texts (set once per batch row)."""
        return self.job.trace


class BatchScheduler:
    """One worker thread per model; at most `parallel` forward passes run at once (None: no cap).

    On a CPU with one torch thread per pass there is no cap: every model's worker runs its next
    pass as soon as it has one and the OS shares the cores, so a worker busy with the sampler's
    Python work between two passes leaves its core to another model's pass (a cap of one pass per
    core idled a core whenever its slot's holder waited for the interpreter). With several torch
    threads per pass, one pass per core's worth of threads (OpenMP threads spin: oversubscribing
    them wastes the cores). On a GPU, 1."""

    def __init__(self, window_s: float = 0.005, max_batch: int = 64, parallel: int | None = 1,
                 max_wait_s: float = 2.0):
        self.window_s, self.max_batch, self.max_wait_s = window_s, max_batch, max_wait_s
        self.slots = contextlib.nullcontext() if parallel is None else threading.Semaphore(max(1, parallel))
        self.batches_run = 0  # how many batched decodes ran (the tests and the bench read it)
        self.rows_run = 0  # how many distinct rows they decoded
        self._inboxes: dict[str, queue.Queue] = {}
        self._start = threading.Lock()

    def submit(self, job: _Job) -> None:
        with self._start:
            inbox = self._inboxes.get(job.lm.name)
            if inbox is None:
                inbox = self._inboxes[job.lm.name] = queue.Queue()
                threading.Thread(target=self._run, args=(inbox,), name=f"mdlm-viz-{job.lm.name}", daemon=True).start()
        inbox.put(job)

    # ---- a model's worker: collect, group by settings, decode the groups in turns ----
    def _collect(self, inbox: queue.Queue, block: bool) -> list[_Job]:
        """Idle (`block`): wait for a job, then `window_s` for others. Busy: take what has come."""
        jobs = []
        try:
            jobs.append(inbox.get(block=block))
        except queue.Empty:
            return jobs
        if not block:
            while True:
                try:
                    jobs.append(inbox.get_nowait())
                except queue.Empty:
                    return jobs
        deadline = time.perf_counter() + self.window_s  # let visitors who pressed at the same time join
        while True:
            left = deadline - time.perf_counter()
            try:
                jobs.append(inbox.get(timeout=left) if left > 0 else inbox.get_nowait())
            except queue.Empty:
                return jobs

    def _start_batches(self, jobs: list[_Job]) -> list[_Batch]:
        groups: dict[tuple, list[_Job]] = {}
        for job in jobs:
            groups.setdefault(job.key, []).append(job)
        running = []
        for members in groups.values():
            for i in range(0, len(members), self.max_batch):
                chunk = members[i:i + self.max_batch]
                lm, settings = chunk[0].lm, chunk[0].settings
                rows: dict[tuple, int] = {}  # (prompt, shifts) -> its row: identical decodes share one
                for job in chunk:
                    job.row = rows.setdefault(job.decode, len(rows))
                pad = lm.facts.pad_id if lm.facts.pad_id is not None else lm.facts.eos_id
                ids, attn = left_pad([list(prompt) for prompt, _ in rows], pad)
                shifts = [dataclasses.replace(iv, batch=row) for (_, ivs), row in rows.items() for iv in ivs]
                stream = mv.stream(lm.model, ids, attention_mask=attn, interventions=shifts,
                                   **settings.sampler_kwargs(lm))
                self.rows_run += len(rows)
                running.append(_Batch(list(chunk), stream, iter(stream), rows))
        return running

    def _due(self, waiting: list[_Job], running: list[_Batch]) -> list[_Job]:
        """The waiting jobs to start now. A job whose settings match a running batch waits for it
        to end (up to `max_wait_s`), so visitors arriving over a second or two share one second
        batch instead of each starting their own."""
        busy = {batch.key for batch in running}
        now = time.perf_counter()
        return [j for j in waiting if j.key not in busy or now - j.arrived > self.max_wait_s]

    def _run(self, inbox: queue.Queue) -> None:
        running: list[_Batch] = []
        waiting: list[_Job] = []
        while True:
            waiting += self._collect(inbox, block=not running and not waiting)
            waiting = [j for j in waiting if not any(batch.join(j) for batch in running)]
            due = self._due(waiting, running)
            if due:
                waiting = [j for j in waiting if j not in due]
                running += self._start_batches(due)
            if not running:
                time.sleep(0.005)  # only jobs waiting on a batch that just ended: start them next turn
                continue
            for batch in list(running):  # one step of every running batch, in turns
                try:
                    with self.slots, torch.inference_mode():
                        step = next(batch.steps)
                except StopIteration:
                    lm = batch.jobs[0].lm
                    traces = [tr.with_token_texts(lm.token_text) for tr in batch.stream.result.traces]
                    for tr in traces:
                        tr.model = lm.name
                    for job in batch.jobs:  # a copy each: visitors sharing a row own their trace
                        job.trace = copy.copy(traces[job.row])
                        job.steps.put(_DONE)
                    running.remove(batch)
                    self.batches_run += 1
                    continue
                except Exception as err:  # noqa: BLE001 - the sampler's ValueError, or a failing model
                    for job in batch.jobs:
                        job.steps.put(err if isinstance(err, ValueError) else ValueError(f"decoding failed: {err}"))
                    running.remove(batch)
                    continue
                time.sleep(0)  # let a worker waiting for the interpreter or a slot go: models advance together
                rows = step if isinstance(step, list) else [step]
                batch.history.append(rows)
                for job in batch.jobs:
                    job.steps.put(rows[job.row])
