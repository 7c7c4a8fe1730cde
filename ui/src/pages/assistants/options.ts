// What the assistant forms choose from: the tenant's models, tools, MCP servers and channels (one page of each,
// the most the API gives at once).
import { graphql } from "../../gql";
import { useQuery } from "../../hooks/api";

const Options = graphql(`
  query AssistantsPageOptions {
    models(pagination: { offset: 0, limit: 100 }) { items { id name provider enabled } }
    tools(pagination: { offset: 0, limit: 100 }) { items { id name description enabled } }
    mcpServers(pagination: { offset: 0, limit: 100 }) { items { id name enabled tools { qualifiedName } } }
    channels(pagination: { offset: 0, limit: 100 }) { items { id name alias enabled modelIds } }
  }
`);

export function useAssistantOptions() {
  return useQuery(Options, {});
}

export function channelLabel(c: { id: string; name: string; alias: string }): string {
  return c.alias && c.alias !== c.name ? `${c.name} (${c.alias})` : c.name || `#${c.id}`;
}
