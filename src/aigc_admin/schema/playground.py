"""The chat playground: a chat completion streamed through a channel of the tenant."""

from __future__ import annotations

import strawberry


@strawberry.input
class PlaygroundMessage:
    role: str
    content: str


@strawberry.input(description="A chat completion for the admin UI's playground, charged to a channel of the tenant.")
class PlaygroundInput:
    channel_id: strawberry.ID
    model: str
    messages: list[PlaygroundMessage]
    max_tokens: int | None = None
    temperature: float | None = None


@strawberry.type(description="A piece of the streamed answer; the last one has finishReason (or error).")
class PlaygroundChunk:
    content: str
    finish_reason: str | None = None
    error: str | None = None
