"""The GraphQL schema: every area's queries, mutations and subscriptions, and the safety extensions.

An area adds its ``<Area>Queries`` / ``<Area>Mutations`` / ``<Area>Subscriptions`` classes to the lists below;
nothing else here changes. ``schema.graphql`` is ``export_sdl()`` (``make schema``)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, MaxTokensLimiter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from aigc_admin.resolvers.accounts import AccountMutations, AccountQueries
from aigc_admin.resolvers.assistants import AssistantMutations, AssistantQueries, AssistantSubscriptions
from aigc_admin.resolvers.audit import AuditQueries, AuditSubscriptions
from aigc_admin.resolvers.channels import ChannelMutations, ChannelQueries
from aigc_admin.resolvers.dashboard import DashboardQueries
from aigc_admin.resolvers.datasets import DatasetMutations, DatasetQueries
from aigc_admin.resolvers.deployments import DeploymentMutations, DeploymentQueries, DeploymentSubscriptions
from aigc_admin.resolvers.dicts import DictMutations, DictQueries
from aigc_admin.resolvers.evaluations import EvaluationMutations, EvaluationQueries, EvaluationSubscriptions
from aigc_admin.resolvers.extensions import AuditMutations, TraceMaskErrors, TraceOperations, log_refusals
from aigc_admin.resolvers.files import FileMutations, FileQueries
from aigc_admin.resolvers.finetunes import FineTuneMutations, FineTuneQueries, FineTuneSubscriptions
from aigc_admin.resolvers.limits import depth_limit
from aigc_admin.resolvers.models import ModelMutations, ModelQueries
from aigc_admin.resolvers.playground import PlaygroundSubscriptions
from aigc_admin.resolvers.templates import TemplateMutations, TemplateQueries
from aigc_admin.resolvers.tenants import TenantMutations, TenantQueries

Query = merge_types("Query", (AccountQueries, TenantQueries, AuditQueries, DictQueries, ModelQueries,
                              DeploymentQueries, TemplateQueries, ChannelQueries, DatasetQueries, FileQueries,
                              FineTuneQueries, EvaluationQueries, AssistantQueries, DashboardQueries))
Mutation = merge_types("Mutation", (AccountMutations, TenantMutations, DictMutations, ModelMutations,
                                    DeploymentMutations, TemplateMutations, ChannelMutations, DatasetMutations,
                                    FileMutations, FineTuneMutations, EvaluationMutations, AssistantMutations))
Subscription = merge_types("Subscription", (DeploymentSubscriptions, PlaygroundSubscriptions, FineTuneSubscriptions,
                                            AuditSubscriptions, EvaluationSubscriptions, AssistantSubscriptions))


class PlatformSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # strawberry logs every error at ERROR with its traceback: refusals are not failures of the platform
        log_refusals(errors, getattr(getattr(execution_context, "context", None), "trace_id", ""))


def build_schema(*, max_depth: int = 15, max_tokens: int = 2000, max_aliases: int = 30,
                 tracing: bool = False) -> strawberry.Schema:
    return PlatformSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            *([TraceOperations] if tracing else []),
            lambda: AddValidationRules([depth_limit(max_depth)]),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            AuditMutations,
            TraceMaskErrors,
        ],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
