"""Runtime patch for a per-subscription memory leak in graphql-core 3.3.x.

The leak
--------
``graphql.execution.Executor.build_per_event_executor`` makes each subscription
event's executor with ``copy(self)``: a *shallow* copy, so every event's executor
shares the subscription executor's ``_relevant_sub_fields`` dict, the memo of
``Executor.collect_subfields``. That memo is keyed by
``(return_type, id(field_details_list))`` and keeps the list alive in the value.
``execute_operation`` collects the root fields afresh for every event, so every
event brings new ``field_details_list`` objects, so new keys. Entries written by
one event can never be hit by a later one, yet they stay until unsubscribe: one
entry per object-typed field in the selection per delivered event (~1.4 KB each).
graphql-core 3.3.0, 3.3.1 and 3.3.2 (the newest release when this was written,
the range strawberry 0.341.x accepts: ``graphql-core>=3.3.0,<3.4.0``) all do this.

The fix
-------
After the original ``build_per_event_executor`` has run, give the per-event
executor a fresh ``_relevant_sub_fields`` dict. Nothing else changes.

Why this is safe
----------------
* The memo is a cache of a pure function: ``collect_subfields(schema, fragments,
  variable_values, operation, return_type, field_details_list, hide_suggestions)``;
  all the arguments but the key are fixed for the whole subscription. An empty
  cache only means recomputing, never a different result.
* Cross-event hits were impossible anyway (the keys are identities of per-event
  lists), so nothing is lost: within one event the per-event executor and its own
  sub-executors (also shallow copies) share the new dict, so lists of objects still
  hit the cache as before.
* The other identity-keyed map, ``_stream_usages``, is only written for ``@stream``,
  which graphql-core rejects on subscription operations, so it does not grow and
  is left alone.

The patch only applies to the graphql-core versions it was checked against; on any
other version it logs a warning and does nothing (check whether upstream fixed the
leak, then add the version here or drop this module).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import graphql
from graphql.execution import Executor

__all__ = ["PATCHED_VERSIONS", "apply", "is_applied"]

log = logging.getLogger(__name__)

# Versions whose executor.py was read and found to have the leak described above.
PATCHED_VERSIONS = frozenset({"3.3.0", "3.3.1", "3.3.2"})

_MARKER = "_aigc_fresh_sub_fields_memo"


def is_applied() -> bool:
    return getattr(Executor.build_per_event_executor, _MARKER, False)


def apply() -> bool:
    """Patch graphql-core so each subscription event gets its own subfield memo.

    Idempotent. Returns True when the patch is in place, False when it was refused.
    """
    if is_applied():
        return True
    version = graphql.version
    if version not in PATCHED_VERSIONS:
        log.warning(
            "graphql-core %s is not one of %s: not patching Executor.build_per_event_executor "
            "(subscription memo leak); check whether this version still needs it",
            version,
            sorted(PATCHED_VERSIONS),
        )
        return False

    original: Callable[[Executor, Any], Executor] = Executor.build_per_event_executor

    @functools.wraps(original)
    def build_per_event_executor(self: Executor, payload: Any) -> Executor:
        executor = original(self, payload)
        executor._relevant_sub_fields = {}
        return executor

    setattr(build_per_event_executor, _MARKER, True)
    Executor.build_per_event_executor = build_per_event_executor  # type: ignore[method-assign]
    return True
