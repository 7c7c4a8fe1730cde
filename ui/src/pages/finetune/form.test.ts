import { describe, expect, it } from "vitest";
import { buildInput, defaultForm, validate } from "./form";

function ready() {
  const form = defaultForm();
  form.baseModelId = "3";
  form.fileId = "file-0123";
  return form;
}

describe("validate", () => {
  it("needs a base model and a file", () => {
    expect(validate(defaultForm()).map((p) => p.field)).toEqual(["baseModelId", "fileId"]);
    expect(validate(ready())).toEqual([]);
  });

  it("checks the platform's ranges and integers", () => {
    const form = ready();
    form.numbers.learningRate = 2;
    form.numbers.epochs = 1.5;
    form.numbers.holdoutPercent = 100;
    form.suffix = "bad suffix!";
    expect(validate(form)).toEqual([
      { field: "suffix", code: "suffix" },
      { field: "epochs", code: "integer" },
      { field: "learningRate", code: "range", min: 1e-8, max: 1 },
      { field: "holdoutPercent", code: "range", min: 0, max: 100 },
    ]);
  });

  it("checks the gate's rules", () => {
    const form = ready();
    form.gateOn = true;
    form.gate.metric = "JUDGE";
    expect(validate(form).map((p) => p.code)).toEqual(["gateRule", "gateJudge", "gateChannel", "gateSplit"]);
    form.gate.threshold = 0.5;
    form.gate.judgeModelId = "9";
    form.channelId = "2";
    form.numbers.holdoutPercent = 10;
    expect(validate(form)).toEqual([]);
  });

  it("refuses minImprovement with pairwise", () => {
    const form = ready();
    form.gateOn = true;
    form.gate.metric = "PAIRWISE";
    form.gate.minImprovement = 0.1;
    form.gate.judgeModelId = "9";
    form.gate.fileId = "file-eval";
    form.channelId = "2";
    expect(validate(form).map((p) => p.code)).toEqual(["gatePairwise"]);
  });
});

describe("buildInput", () => {
  it("sends every set field, leaves out empty optional ones", () => {
    const form = ready();
    form.numbers.warmupRatio = null;
    form.lora = true;
    const input = buildInput(form);
    expect(input).toMatchObject({
      baseModelId: "3", fileId: "file-0123", lora: true, autoDeploy: false, epochs: 1, learningRate: 2e-5,
      trainBatchSize: 1, evalBatchSize: 1, accumulationSteps: 1, weightDecay: 0, modelMaxLength: 2048,
      evalSteps: 0, saveSteps: 0, saveTotalLimit: 0, loggingSteps: 1, procPerNode: 0, holdoutPercent: 0, holdoutSeed: 0,
    });
    expect("warmupRatio" in input).toBe(false);
    expect("channelId" in input).toBe(false);
    expect("gate" in input).toBe(false);
  });

  it("adds the gate when it is on", () => {
    const form = ready();
    form.gateOn = true;
    form.gate.threshold = 0.4;
    form.channelId = "7";
    expect(buildInput(form).gate).toEqual({ metric: "ROUGE_L", threshold: 0.4, maxTokens: 256, concurrency: 4 });
    expect(buildInput(form).channelId).toBe("7");
  });
});
