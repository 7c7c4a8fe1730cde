"""How deep an operation may go: every field counts, introspection fields too (strawberry's own limiter skips
fields that start with ``__``, so a deep ``__schema { types { fields { type { ofType … } } } }`` was free)."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_introspection_query,
    parse,
)


def depth(selections: SelectionSetNode | None, fragment: Any, seen: frozenset[str] = frozenset()) -> int:
    """The depth of the deepest field under ``selections`` (a root field is at depth 1); ``fragment(name)`` gives a
    fragment's definition. A fragment already on the path is not followed again (cycles are refused elsewhere)."""
    if selections is None:
        return 0
    deepest = 0
    for node in selections.selections:
        if isinstance(node, FieldNode):
            deepest = max(deepest, 1 + depth(node.selection_set, fragment, seen))
        elif isinstance(node, InlineFragmentNode):
            deepest = max(deepest, depth(node.selection_set, fragment, seen))
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            definition = fragment(node.name.value)
            if definition is not None:
                deepest = max(deepest, depth(definition.selection_set, fragment, seen | {node.name.value}))
    return deepest


def _introspection_depth() -> int:
    document = parse(get_introspection_query(descriptions=True))
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "name") and d.name is not None}
    return max(depth(d.selection_set, fragments.get) for d in document.definitions
               if isinstance(d, OperationDefinitionNode))


# The standard introspection query (GraphiQL's) is this deep: a limit below it and GraphiQL cannot load the schema.
INTROSPECTION_DEPTH = _introspection_depth()


def depth_limit(max_depth: int) -> type[ValidationRule]:
    class DepthLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            found = depth(node.selection_set, self.context.get_fragment)
            if found > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(GraphQLError(
                    f"'{name}' is {found} fields deep; the maximum operation depth is {max_depth} "
                    "(graphql.max.depth; introspection fields count too)", node))

    return DepthLimit
