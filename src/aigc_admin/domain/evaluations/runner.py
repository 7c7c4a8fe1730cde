"""Running an evaluation (in a worker): every pending sample is answered by the model through the platform's
model-call path, ``concurrency`` at a time, retried on transient failures, scored, and written in batches;
each batch publishes a progress event. A cancel is seen at the next batch; a model that is not deployed can be
deployed for the run and undeployed after."""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.evaluations import judge as judging
from aigc_admin.domain.evaluations import metrics as scoring
from aigc_admin.domain.evaluations.entities import (
    FINISHED,
    EvalStatus,
    Evaluation,
    EvaluationRepository,
    ProgressEvents,
    Sample,
    SampleFilter,
    SampleResult,
    SampleStatus,
)
from aigc_admin.domain.evaluations.service import summarise
from aigc_admin.domain.evaluations.stats import paired_difference
from aigc_admin.domain.model_calls import ChatReply, ModelCallError, ModelCallErrorCode, ModelCalls

log = logging.getLogger(__name__)

TRANSIENT = (ModelCallErrorCode.UNAVAILABLE, ModelCallErrorCode.RATE_LIMITED, ModelCallErrorCode.UPSTREAM_ERROR)
MAX_BACKOFF = 10.0


class RunDeployer(Protocol):
    async def ensure_serving(self, evaluation: Evaluation) -> int | None:
        """Deploy the evaluated model for the run unless it is deployed; wait until it serves. Returns the
        deployment made for the run (None: it was deployed already)."""
        ...

    async def release(self, deployment_id: int) -> None: ...


class _Failed(Exception):
    """A sample that cannot be scored (the message is stored as its error)."""


class _GaveUp(ModelCallError):
    """A call that failed for good, after ``attempts`` attempts."""

    def __init__(self, e: ModelCallError, attempts: int) -> None:
        super().__init__(ModelCallErrorCode(e.code.value), e.message, reason=e.reason, retry_after=e.retry_after)
        self.attempts = attempts


class EvaluationRunner:
    def __init__(self, *, repo: EvaluationRepository, calls: ModelCalls, events: ProgressEvents,
                 deployer: RunDeployer | None = None, flush_interval: float = 0.5,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.repo = repo
        self.calls = calls
        self.events = events
        self.deployer = deployer
        self.flush_interval = flush_interval
        self.sleep = sleep

    async def run(self, pk: int, *, keep_deployment: bool = False) -> Evaluation | None:
        """Run the evaluation's pending samples; returns it finished (or as it was, when there was nothing to do).
        The deployment made for the run is undeployed at the end unless ``keep_deployment``."""
        ev = await self.repo.get(pk)
        if ev is None or ev.status in FINISHED:
            return ev  # cancelled or deleted before it started, or already run
        ev = await self.repo.update(pk, status=EvalStatus.RUNNING, started_at=datetime.now(UTC), error_message="")
        made: int | None = None
        try:
            if ev.deploy_for_run and self.deployer is not None:
                made = await self.deployer.ensure_serving(ev)
                if made is not None:
                    ev = await self.repo.update(pk, run_deployment_id=made)
            return await self._run(ev)
        except DomainError as e:
            return await self._finish(ev, EvalStatus.FAILED, e.message)
        except Exception as e:
            log.exception("evaluation %s failed", pk)
            return await self._finish(ev, EvalStatus.FAILED, f"{type(e).__name__}: {e}")
        finally:
            if made is not None and not keep_deployment and self.deployer is not None:
                try:
                    await self.deployer.release(made)
                except Exception:
                    log.exception("evaluation %s: the deployment %s made for the run was not undeployed", pk, made)

    async def _run(self, ev: Evaluation) -> Evaluation:
        pending = deque(await self.repo.pending_samples(ev.id))
        previous = await self.repo.all_scores(ev.id)  # a retry keeps what was scored
        sums = dict.fromkeys(ev.metrics, 0.0)
        counts = dict.fromkeys(ev.metrics, 0)
        for _, scores in previous:
            for m, v in scores.items():
                if m in sums:
                    sums[m] += v
                    counts[m] += 1
        done, failed, seq = len(previous), 0, ev.progress_seq
        started, processed = time.monotonic(), 0
        results: builtins.list[SampleResult] = []

        async def work() -> None:
            while pending:
                results.append(await self._sample(ev, pending.popleft()))

        workers = [asyncio.create_task(work()) for _ in range(min(ev.concurrency, len(pending)))]
        stopped = False
        try:
            while True:
                if workers:  # back when every worker is done, or after flush_interval: a batch is written
                    await asyncio.wait(workers, timeout=self.flush_interval)
                all_done = all(w.done() for w in workers)
                for w in workers:
                    if w.done() and not w.cancelled() and w.exception() is not None:
                        raise w.exception()  # type: ignore[misc]  # a bug, not a sample's failure
                batch, results[:] = results[:], []
                for r in batch:
                    processed += 1
                    if r.status == SampleStatus.DONE:
                        done += 1
                        for m, v in r.scores.items():
                            sums[m] += v
                            counts[m] += 1
                    else:
                        failed += 1
                if batch:
                    seq += 1
                    rate = processed / max(1e-6, time.monotonic() - started)
                    left = ev.total - done - failed
                    running = {"running": {m: sums[m] / counts[m] for m in ev.metrics if counts[m]},
                               "eta_seconds": round(left / rate, 1) if rate > 0 else None}
                    current = await self.repo.save_results(
                        ev.id, batch, done=done, failed=failed, progress=(done + failed) / max(1, ev.total),
                        progress_seq=seq, aggregates={**ev.aggregates, **running})
                    if current is not None and current.status == EvalStatus.RUNNING:
                        await self.events.progress(current)
                else:
                    current = await self.repo.get(ev.id)  # nothing to write: still, a cancel is seen now
                if current is None:  # deleted with its tenant
                    stopped = True
                    return ev
                ev = current
                if ev.status != EvalStatus.RUNNING:  # cancelled: what was scored is kept
                    stopped = True
                    return ev
                if all_done:
                    break
        finally:
            if stopped or any(not w.done() for w in workers):
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        return await self._complete(ev, done, failed)

    async def _complete(self, ev: Evaluation, done: int, failed: int) -> Evaluation:
        scored = await self.repo.all_scores(ev.id)
        aggregates: dict[str, Any] = {"metrics": summarise(ev.metrics, scored),
                                      "running": ev.aggregates.get("running", {}), "eta_seconds": 0}
        if ev.previous_id is not None:
            aggregates["vs_previous"] = await self._against_previous(ev, dict(scored))
        first_error = ""
        if failed:
            failures, _ = await self.repo.samples(ev.id, SampleFilter(failed_only=True), offset=0, limit=1)
            first_error = failures[0].error if failures else ""
        if done == 0:
            return await self._finish(ev, EvalStatus.FAILED, f"no sample could be scored; the first error: "
                                                             f"{first_error}", aggregates=aggregates)
        note = f"{failed} of {ev.total} samples failed (retry runs them again); the first error: {first_error}" \
            if failed else ""
        return await self._finish(ev, EvalStatus.SUCCEEDED, note, aggregates=aggregates)

    async def _against_previous(self, ev: Evaluation, scored: dict[int, dict[str, float]]) -> dict[str, Any]:
        """Paired differences (this run - the previous one) per metric; a metric whose whole interval is below 0
        regressed."""
        before = dict(await self.repo.all_scores(ev.previous_id or 0))
        out: dict[str, Any] = {"previous_id": ev.previous_id, "metrics": {}, "regressed": []}
        for m in ev.metrics:
            both = sorted(i for i in scored if m in scored[i] and m in before.get(i, {}))
            est = paired_difference([before[i][m] for i in both], [scored[i][m] for i in both])
            out["metrics"][m] = {"mean": est.mean, "low": est.low, "high": est.high, "n": est.n}
            if est.n and est.high < 0:
                out["regressed"].append(m)
        if out["regressed"]:
            log.warning("evaluation %s of %s regressed against run %s on %s", ev.id, ev.model_name, ev.previous_id,
                        ", ".join(out["regressed"]))
        return out

    async def _finish(self, ev: Evaluation, status: EvalStatus, reason: str, **extra: Any) -> Evaluation:
        changes: dict[str, Any] = {"status": status, "completed_at": datetime.now(UTC),
                                   "error_message": reason[:1000], "progress_seq": ev.progress_seq + 1, **extra}
        if "aggregates" in extra:
            primary = extra["aggregates"]["metrics"].get(ev.primary_metric, {})
            changes["score"] = round(100 * float(primary.get("mean", 0.0)), 2)
            changes["progress"] = 1.0
        finished = await self.repo.update_where(ev.id, EvalStatus.RUNNING, **changes)
        if finished is None:  # cancelled (or deleted) meanwhile: keep the aggregates of what was scored
            current = await self.repo.get(ev.id)
            if current is not None and "aggregates" in extra:
                current = await self.repo.update(ev.id, aggregates=extra["aggregates"], score=changes["score"])
            return current or ev
        await self.events.progress(finished)
        return finished

    # --- one sample ------------------------------------------------------------------------------------
    async def _sample(self, ev: Evaluation, sample: Sample) -> SampleResult:
        cfg = ev.config
        result = SampleResult(id=sample.id, idx=sample.idx, status=SampleStatus.FAILED)
        try:
            reply, latency, attempts = await self._call(ev, ev.model_name, sample.messages, cfg.max_tokens,
                                                        cfg.temperature)
            result.output, result.latency_ms, result.attempts = reply.content, latency, attempts
            result.prompt_tokens, result.completion_tokens = reply.usage.prompt_tokens, reply.usage.completion_tokens
            scores = {m: scoring.score(m, reply.content, sample.reference)
                      for m in ev.metrics if m in scoring.STRING_METRICS}
            if "judge" in ev.metrics:
                scores["judge"] = await self._judge_single(ev, sample, reply.content, result)
            if "pairwise" in ev.metrics:
                scores["pairwise"] = await self._judge_pairwise(ev, sample, reply.content, result)
        except _Failed as e:
            result.error = str(e)
            return result
        except ModelCallError as e:
            result.error = f"the model: {e.message}"
            result.attempts = e.attempts if isinstance(e, _GaveUp) else result.attempts
            return result
        result.scores, result.status = scores, SampleStatus.DONE
        return result

    async def _judge_single(self, ev: Evaluation, sample: Sample, answer: str, result: SampleResult) -> float:
        judge = ev.config.judge
        assert judge is not None
        prompt = judging.single_prompt(judge.rubric or None, sample.messages, answer, sample.reference)
        text = await self._judged(ev, prompt)
        try:
            rating = judging.parse_rating(text)
        except judging.Unparseable as e:
            result.judge["judge"] = {"raw": text}
            raise _Failed(f"the judge: {e}") from None
        result.judge["judge"] = {"rating": rating, "raw": text}
        return rating / 10

    async def _judge_pairwise(self, ev: Evaluation, sample: Sample, answer: str, result: SampleResult) -> float:
        judge, cfg = ev.config.judge, ev.config
        assert judge is not None
        try:
            other, _, _ = await self._call(ev, cfg.baseline_model_name, sample.messages, cfg.max_tokens,
                                           cfg.temperature)
        except ModelCallError as e:
            raise _Failed(f"the baseline model: {e.message}") from None
        result.baseline_output = other.content
        rubric = judge.rubric or None
        first, second = await asyncio.gather(
            self._judged(ev, judging.pairwise_prompt(rubric, sample.messages, answer, other.content)),
            self._judged(ev, judging.pairwise_prompt(rubric, sample.messages, other.content, answer)))
        try:
            outcome = judging.combine(judging.parse_verdict(first), judging.parse_verdict(second))
        except judging.Unparseable as e:
            result.judge["pairwise"] = {"raw": [first, second]}
            raise _Failed(f"the judge: {e}") from None
        result.judge["pairwise"] = {"verdicts": [judging.parse_verdict(first), judging.parse_verdict(second)],
                                    "result": outcome.result, "raw": [first, second]}
        return outcome.score

    async def _judged(self, ev: Evaluation, prompt: builtins.list[dict[str, str]]) -> str:
        judge = ev.config.judge
        assert judge is not None
        try:
            reply, _, _ = await self._call(ev, judge.model_name, prompt, judge.max_tokens, 0.0)
        except ModelCallError as e:
            raise _Failed(f"the judge: {e.message}") from None
        return reply.content

    async def _call(self, ev: Evaluation, model: str, messages: builtins.list[dict[str, Any]], max_tokens: int,
                    temperature: float) -> tuple[ChatReply, int, int]:
        """The answer, its latency (ms) and the attempts it took; transient failures (no healthy worker, rate
        limited, a failed upstream, a timeout) are retried with backoff, ``config.retries`` times."""
        cfg = ev.config
        body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        also = frozenset({ev.model_name, cfg.baseline_model_name} - {""}) if cfg.any_tenant_model else frozenset()
        assert ev.channel_id is not None
        for attempt in range(cfg.retries + 1):
            began = time.monotonic()
            try:
                reply = await asyncio.wait_for(
                    self.calls.chat(body, tenant_id=ev.tenant_id, channel_id=ev.channel_id, also_allow=also),
                    cfg.timeout_seconds)
                return reply, int((time.monotonic() - began) * 1000), attempt + 1
            except ModelCallError as e:
                if e.code not in TRANSIENT or attempt == cfg.retries:
                    raise _GaveUp(e, attempt + 1) from None
                delay = float(e.retry_after) if e.retry_after else 0.5 * 2 ** attempt
            except TimeoutError:
                if attempt == cfg.retries:
                    timeout = ModelCallError(ModelCallErrorCode.UNAVAILABLE, f"no answer within "
                                             f"{cfg.timeout_seconds:g} s ({attempt + 1} attempts)")
                    raise _GaveUp(timeout, attempt + 1) from None
                delay = 0.5 * 2 ** attempt
            await self.sleep(min(MAX_BACKOFF, delay))
        raise AssertionError("unreachable")
