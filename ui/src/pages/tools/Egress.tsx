// The tenant's egress allow-list: the only hosts its tools may call (empty: any public host).
import { useEffect, useState } from "react";
import { graphql } from "../../gql";
import { mutate, useAction, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { useSession } from "../../state/session";
import { Button, Card, ErrorText, Loading, TextArea } from "../../components/ui";
import { STACK } from "../assistants/fields";
import { text } from "./text";
import { parseHosts } from "./toolForm";

const Hosts = graphql(`
  query ToolsPageEgress { egressHosts }
`);

const SetHosts = graphql(`
  mutation ToolsPageSetEgress($hosts: [String!]!) {
    setEgressHosts(hosts: $hosts) { hosts errors { field code message } }
  }
`);

export function Egress() {
  const t = useText(text);
  const { canManage } = useSession();
  const hosts = useQuery(Hosts, {});
  const action = useAction();
  const [draft, setDraft] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const current = hosts.data?.egressHosts;
  // the stored list fills the field once it has loaded, unless something was typed already
  useEffect(() => {
    if (current) setDraft((d) => d ?? current.join("\n"));
  }, [current]);

  return (
    <Card title={t("egressTitle")}>
      <Loading loading={hosts.loading} />
      <ErrorText error={hosts.error ?? action.error} />
      <p className="muted">{t("egressNote")}</p>
      {current ? <p role="status">{current.length ? t("egressCurrent", { hosts: current.join(", ") }) : t("egressAny")}</p> : null}
      {canManage ? (
        <form style={STACK} aria-label={t("egressTitle")} onSubmit={(e) => {
          e.preventDefault();
          setSaved(false);
          void action.run(async () => {
            const data = await mutate(SetHosts, { hosts: parseHosts(draft ?? "") });
            setDraft(data.setEgressHosts.hosts.join("\n"));
            await hosts.reload();
            setSaved(true);
          });
        }}>
          <TextArea label={t("hosts")} name="hosts" value={draft ?? ""} onChange={(v) => { setDraft(v); setSaved(false); }} rows={6} mono
            hint={t("hostsHint")} />
          <div className="actions">
            <Button kind="primary" type="submit" busy={action.busy}>{t("save")}</Button>
            {saved ? <span className="muted" role="status">{t("egressSaved")}</span> : null}
          </div>
        </form>
      ) : null}
    </Card>
  );
}
