// Templates are JSON ({image, command: [...], env: {...}} with ${variables}); the platform validates them on save,
// this checks the same before asking so a typo is shown where it is typed. Training templates are the
// "finetune" engine, with the training program's variables.

export const ENGINES = ["model_worker", "vllm_worker", "finetune"] as const;
export type Engine = (typeof ENGINES)[number];

export const INFERENCE_VARIABLES = ["python", "model_path", "model_name", "controller_address", "device", "gpus",
  "quantization_args", "max_gpu_memory", "worker_args", "conv_template_args"] as const;
export const TRAINING_VARIABLES = ["python", "program", "base_model_path", "data_path", "output_dir", "epochs",
  "train_batch_size", "eval_batch_size", "accumulation_steps", "learning_rate", "weight_decay", "warmup_ratio",
  "model_max_length", "eval_steps", "save_steps", "save_total_limit", "logging_steps", "lora_args"] as const;

export function isTraining(engine: string): boolean {
  return engine === "finetune";
}

export function variablesFor(engine: string): readonly string[] {
  return [...(isTraining(engine) ? TRAINING_VARIABLES : INFERENCE_VARIABLES), "image"];
}

export type TemplateProblem =
  | { code: "json"; detail: string }
  | { code: "shape" | "command" | "env" | "image"; detail?: undefined }
  | { code: "variable"; detail: string };

// Python's string.Template: $$, $name or ${name} (case-insensitive identifiers)
const PLACEHOLDER = /\$(?:(\$)|([_a-z][_a-z0-9]*)|\{([_a-z][_a-z0-9]*)\}|())/gi;

/** Names of the ${variables} a string uses. */
export function placeholders(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = m[2] ?? m[3];
    if (name) out.push(name);
  }
  return out;
}

/** The first problem of a template's content for an engine, or null when the platform would take it. */
export function templateProblem(content: string, engine: string): TemplateProblem | null {
  let data: unknown;
  try {
    data = JSON.parse(content);
  } catch (e) {
    return { code: "json", detail: e instanceof Error ? e.message : String(e) };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return { code: "shape" };
  const obj = data as Record<string, unknown>;
  if (Object.keys(obj).some((k) => !["image", "command", "env"].includes(k))) return { code: "shape" };
  const command = obj.command;
  if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === "string")) return { code: "command" };
  const env = obj.env ?? {};
  if (typeof env !== "object" || env === null || Array.isArray(env) || !Object.values(env).every((v) => typeof v === "string")) {
    return { code: "env" };
  }
  const image = obj.image ?? "";
  if (typeof image !== "string") return { code: "image" };
  const allowed = variablesFor(engine);
  for (const text of [image, ...(command as string[]), ...(Object.values(env) as string[])]) {
    for (const name of placeholders(text)) {
      if (!allowed.includes(name)) return { code: "variable", detail: name };
    }
  }
  return null;
}

/** Indent valid JSON (the textarea's "Format" button); null when it is not JSON. */
export function formatJson(content: string): string | null {
  try {
    return JSON.stringify(JSON.parse(content), null, 2);
  } catch {
    return null;
  }
}
