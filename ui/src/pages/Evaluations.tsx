// Evaluations (/evaluations, /evaluations/:id, /evaluations/compare?ids=1,2): the list with its filters and the
// new-evaluation form, one evaluation live and its samples, and evaluations of the same samples side by side.
import { Page } from "../components/ui";
import { useText } from "../i18n";
import { matchPath } from "../router";
import { useSession } from "../state/session";
import { Compare } from "./evaluations/Compare";
import { EvaluationDetail } from "./evaluations/EvaluationDetail";
import { EvaluationList } from "./evaluations/EvaluationList";
import { text } from "./evaluations/text";

export default function Evaluations({ path }: { path: string }) {
  const t = useText(text);
  const { tenantId } = useSession();
  if (!tenantId) return <Page title={t("title")}><p className="notice">{t("pickTenant")}</p></Page>;
  if (matchPath("/evaluations/compare", path)) return <Compare />;
  const one = matchPath("/evaluations/:id", path);
  if (one) return <EvaluationDetail key={one.id} id={one.id} />;
  return <EvaluationList />;
}
