// Undeploy, scale and redeploy: offered to maintainers (and platform administrators) when the status allows them.
import { useState } from "react";
import { Button, ConfirmButton, ErrorText, Modal, NumberInput } from "../../components/ui";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import { useSession } from "../../state/session";
import { checkScale, MAX_REPLICAS } from "../models/form";
import { RedeployModel, ScaleDeployment, UndeployModel } from "./documents";
import { mayRedeploy, mayScale, mayUndeploy } from "./live";
import { text } from "./text";
import type { Deployment } from "./useLiveDeployments";

function ScaleDialog({ deployment, onClose, onScaled }: {
  deployment: Deployment; onClose: () => void; onScaled: (d: Deployment) => void;
}) {
  const t = useText(text);
  const [replicas, setReplicas] = useState<number | null>(deployment.replicas);
  const [shown, setShown] = useState(false);
  const action = useAction();
  const ok = checkScale(replicas);
  return (
    <Modal title={t("scaleTitle", { model: deployment.modelName })} onClose={onClose}>
      <form aria-label={t("scaleForm")} onSubmit={(e) => {
        e.preventDefault();
        setShown(true);
        if (!ok || replicas === null) return;
        void action.run(async () => {
          const data = await mutate(ScaleDeployment, { input: { id: deployment.id, replicas } });
          if (data.scaleDeployment.deployment) onScaled(data.scaleDeployment.deployment);
        });
      }}>
        <NumberInput label={t("replicas")} name="replicas" value={replicas} onChange={setReplicas} min={1}
          max={MAX_REPLICAS} step={1} />
        <ErrorText error={shown && !ok ? t("replicasInvalid", { max: MAX_REPLICAS }) : action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{t("scaleSubmit")}</Button>
        </div>
      </form>
    </Modal>
  );
}

export function DeploymentActions({ deployment, onChanged }: { deployment: Deployment; onChanged: (d: Deployment) => void }) {
  const t = useText(text);
  const { canManage } = useSession();
  const action = useAction();
  const [scaling, setScaling] = useState(false);
  if (!canManage) return null;
  const run = (fn: () => Promise<Deployment | null | undefined>) => void action.run(async () => {
    const d = await fn();
    if (d) onChanged(d);
  });
  const status = deployment.status;
  return (
    <div className="actions">
      {mayScale(status) ? <Button busy={action.busy} onClick={() => setScaling(true)}>{t("scale")}</Button> : null}
      {mayRedeploy(status) ? (
        <ConfirmButton kind="plain" busy={action.busy}
          onConfirm={() => run(async () => (await mutate(RedeployModel, { id: deployment.id })).redeployModel.deployment)}>
          {t("redeploy")}
        </ConfirmButton>
      ) : null}
      {mayUndeploy(status) ? (
        <ConfirmButton busy={action.busy}
          onConfirm={() => run(async () => (await mutate(UndeployModel, { id: deployment.id })).undeployModel.deployment)}>
          {t("undeploy")}
        </ConfirmButton>
      ) : null}
      <ErrorText error={action.error} />
      {scaling ? (
        <ScaleDialog deployment={deployment} onClose={() => setScaling(false)}
          onScaled={(d) => { setScaling(false); onChanged(d); }} />
      ) : null}
    </div>
  );
}
