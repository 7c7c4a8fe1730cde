"""What the API writes to its log: refusals at INFO on one line (no traceback, no copy of the document), the
unexpected at ERROR with its stack and trace id; JSON lines on request."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from aigc_admin.cli.logs import JsonLines
from tests.support.api import ApiHarness


def _graphql_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("aigc_admin.graphql", "strawberry"))]


async def test_refusals_are_one_info_line_without_traceback_or_document(api: ApiHarness,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    huge = "{ " + "x " * 50_000  # a 100 KB document that does not parse
    with caplog.at_level(logging.INFO):
        await api.gql("{ tenants { totalCount } }")  # UNAUTHENTICATED
        await api.gql("{ inferenceTemplates { name } }", token=(await api.create_user("logged-user"))[1])  # FORBIDDEN
        await api.gql(huge, token=api.admin_token)  # syntax
        await api.gql("{ dicts(filter: {parentId: \"abc\"}) { totalCount } }", token=api.admin_token)  # INVALID
    records = _graphql_records(caplog)
    assert records and all(r.levelno == logging.INFO and r.exc_info is None for r in records), records
    text = "\n".join(r.getMessage() for r in records)
    assert "UNAUTHENTICATED" in text and "FORBIDDEN" in text and "INVALID" in text
    assert max(len(r.getMessage()) for r in records) < 600  # the document is not copied into the log


async def test_the_unexpected_is_an_error_with_its_stack_and_trace_id(api: ApiHarness,
                                                                      caplog: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(api.services().dicts, "tree", broken)
    with caplog.at_level(logging.INFO):
        body = await api.gql('{ tree(codes: ["x"]) { id } }', token=api.admin_token)
    trace = body["errors"][0]["extensions"]["traceId"]
    errors = [r for r in _graphql_records(caplog) if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and trace in errors[0].getMessage() and errors[0].exc_info is not None


def test_json_lines() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("aigc_admin.x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
    entry = json.loads(JsonLines().format(record))
    assert entry["level"] == "ERROR" and entry["logger"] == "aigc_admin.x" and entry["message"] == "failed here"
    assert "ValueError: boom" in entry["exception"] and entry["time"].endswith("+00:00")
