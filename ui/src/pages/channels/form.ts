// The channel form's state and its ChannelInput: a blank limit or a ticked "unlimited" box both mean no limit
// (the API's unlimitedQuota / unlimitedRpm / unlimitedTpm / neverExpires flags), so an edit can clear a limit.
import type { ChannelInput } from "../../gql/graphql";
import { isoToLocalInput, localInputToIso } from "./time";

export interface ChannelForm {
  alias: string;
  remark: string;
  email: string;
  quota: number | null;
  unlimitedQuota: boolean;
  /** datetime-local value ("" = none) */
  expiresAt: string;
  neverExpires: boolean;
  rpmLimit: number | null;
  unlimitedRpm: boolean;
  tpmLimit: number | null;
  unlimitedTpm: boolean;
  enabled: boolean;
  modelIds: string[];
}

export interface ChannelLike {
  alias: string;
  remark: string;
  email: string;
  quota?: number | null;
  expiresAt?: string | null;
  rpmLimit?: number | null;
  tpmLimit?: number | null;
  enabled: boolean;
  modelIds: readonly string[];
}

export function emptyChannelForm(): ChannelForm {
  return {
    alias: "", remark: "", email: "", quota: null, unlimitedQuota: true, expiresAt: "", neverExpires: true,
    rpmLimit: null, unlimitedRpm: true, tpmLimit: null, unlimitedTpm: true, enabled: true, modelIds: [],
  };
}

export function channelToForm(c: ChannelLike): ChannelForm {
  return {
    alias: c.alias, remark: c.remark, email: c.email,
    quota: c.quota ?? null, unlimitedQuota: c.quota === null || c.quota === undefined,
    expiresAt: isoToLocalInput(c.expiresAt), neverExpires: !c.expiresAt,
    rpmLimit: c.rpmLimit ?? null, unlimitedRpm: c.rpmLimit === null || c.rpmLimit === undefined,
    tpmLimit: c.tpmLimit ?? null, unlimitedTpm: c.tpmLimit === null || c.tpmLimit === undefined,
    enabled: c.enabled, modelIds: [...c.modelIds],
  };
}

/** Problems the browser can see before asking: the name of the field, or null. */
export function channelFormProblem(f: ChannelForm): keyof ChannelForm | null {
  if (f.alias.trim().length > 64) return "alias";
  if (f.email && !/^[^@\s]+@[^@\s]+$/.test(f.email)) return "email";
  if (!f.unlimitedQuota && f.quota !== null && (f.quota < 0 || !Number.isInteger(f.quota))) return "quota";
  if (!f.unlimitedRpm && f.rpmLimit !== null && (f.rpmLimit < 1 || !Number.isInteger(f.rpmLimit))) return "rpmLimit";
  if (!f.unlimitedTpm && f.tpmLimit !== null && (f.tpmLimit < 1 || !Number.isInteger(f.tpmLimit))) return "tpmLimit";
  if (!f.neverExpires && f.expiresAt && localInputToIso(f.expiresAt) === null) return "expiresAt";
  return null;
}

/** The input for createChannel / updateChannel (without the id). An empty alias keeps the server's (or the current) one. */
export function formToInput(f: ChannelForm): ChannelInput {
  const input: ChannelInput = { remark: f.remark, email: f.email.trim(), enabled: f.enabled, modelIds: [...f.modelIds] };
  if (f.alias.trim()) input.alias = f.alias.trim();
  if (f.unlimitedQuota || f.quota === null) input.unlimitedQuota = true;
  else input.quota = f.quota;
  if (f.unlimitedRpm || f.rpmLimit === null) input.unlimitedRpm = true;
  else input.rpmLimit = f.rpmLimit;
  if (f.unlimitedTpm || f.tpmLimit === null) input.unlimitedTpm = true;
  else input.tpmLimit = f.tpmLimit;
  const expires = f.neverExpires ? null : localInputToIso(f.expiresAt);
  if (expires) input.expiresAt = expires;
  else input.neverExpires = true;
  return input;
}
