// Cancel, retry and delete, offered only when the evaluation's state allows them and the role may.
import { graphql } from "../../gql";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import { useSession } from "../../state/session";
import { Button, ConfirmButton, ErrorText } from "../../components/ui";
import { canCancel, canDelete, canRetry } from "./logic";
import { text } from "./text";

const Cancel = graphql(`
  mutation EvaluationsPageCancel($id: ID!) {
    cancelEvaluation(id: $id) { evaluation { id status } errors { field code message } }
  }
`);

const Retry = graphql(`
  mutation EvaluationsPageRetry($id: ID!) {
    retryEvaluation(id: $id) { evaluation { id status } errors { field code message } }
  }
`);

const Delete = graphql(`
  mutation EvaluationsPageDelete($id: ID!) {
    deleteEvaluation(id: $id) { errors { field code message } }
  }
`);

export function EvaluationActions({ evaluation, onChanged, onDeleted }: {
  evaluation: { id: string; status: string; failed: number };
  onChanged: () => void;
  onDeleted: () => void;
}) {
  const t = useText(text);
  const { canManage } = useSession();
  const action = useAction();
  if (!canManage) return null;
  const { id, status, failed } = evaluation;
  return (
    <span className="actions">
      {canCancel(status) ? (
        <ConfirmButton kind="plain" busy={action.busy} onConfirm={() => void action.run(async () => {
          await mutate(Cancel, { id });
          onChanged();
        })}>{t("cancelRun")}</ConfirmButton>
      ) : null}
      {canRetry(status, failed) ? (
        <Button busy={action.busy} onClick={() => void action.run(async () => {
          await mutate(Retry, { id });
          onChanged();
        })}>{t("retry")}</Button>
      ) : null}
      {canDelete(status) ? (
        <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
          await mutate(Delete, { id });
          onDeleted();
        })}>{t("delete")}</ConfirmButton>
      ) : null}
      <ErrorText error={action.error} />
    </span>
  );
}
