"""The errors of talking to FastChat workers the OpenAI way (FastChat's own error codes, an HTTP status each)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """FastChat's error codes (``fastchat/constants.py``), as workers put them in ``error_code``."""

    VALIDATION_TYPE_ERROR = 40001
    INVALID_AUTH_KEY = 40101
    INCORRECT_AUTH_KEY = 40102
    NO_PERMISSION = 40103
    INVALID_MODEL = 40301
    PARAM_OUT_OF_RANGE = 40302
    CONTEXT_OVERFLOW = 40303
    RATE_LIMIT = 42901
    QUOTA_EXCEEDED = 42902
    ENGINE_OVERLOADED = 42903
    INTERNAL_ERROR = 50001
    CUDA_OUT_OF_MEMORY = 50002
    GRADIO_REQUEST_ERROR = 50003
    GRADIO_STREAM_UNKNOWN_ERROR = 50004
    CONTROLLER_NO_WORKER = 50005
    CONTROLLER_WORKER_TIMEOUT = 50006


class FastChatOpenAIError(Exception):
    """Base: ``code`` (FastChat's ErrorCode) and ``status_code`` for the gateway's HTTP answer."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.error_type, "param": None, "code": self.code}}


class InvalidRequest(FastChatOpenAIError):
    """The OpenAI request cannot be served as asked (out-of-range parameter, ``n > 1``, images...)."""

    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, code: int = ErrorCode.PARAM_OUT_OF_RANGE) -> None:
        super().__init__(code, message)


class ContextOverflow(InvalidRequest):
    """The prompt leaves no room to generate in the model's context."""

    def __init__(self, context_length: int, prompt_tokens: int) -> None:
        super().__init__(
            f"This model's maximum context length is {context_length} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            ErrorCode.CONTEXT_OVERFLOW,
        )
        self.context_length = context_length
        self.prompt_tokens = prompt_tokens


class WorkerError(FastChatOpenAIError):
    """The worker answered with ``error_code != 0``, a non-200 status, or a body that is not FastChat's."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.status_code = 400 if 40000 <= self.code < 50000 else 500


class WorkerUnavailable(WorkerError):
    """The worker could not be reached (refused, reset, timed out)."""

    def __init__(self, worker: str, reason: str) -> None:
        super().__init__(ErrorCode.CONTROLLER_WORKER_TIMEOUT, f"model worker {worker} unavailable: {reason}")
        self.status_code = 503
        self.worker = worker
