"""The GraphQL schema object: types from schema/, root resolvers from resolvers/, safety extensions."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from aigc_admin.resolvers import graphql_patches
from aigc_admin.resolvers.extensions import AuditMutations, TraceMaskErrors
from aigc_admin.resolvers.mutations import Mutation
from aigc_admin.resolvers.queries import Query
from aigc_admin.resolvers.subscriptions import Subscription


def build_schema(*, max_depth: int = 12, max_tokens: int = 2000, max_aliases: int = 30) -> strawberry.Schema:
    graphql_patches.apply()  # graphql-core 3.3 keeps a memo per subscription that grows with every event
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            AuditMutations,
            TraceMaskErrors,
        ],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
