// What a maintainer may do to one channel: edit, enable/disable, rotate its key (shown once), delete.
import { useState } from "react";
import { Button, ConfirmButton, ErrorText, KeyOnce, Modal } from "../../components/ui";
import { graphql } from "../../gql";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import { ChannelFormView } from "./ChannelForm";
import { channelToForm, formToInput, type ChannelLike } from "./form";
import { text } from "./text";

const Update = graphql(`
  mutation ChannelsPageUpdate($input: UpdateChannelInput!) {
    updateChannel(input: $input) { channel { id enabled } errors { code message field } }
  }
`);

const Rotate = graphql(`
  mutation ChannelsPageRotate($id: ID!) {
    rotateChannelKey(id: $id) { key channel { id keyPrefix } errors { code message field } }
  }
`);

const Delete = graphql(`
  mutation ChannelsPageDelete($id: ID!) {
    deleteChannel(id: $id) { errors { code message field } }
  }
`);

/** A key just created or rotated, in a dialog; closing it forgets the key. */
export function KeyDialog({ title, secret, onClose }: { title: string; secret: string; onClose: () => void }) {
  const t = useText(text);
  return (
    <Modal title={title} onClose={onClose}>
      <KeyOnce value={secret} />
      <div className="actions">
        <Button kind="primary" onClick={onClose}>{t("done")}</Button>
      </div>
    </Modal>
  );
}

export function ChannelActions({ channel, models, onChanged, onDeleted }: {
  channel: ChannelLike & { id: string };
  models: readonly { value: string; label: string }[];
  onChanged: () => void;
  onDeleted: () => void;
}) {
  const t = useText(text);
  const action = useAction();
  const [editing, setEditing] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const edit = useAction();
  return (
    <div className="actions">
      <Button onClick={() => { edit.clear(); setEditing(true); }}>{t("edit")}</Button>
      <Button busy={action.busy} onClick={() => void action.run(async () => {
        await mutate(Update, { input: { id: channel.id, enabled: !channel.enabled } });
        onChanged();
      })}>
        {channel.enabled ? t("disable") : t("enable")}
      </Button>
      <ConfirmButton kind="plain" busy={action.busy} onConfirm={() => void action.run(async () => {
        const data = await mutate(Rotate, { id: channel.id });
        setSecret(data.rotateChannelKey.key ?? null);
        onChanged();
      })}>
        {t("rotate")}
      </ConfirmButton>
      <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
        await mutate(Delete, { id: channel.id });
        onDeleted();
      })}>
        {t("del")}
      </ConfirmButton>
      <ErrorText error={action.error} />
      {editing ? (
        <Modal title={t("editTitle")} onClose={() => setEditing(false)} wide>
          <ChannelFormView initial={channelToForm(channel)} submitLabel={t("save")} busy={edit.busy} error={edit.error}
            models={models} onCancel={() => setEditing(false)}
            onSubmit={(form) => void edit.run(async () => {
              await mutate(Update, { input: { ...formToInput(form), id: channel.id } });
              setEditing(false);
              onChanged();
            })} />
        </Modal>
      ) : null}
      {secret ? <KeyDialog title={t("rotated")} secret={secret} onClose={() => setSecret(null)} /> : null}
    </div>
  );
}
