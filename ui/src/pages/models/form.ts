// Pure logic of the model forms: form state <-> CreateModelInput / UpdateModelInput, and the deploy form ->
// DeployModelInput, with the same bounds the server checks (so a slip is caught before the round trip).
import type {
  CreateModelInput, DeployModelInput, Engine, ModelType, ModelsPageModelFragment, Provider, UpdateModelInput,
} from "../../gql/graphql";

export const PROVIDERS: readonly Provider[] = ["LOCAL", "EXTERNAL"];
export const MODEL_TYPES: readonly ModelType[] = ["CHAT", "COMPLETION", "EMBEDDING"];
export const ENGINES: readonly Engine[] = ["MODEL_WORKER", "VLLM_WORKER", "VLLM"];
/** What each engine can load quantized (domain/deployments/service.py QUANTIZATION). */
export const QUANTIZATIONS: Record<Engine, readonly string[]> = {
  MODEL_WORKER: ["", "8bit"], VLLM_WORKER: ["", "8bit"],
  VLLM: ["", "awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "bitsandbytes", "gguf", "compressed-tensors"],
};
export type Quantization = string;
export const DTYPES = ["", "auto", "half", "float16", "bfloat16", "float", "float32"] as const;

/** Server bounds (domain/deployments/service.py, domain/models/service.py). */
export const MAX_REPLICAS = 16;
export const MAX_GPUS_PER_REPLICA = 8;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$/;

export interface ModelForm {
  name: string;
  provider: Provider;
  modelType: ModelType;
  maxTokens: number | null;
  parameters: number | null;
  enabled: boolean;
  remark: string;
  baseUrl: string;
  /** Create: the key. Edit: a new key; empty keeps the stored one unless clearCredentials. */
  credentials: string;
  clearCredentials: boolean;
  modelPath: string;
  tenantIds: string[];
  conversationTemplate: string;
}

export function emptyModelForm(tenantId: string | null): ModelForm {
  return {
    name: "", provider: "LOCAL", modelType: "CHAT", maxTokens: 2048, parameters: 0, enabled: true, remark: "",
    baseUrl: "", credentials: "", clearCredentials: false, modelPath: "", tenantIds: tenantId ? [tenantId] : [],
    conversationTemplate: "",
  };
}

export function modelFormFrom(m: ModelsPageModelFragment): ModelForm {
  return {
    name: m.name, provider: m.provider, modelType: m.modelType, maxTokens: m.maxTokens, parameters: m.parameters,
    enabled: m.enabled, remark: m.remark, baseUrl: m.baseUrl, credentials: "", clearCredentials: false,
    modelPath: m.modelPath, tenantIds: [...m.tenantIds], conversationTemplate: m.conversationTemplate,
  };
}

export type ModelProblem = "nameInvalid" | "maxTokensInvalid" | "parametersInvalid" | "baseUrlInvalid";

/** What is wrong with the form (empty: nothing), field name -> problem. */
export function checkModelForm(form: ModelForm, mode: "create" | "edit"): Partial<Record<keyof ModelForm, ModelProblem>> {
  const out: Partial<Record<keyof ModelForm, ModelProblem>> = {};
  if (mode === "create" && !NAME_RE.test(form.name.trim())) out.name = "nameInvalid";
  if (form.maxTokens === null || !Number.isInteger(form.maxTokens) || form.maxTokens < 1 || form.maxTokens > 10_000_000) {
    out.maxTokens = "maxTokensInvalid";
  }
  if (form.parameters === null || form.parameters < 0 || form.parameters > 100_000) out.parameters = "parametersInvalid";
  if (form.provider === "EXTERNAL" && !/^https?:\/\/[^\s/]+/.test(form.baseUrl.trim())) out.baseUrl = "baseUrlInvalid";
  return out;
}

/**
 * The create input. Upstream fields (baseUrl, credentials) go only with an external model and the local ones
 * (modelPath, conversationTemplate) only with a local one: the server refuses the mix.
 */
export function toCreateInput(form: ModelForm): CreateModelInput {
  const external = form.provider === "EXTERNAL";
  return {
    name: form.name.trim(),
    provider: form.provider,
    modelType: form.modelType,
    maxTokens: form.maxTokens ?? 2048,
    parameters: form.parameters ?? 0,
    enabled: form.enabled,
    remark: form.remark.trim(),
    baseUrl: external ? form.baseUrl.trim() : "",
    credentials: external ? form.credentials : "",
    modelPath: external ? "" : form.modelPath.trim(),
    tenantIds: [...form.tenantIds],
    conversationTemplate: external ? "" : form.conversationTemplate.trim(),
  };
}

/**
 * The update input (name and provider cannot change). Credentials: a new key when typed, "" when cleared,
 * left out (kept) otherwise; a local model sends no upstream fields at all.
 */
export function toUpdateInput(id: string, form: ModelForm): UpdateModelInput {
  const input: UpdateModelInput = {
    id,
    modelType: form.modelType,
    maxTokens: form.maxTokens,
    parameters: form.parameters,
    enabled: form.enabled,
    remark: form.remark.trim(),
    tenantIds: [...form.tenantIds],
  };
  if (form.provider === "EXTERNAL") {
    input.baseUrl = form.baseUrl.trim();
    if (form.clearCredentials) input.credentials = "";
    else if (form.credentials) input.credentials = form.credentials;
  } else {
    input.modelPath = form.modelPath.trim();
    input.conversationTemplate = form.conversationTemplate.trim();
  }
  return input;
}

export interface DeployForm {
  replicas: number | null;
  gpusPerReplica: number | null;
  engine: Engine;
  quantization: Quantization;
  label: string;
  /** The vllm engine's options (0 / "" / false: vLLM's default); sent only with that engine. */
  maxModelLen?: number | null;
  tensorParallelSize?: number | null;
  gpuMemoryUtilization?: number | null;
  dtype?: string;
  maxLoras?: number | null;
  enforceEager?: boolean;
  /** Machines one replica spans (Kubernetes, a LeaderWorkerSet); 0/1: one. */
  nodes?: number | null;
  /** Serve the model (a LoRA adapter, e.g. a LoRA fine-tune) on this running vllm deployment instead. */
  baseDeploymentId?: string;
}

export function emptyDeployForm(): DeployForm {
  return { replicas: 1, gpusPerReplica: 0, engine: "MODEL_WORKER", quantization: "", label: "" };
}

export type DeployProblem = "replicasInvalid" | "gpusInvalid" | "labelInvalid";

export function checkDeployForm(form: DeployForm): Partial<Record<keyof DeployForm, DeployProblem>> {
  const out: Partial<Record<keyof DeployForm, DeployProblem>> = {};
  const r = form.replicas;
  if (r === null || !Number.isInteger(r) || r < 1 || r > MAX_REPLICAS) out.replicas = "replicasInvalid";
  const g = form.gpusPerReplica;
  if (g === null || !Number.isInteger(g) || g < 0 || g > MAX_GPUS_PER_REPLICA) out.gpusPerReplica = "gpusInvalid";
  const label = form.label.trim();
  if (label && !LABEL_RE.test(label)) out.label = "labelInvalid";
  return out;
}

export function toDeployInput(modelId: string, form: DeployForm): DeployModelInput {
  // an adapter has no replicas, GPUs or options of its own: the server refuses them
  if (form.baseDeploymentId) return { modelId, baseDeploymentId: form.baseDeploymentId };
  return {
    modelId,
    replicas: form.replicas ?? 1,
    gpusPerReplica: form.gpusPerReplica ?? 0,
    engine: form.engine,
    quantization: QUANTIZATIONS[form.engine].includes(form.quantization) ? form.quantization : "",
    label: form.label.trim(),
    ...(form.engine === "VLLM" ? {
      engineOptions: {
        maxModelLen: form.maxModelLen ?? 0, tensorParallelSize: form.tensorParallelSize ?? 0,
        gpuMemoryUtilization: form.gpuMemoryUtilization ?? 0, dtype: form.dtype ?? "", maxLoras: form.maxLoras ?? 0,
        enforceEager: form.enforceEager ?? false, nodes: form.nodes ?? 0,
      },
    } : {}),
  };
}

export function checkScale(replicas: number | null): boolean {
  return replicas !== null && Number.isInteger(replicas) && replicas >= 1 && replicas <= MAX_REPLICAS;
}
