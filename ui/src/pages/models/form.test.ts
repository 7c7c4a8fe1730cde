import { describe, expect, it } from "vitest";
import type { ModelsPageModelFragment } from "../../gql/graphql";
import {
  checkDeployForm, checkModelForm, checkScale, emptyDeployForm, emptyModelForm, modelFormFrom, toCreateInput,
  toDeployInput, toUpdateInput,
} from "./form";

const model: ModelsPageModelFragment = {
  id: "7", name: "qwen", provider: "LOCAL", modelType: "CHAT", maxTokens: 4096, parameters: 7, enabled: true,
  remark: "r", isFineTuned: false, baseUrl: "", hasCredentials: false, modelPath: "/m/qwen", lastOperator: "admin",
  createdAt: "2024-01-01T00:00:00", tenantIds: ["1", "2"], conversationTemplate: "", hasChatTemplate: true,
};

describe("model form", () => {
  it("defaults to a local chat model granted to the current tenant", () => {
    const form = emptyModelForm("3");
    expect(form.provider).toBe("LOCAL");
    expect(form.tenantIds).toEqual(["3"]);
    expect(emptyModelForm(null).tenantIds).toEqual([]);
  });

  it("sends every create field, upstream fields only for external models", () => {
    const local = toCreateInput({ ...emptyModelForm("1"), name: " m1 ", modelPath: " /w ", baseUrl: "http://x", credentials: "k" });
    expect(local).toEqual({
      name: "m1", provider: "LOCAL", modelType: "CHAT", maxTokens: 2048, parameters: 0, enabled: true, remark: "",
      baseUrl: "", credentials: "", modelPath: "/w", tenantIds: ["1"], conversationTemplate: "",
    });
    const external = toCreateInput({
      ...emptyModelForm(null), name: "gpt", provider: "EXTERNAL", baseUrl: "https://api", credentials: "sk", modelPath: "/w",
      conversationTemplate: "vicuna_v1.1",
    });
    expect(external.baseUrl).toBe("https://api");
    expect(external.credentials).toBe("sk");
    expect(external.modelPath).toBe("");
    expect(external.conversationTemplate).toBe("");
  });

  it("keeps stored credentials unless a new key is typed or they are cleared", () => {
    const ext = { ...model, provider: "EXTERNAL" as const, baseUrl: "https://u", modelPath: "" };
    const form = modelFormFrom(ext);
    expect("credentials" in toUpdateInput("7", form)).toBe(false);
    expect(toUpdateInput("7", { ...form, credentials: "new" }).credentials).toBe("new");
    expect(toUpdateInput("7", { ...form, credentials: "new", clearCredentials: true }).credentials).toBe("");
    expect(toUpdateInput("7", form).baseUrl).toBe("https://u");
  });

  it("sends no upstream fields when editing a local model", () => {
    const input = toUpdateInput("7", modelFormFrom(model));
    expect(input).toEqual({
      id: "7", modelType: "CHAT", maxTokens: 4096, parameters: 7, enabled: true, remark: "r", tenantIds: ["1", "2"],
      modelPath: "/m/qwen", conversationTemplate: "",
    });
    expect("baseUrl" in input).toBe(false);
  });

  it("checks the bounds the server checks", () => {
    expect(checkModelForm({ ...emptyModelForm(null), name: "ok-name" }, "create")).toEqual({});
    expect(checkModelForm({ ...emptyModelForm(null), name: "" }, "create").name).toBe("nameInvalid");
    expect(checkModelForm({ ...emptyModelForm(null), name: "-x" }, "create").name).toBe("nameInvalid");
    expect(checkModelForm({ ...emptyModelForm(null), name: "" }, "edit").name).toBeUndefined();
    expect(checkModelForm({ ...emptyModelForm(null), name: "a", maxTokens: 0 }, "create").maxTokens).toBe("maxTokensInvalid");
    expect(checkModelForm({ ...emptyModelForm(null), name: "a", parameters: null }, "create").parameters).toBe("parametersInvalid");
    expect(checkModelForm({ ...emptyModelForm(null), name: "a", provider: "EXTERNAL", baseUrl: "ftp://x" }, "create").baseUrl)
      .toBe("baseUrlInvalid");
  });
});

describe("deploy form", () => {
  it("builds DeployModelInput from the form", () => {
    expect(toDeployInput("7", emptyDeployForm())).toEqual({
      modelId: "7", replicas: 1, gpusPerReplica: 0, engine: "MODEL_WORKER", quantization: "", label: "",
    });
    expect(toDeployInput("7", { replicas: 2, gpusPerReplica: 1, engine: "VLLM_WORKER", quantization: "8bit", label: " a100 " }))
      .toEqual({ modelId: "7", replicas: 2, gpusPerReplica: 1, engine: "VLLM_WORKER", quantization: "8bit", label: "a100" });
    expect(toDeployInput("7", { ...emptyDeployForm(), engine: "VLLM", quantization: "8bit", maxModelLen: 4096,
      enforceEager: true })).toEqual({
      modelId: "7", replicas: 1, gpusPerReplica: 0, engine: "VLLM", quantization: "", label: "",
      engineOptions: { maxModelLen: 4096, tensorParallelSize: 0, gpuMemoryUtilization: 0, dtype: "", maxLoras: 0,
        enforceEager: true, nodes: 0 },
    });  // 8bit is FastChat's: not sent to vLLM; the options go only with the vllm engine
    expect(toDeployInput("9", { ...emptyDeployForm(), replicas: 3, gpusPerReplica: 1, baseDeploymentId: "4" }))
      .toEqual({ modelId: "9", baseDeploymentId: "4" });  // a LoRA adapter on a running vllm deployment
  });

  it("refuses what the server would", () => {
    expect(checkDeployForm(emptyDeployForm())).toEqual({});
    expect(checkDeployForm({ ...emptyDeployForm(), replicas: 0 }).replicas).toBe("replicasInvalid");
    expect(checkDeployForm({ ...emptyDeployForm(), replicas: 17 }).replicas).toBe("replicasInvalid");
    expect(checkDeployForm({ ...emptyDeployForm(), replicas: 1.5 }).replicas).toBe("replicasInvalid");
    expect(checkDeployForm({ ...emptyDeployForm(), gpusPerReplica: 9 }).gpusPerReplica).toBe("gpusInvalid");
    expect(checkDeployForm({ ...emptyDeployForm(), label: "bad label" }).label).toBe("labelInvalid");
    expect(checkDeployForm({ ...emptyDeployForm(), label: "gpu-a100" })).toEqual({});
    expect(checkScale(3)).toBe(true);
    expect(checkScale(0)).toBe(false);
    expect(checkScale(null)).toBe(false);
  });
});
