// Tools & MCP (/tools): the tenant's HTTP tools (by hand or from OpenAPI), its MCP servers and the egress
// allow-list of its tools. ?tab=tools|mcp|egress picks the part.
import { Page, Tabs } from "../components/ui";
import { useText } from "../i18n";
import { navigate, useQueryParam } from "../router";
import { useSession } from "../state/session";
import { text } from "./tools/text";
import { ToolList } from "./tools/ToolList";
import { McpServers } from "./tools/McpServers";
import { Egress } from "./tools/Egress";

type Tab = "tools" | "mcp" | "egress";

export default function Tools({ path }: { path: string }) {
  const t = useText(text);
  const { tenantId } = useSession();
  const param = useQueryParam("tab");
  const tab: Tab = param === "mcp" || param === "egress" ? param : "tools";
  if (!tenantId) {
    return <Page title={t("title")}><p className="notice">{t("pickTenant")}</p></Page>;
  }
  return (
    <Page title={t("title")}>
      <Tabs<Tab> value={tab} onChange={(v) => navigate(v === "tools" ? path : `${path}?tab=${v}`)} tabs={[
        { value: "tools", label: t("tabTools") },
        { value: "mcp", label: t("tabMcp") },
        { value: "egress", label: t("tabEgress") },
      ]} />
      {tab === "tools" ? <ToolList /> : tab === "mcp" ? <McpServers /> : <Egress />}
    </Page>
  );
}
