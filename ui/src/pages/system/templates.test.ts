import { describe, expect, it } from "vitest";
import { formatJson, placeholders, templateProblem } from "./templates";

const good = JSON.stringify({
  image: "${image}",
  command: ["${python}", "-m", "fastchat.serve.model_worker", "--model-path", "${model_path}", "--port", "{port}", "$$HOME"],
  env: { HF_HUB_OFFLINE: "1" },
});

describe("templateProblem", () => {
  it("accepts a valid inference template", () => {
    expect(templateProblem(good, "model_worker")).toBeNull();
  });
  it("reports bad JSON", () => {
    expect(templateProblem("{", "model_worker")?.code).toBe("json");
  });
  it("checks the shape", () => {
    expect(templateProblem("[]", "vllm_worker")?.code).toBe("shape");
    expect(templateProblem('{"command": ["a"], "extra": 1}', "vllm_worker")?.code).toBe("shape");
    expect(templateProblem('{"command": []}', "vllm_worker")?.code).toBe("command");
    expect(templateProblem('{"command": ["a"], "env": {"A": 1}}', "vllm_worker")?.code).toBe("env");
    expect(templateProblem('{"command": ["a"], "image": 3}', "vllm_worker")?.code).toBe("image");
  });
  it("knows each engine's variables", () => {
    const train = JSON.stringify({ command: ["${python}", "${program}", "--data", "$data_path"] });
    expect(templateProblem(train, "finetune")).toBeNull();
    expect(templateProblem(train, "model_worker")).toEqual({ code: "variable", detail: "program" });
    expect(templateProblem(good, "finetune")).toEqual({ code: "variable", detail: "model_path" });
  });
});

describe("placeholders", () => {
  it("finds $name and ${name}, not $$ or {host}", () => {
    expect(placeholders("${a} $b $$c {host} ${D_1}")).toEqual(["a", "b", "D_1"]);
  });
});

describe("formatJson", () => {
  it("indents JSON and refuses the rest", () => {
    expect(formatJson('{"a":[1]}')).toBe('{\n  "a": [\n    1\n  ]\n}');
    expect(formatJson("nope")).toBeNull();
  });
});
