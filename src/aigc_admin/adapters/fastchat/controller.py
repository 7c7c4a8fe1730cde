"""FastChat controller / worker HTTP client (async, httpx).

Speaks FastChat 0.2.36's wire contract (``fastchat/serve/controller.py``,
``fastchat/serve/base_model_worker.py``) over HTTP only: FastChat itself lives in the engine venv
(scripts/prepare-engine.sh), never in the platform's, so nothing here imports it.

Endpoints used:

* controller ``GET /test_connection``: liveness, answers ``"success"``.
* controller ``POST /list_models``: ``{"models": [name, ...]}``, the names in its registry.
* controller ``POST /get_worker_address`` ``{"model": name}``: ``{"address": url}``, ``""`` if none.
* controller ``POST /refresh_all_workers``: re-probes every registered worker, drops unreachable ones.
* worker ``POST /worker_get_status``: ``{"model_names": [...], "speed": 1, "queue_length": n}``.

* controller ``POST /register_worker``: registers a worker the platform has just found alive, when the
  controller does not list its models (a restarted controller forgets every worker until its next heart
  beat, 45 s later): :meth:`FastChatController.register_worker`.

Not used: ``/receive_heart_beat`` (a heart beat sent for a worker address would answer whether it is
registered, but also renew it: a dead worker would never expire), ``/worker_generate_stream`` (model
traffic goes through openai_api_server), and ``/list_multimodal_models`` / ``/list_language_models``
(subsets of ``/list_models``).

What the controller does *not* offer: a list of its workers. Its registry (``worker_info``:
worker address → model names, speed, queue length, last heart beat) is not exposed; ``/list_models``
only gives names, ``/get_worker_address`` one dispatched address per call, and the controller's own
``/worker_get_status`` aggregates every worker (names merged, speeds and queue lengths summed).
:meth:`FastChatController.workers` therefore asks the workers themselves: the addresses the platform
started (exact) plus the one the controller dispatches each model to (see its docstring).

Registry behaviour worth knowing (0.2.36):

* A worker registers itself at start and sends a heart beat every
  ``FASTCHAT_WORKER_HEART_BEAT_INTERVAL`` s (45). The controller wakes every
  ``FASTCHAT_CONTROLLER_HEART_BEAT_EXPIRATION`` s (90) and drops workers whose last heart beat is
  older than that. A dead worker therefore stays listed, and may still be dispatched to, from
  expiration − interval up to 2 × expiration after it died: 45–180 s with the defaults.
  ``/refresh_all_workers`` drops it at once.
* The controller's handlers call workers with blocking ``requests`` (5 s timeout) inside ``async``
  endpoints: while ``/refresh_all_workers`` probes a hanging worker the whole controller stalls.
* With ``--dispatch-method shortest_queue`` (the default) every ``/get_worker_address`` call adds 1
  to the chosen worker's queue length until its next heart beat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

DEFAULT_TIMEOUT = 3.0
# /refresh_all_workers probes each registered worker sequentially with a 5 s timeout.
DEFAULT_REFRESH_TIMEOUT = 60.0


class FastChatError(Exception):
    """The controller or a worker answered, but not as FastChat does (status or body)."""


class FastChatUnavailable(FastChatError):
    """The controller could not be reached: connection refused, reset or timed out."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"FastChat unavailable at {url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A worker's answer to ``/worker_get_status``."""

    model_names: tuple[str, ...]
    speed: float
    queue_length: int


class FastChatController:
    """Client of one FastChat controller (and of the workers it names).

    ``client``: an ``httpx.AsyncClient`` to share (the caller closes it); without one, the controller
    creates its own, closed by :meth:`aclose` / ``async with``. Every request carries ``timeout``
    (seconds), also on a shared client.
    """

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- controller -----------------------------------------------------------------------------

    async def alive(self) -> bool:
        """True when the controller answers ``GET /test_connection``; never raises."""
        try:
            response = await self._client.get(f"{self.base_url}/test_connection", timeout=self._timeout)
        except httpx.HTTPError:
            return False
        return response.is_success

    async def list_models(self) -> list[str]:
        """Model names of the registered workers, sorted (``POST /list_models``).

        Reads the registry as it is: no refresh, so a dead worker's models stay listed until the
        controller expires it (see the module docstring) or :meth:`refresh_all_workers` runs.
        """
        body = await self._post_controller("/list_models")
        models = body.get("models") if isinstance(body, dict) else None
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise FastChatError(f"unexpected /list_models answer from {self.base_url}: {body!r}")
        return sorted(models)

    async def get_worker_address(self, model: str) -> str:
        """The address the controller dispatches ``model`` to now; ``""`` when no worker serves it.

        The controller picks one worker per call (lottery by speed, or shortest queue) and does not
        check that it is still alive.
        """
        body = await self._post_controller("/get_worker_address", {"model": model})
        address = body.get("address") if isinstance(body, dict) else None
        if not isinstance(address, str):
            raise FastChatError(f"unexpected /get_worker_address answer from {self.base_url}: {body!r}")
        return address

    async def refresh_all_workers(self, *, request_timeout: float = DEFAULT_REFRESH_TIMEOUT) -> None:
        """Make the controller re-probe every registered worker and drop the unreachable ones.

        Blocks the controller while it runs (up to 5 s per hanging worker), hence its own, longer
        ``request_timeout``.
        """
        await self._post_controller("/refresh_all_workers", request_timeout=request_timeout)

    async def workers(self, addresses: Iterable[str] = (), *, discover: bool = True) -> dict[str, list[str]]:
        """Model name → sorted addresses of the *live* workers serving it.

        FastChat's controller does not expose which workers it has registered (module docstring),
        so the workers are found this way: ``addresses`` (the workers the platform started, the
        exact source) plus, with ``discover``, the one address ``/get_worker_address`` dispatches
        each model of ``/list_models`` to now (finds a worker the platform did not start, but only
        one per model per call). Each candidate is asked ``/worker_get_status`` and counted under
        the names it reports; unreachable ones are left out. A model in :meth:`list_models` but
        not here is registered only by dead (or unknown) workers.

        Not done: sampling ``/get_worker_address`` to enumerate replicas. Under the controller's
        default ``shortest_queue`` dispatch every draw adds 1 to a worker's queue length until its
        next heart beat (45 s) and the draws stick to the shortest queue, so sampling both skews
        routing and misses workers, dead ones in particular (measured with FastChat 0.2.36).
        """
        candidates = {a.rstrip("/") for a in addresses}
        if discover:
            models = await self.list_models()
            dispatched = await asyncio.gather(*(self.get_worker_address(m) for m in models))
            candidates.update(a.rstrip("/") for a in dispatched if a)
        ordered = sorted(candidates)
        statuses = await asyncio.gather(*(self.worker_status(a) for a in ordered))
        result: dict[str, list[str]] = {}
        for address, status in zip(ordered, statuses, strict=True):
            for model in status.model_names if status else ():
                result.setdefault(model, []).append(address)
        return {model: sorted(found) for model, found in sorted(result.items())}

    async def register_worker(self, worker_address: str, status: WorkerStatus) -> None:
        """Register a live worker with its status (``POST /register_worker``, heart beats checked: it expires
        like any worker if it dies). The status is sent along so the controller does not probe the worker with
        a blocking call."""
        await self._post_controller("/register_worker", {
            "worker_name": worker_address.rstrip("/"), "check_heart_beat": True,
            "worker_status": {"model_names": list(status.model_names), "speed": status.speed,
                              "queue_length": status.queue_length}})

    # --- workers ----------------------------------------------------------------------------------

    async def worker_status(self, worker_address: str) -> WorkerStatus | None:
        """``POST {worker_address}/worker_get_status``; None when the worker cannot be reached or does
        not answer like a FastChat worker. Works on a controller address too (aggregated status).
        """
        url = f"{worker_address.rstrip('/')}/worker_get_status"
        try:
            response = await self._client.post(url, timeout=self._timeout)
        except httpx.HTTPError:
            return None
        if not response.is_success:
            return None
        try:
            body = response.json()
            names = body["model_names"]
            status = WorkerStatus(
                model_names=tuple(str(n) for n in names),
                speed=float(body["speed"]),
                queue_length=int(body["queue_length"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return status

    # --- plumbing ---------------------------------------------------------------------------------

    async def _post_controller(
        self, path: str, payload: dict[str, Any] | None = None, *, request_timeout: float | None = None
    ) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = await self._client.post(url, json=payload, timeout=request_timeout or self._timeout)
        except httpx.TimeoutException as exc:
            raise FastChatUnavailable(self.base_url, f"{path} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise FastChatUnavailable(self.base_url, f"{path}: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise FastChatError(f"{url} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError as exc:
            raise FastChatError(f"{url} answered non-JSON: {response.text[:200]!r}") from exc
