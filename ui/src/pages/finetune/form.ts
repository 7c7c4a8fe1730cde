// The new-job form as plain data: every field of CreateFineTuneJobInput (and its gate), the platform's ranges,
// checks before sending, and the input sent (an empty optional field is left out, so the server default applies).
import type { CreateFineTuneJobInput, EvaluationMetric, FineTuneGateInput } from "../../gql/graphql";

export type NumberField =
  | "epochs" | "trainBatchSize" | "evalBatchSize" | "accumulationSteps" | "learningRate" | "weightDecay"
  | "warmupRatio" | "modelMaxLength" | "evalSteps" | "saveSteps" | "saveTotalLimit" | "loggingSteps"
  | "procPerNode" | "holdoutPercent" | "holdoutSeed";

export type GateNumberField = "threshold" | "minImprovement" | "maxTokens" | "concurrency";

export interface Range {
  min: number;
  max: number;
  /** The upper bound itself is not allowed (holdoutPercent < 100). */
  belowMax?: boolean;
  integer: boolean;
  default: number;
}

/** The platform's ranges and defaults (domain/finetunes/service.py RANGES, evaluations/gate.py). */
export const RANGES: Record<NumberField, Range> = {
  epochs: { min: 1, max: 100, integer: true, default: 1 },
  trainBatchSize: { min: 1, max: 1024, integer: true, default: 1 },
  evalBatchSize: { min: 1, max: 1024, integer: true, default: 1 },
  accumulationSteps: { min: 1, max: 1024, integer: true, default: 1 },
  learningRate: { min: 1e-8, max: 1, integer: false, default: 2e-5 },
  weightDecay: { min: 0, max: 1, integer: false, default: 0 },
  warmupRatio: { min: 0, max: 1, integer: false, default: 0.04 },
  modelMaxLength: { min: 16, max: 1_048_576, integer: true, default: 2048 },
  evalSteps: { min: 0, max: 10_000_000, integer: true, default: 0 },
  saveSteps: { min: 0, max: 10_000_000, integer: true, default: 0 },
  saveTotalLimit: { min: 0, max: 1000, integer: true, default: 0 },
  loggingSteps: { min: 1, max: 1_000_000, integer: true, default: 1 },
  procPerNode: { min: 0, max: 64, integer: true, default: 0 },
  holdoutPercent: { min: 0, max: 100, belowMax: true, integer: false, default: 0 },
  holdoutSeed: { min: -2_147_483_648, max: 2_147_483_647, integer: true, default: 0 },
};

export const GATE_RANGES: Record<GateNumberField, Range> = {
  threshold: { min: 0, max: 1, integer: false, default: 0 },
  minImprovement: { min: -1, max: 1, integer: false, default: 0 },
  maxTokens: { min: 1, max: 32_768, integer: true, default: 256 },
  concurrency: { min: 1, max: 64, integer: true, default: 4 },
};

export const METRICS: readonly EvaluationMetric[] = ["EXACT_MATCH", "CONTAINS", "BLEU", "CHRF", "ROUGE_L", "JUDGE", "PAIRWISE"];
export const JUDGE_METRICS: readonly EvaluationMetric[] = ["JUDGE", "PAIRWISE"];

export interface GateForm {
  metric: EvaluationMetric;
  threshold: number | null;
  minImprovement: number | null;
  fileId: string;
  judgeModelId: string;
  maxTokens: number | null;
  concurrency: number | null;
}

export interface JobForm {
  baseModelId: string;
  fileId: string;
  suffix: string;
  channelId: string;
  autoDeploy: boolean;
  lora: boolean;
  numbers: Record<NumberField, number | null>;
  gateOn: boolean;
  gate: GateForm;
}

export function defaultForm(): JobForm {
  const numbers = {} as Record<NumberField, number | null>;
  for (const [name, range] of Object.entries(RANGES) as [NumberField, Range][]) numbers[name] = range.default;
  return {
    baseModelId: "", fileId: "", suffix: "", channelId: "", autoDeploy: false, lora: true, numbers, gateOn: false,
    gate: { metric: "ROUGE_L", threshold: null, minImprovement: null, fileId: "", judgeModelId: "", maxTokens: 256, concurrency: 4 },
  };
}

export type Problem =
  | { field: string; code: "required" }
  | { field: string; code: "range"; min: number; max: number }
  | { field: string; code: "integer" }
  | { field: string; code: "suffix" }
  | { field: string; code: "gateRule" }
  | { field: string; code: "gateJudge" }
  | { field: string; code: "gateChannel" }
  | { field: string; code: "gateSplit" }
  | { field: string; code: "gatePairwise" };

function checkNumber(field: string, value: number | null, range: Range, required: boolean, out: Problem[]): void {
  if (value === null || Number.isNaN(value)) {
    if (required) out.push({ field, code: "required" });
    return;
  }
  if (range.integer && !Number.isInteger(value)) out.push({ field, code: "integer" });
  else if (value < range.min || value > range.max || (range.belowMax && value >= range.max)) {
    out.push({ field, code: "range", min: range.min, max: range.max });
  }
}

/** What is wrong before sending (the platform checks again); field names as GraphQL's ("gate.threshold"). */
export function validate(form: JobForm): Problem[] {
  const out: Problem[] = [];
  if (!form.baseModelId) out.push({ field: "baseModelId", code: "required" });
  if (!form.fileId) out.push({ field: "fileId", code: "required" });
  if (form.suffix && !/^[A-Za-z0-9_-]{1,40}$/.test(form.suffix)) out.push({ field: "suffix", code: "suffix" });
  for (const [name, range] of Object.entries(RANGES) as [NumberField, Range][]) {
    checkNumber(name, form.numbers[name], range, false, out);
  }
  if (form.gateOn) {
    const g = form.gate;
    checkNumber("gate.threshold", g.threshold, GATE_RANGES.threshold, false, out);
    checkNumber("gate.minImprovement", g.minImprovement, GATE_RANGES.minImprovement, false, out);
    checkNumber("gate.maxTokens", g.maxTokens, GATE_RANGES.maxTokens, false, out);
    checkNumber("gate.concurrency", g.concurrency, GATE_RANGES.concurrency, false, out);
    if (g.threshold === null && g.minImprovement === null) out.push({ field: "gate.threshold", code: "gateRule" });
    if (g.metric === "PAIRWISE" && g.minImprovement !== null) out.push({ field: "gate.minImprovement", code: "gatePairwise" });
    if (JUDGE_METRICS.includes(g.metric) !== Boolean(g.judgeModelId)) out.push({ field: "gate.judgeModelId", code: "gateJudge" });
    if (!form.channelId) out.push({ field: "channelId", code: "gateChannel" });
    if (!g.fileId && !((form.numbers.holdoutPercent ?? 0) > 0)) out.push({ field: "gate.fileId", code: "gateSplit" });
  }
  return out;
}

/** The mutation's input: empty optional fields are left out (the server's defaults apply). */
export function buildInput(form: JobForm): CreateFineTuneJobInput {
  const input: CreateFineTuneJobInput = {
    baseModelId: form.baseModelId, fileId: form.fileId, lora: form.lora, autoDeploy: form.autoDeploy,
  };
  if (form.suffix) input.suffix = form.suffix;
  if (form.channelId) input.channelId = form.channelId;
  for (const name of Object.keys(RANGES) as NumberField[]) {
    const value = form.numbers[name];
    if (value !== null && !Number.isNaN(value)) input[name] = value;
  }
  if (form.gateOn) {
    const g = form.gate;
    const gate: FineTuneGateInput = { metric: g.metric };
    if (g.threshold !== null) gate.threshold = g.threshold;
    if (g.minImprovement !== null) gate.minImprovement = g.minImprovement;
    if (g.fileId) gate.fileId = g.fileId;
    if (g.judgeModelId) gate.judgeModelId = g.judgeModelId;
    if (g.maxTokens !== null) gate.maxTokens = g.maxTokens;
    if (g.concurrency !== null) gate.concurrency = g.concurrency;
    input.gate = gate;
  }
  return input;
}
