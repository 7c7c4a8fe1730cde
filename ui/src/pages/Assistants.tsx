// Assistants (/assistants, /assistants/:id): the list, and one assistant with its tools, publishing, playground
// and runs.
import { Page } from "../components/ui";
import { useText } from "../i18n";
import { matchPath } from "../router";
import { useSession } from "../state/session";
import { AssistantDetail } from "./assistants/AssistantDetail";
import { AssistantList } from "./assistants/AssistantList";
import { text } from "./assistants/text";

export default function Assistants({ path }: { path: string }) {
  const t = useText(text);
  const { tenantId } = useSession();
  if (!tenantId) return <Page title={t("title")}><p className="notice">{t("pickTenant")}</p></Page>;
  const one = matchPath("/assistants/:id", path);
  if (one) return <AssistantDetail key={one.id} id={one.id} />;
  return <AssistantList />;
}
