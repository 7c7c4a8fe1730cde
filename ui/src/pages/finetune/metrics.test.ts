import { describe, expect, it } from "vitest";
import { LogCursor, chartSeries, mergePoints, parseStepLine } from "./metrics";

describe("parseStepLine", () => {
  it("reads a step line", () => {
    expect(parseStepLine('{"type": "step", "step": 3, "total_steps": 20, "epoch": 0.3, "loss": 2.5, "learning_rate": 0.0005, "grad_norm": 1.1}'))
      .toEqual({ step: 3, epoch: 0.3, loss: 2.5, learningRate: 0.0005 });
  });
  it("keeps a step whose loss is not finite (null) for the learning rate", () => {
    expect(parseStepLine('{"type": "step", "step": 4, "epoch": 0.4, "loss": null, "learning_rate": 1e-4}'))
      .toEqual({ step: 4, epoch: 0.4, loss: null, learningRate: 1e-4 });
  });
  it("accepts a step line without type", () => {
    expect(parseStepLine('{"step": 1, "epoch": 0.1, "loss": 3.9, "learning_rate": 2e-5}')?.loss).toBe(3.9);
  });
  it("ignores other lines", () => {
    expect(parseStepLine("Loading checkpoint shards: 100%")).toBeNull();
    expect(parseStepLine('{"type": "eval", "step": 10, "eval_loss": 2.8}')).toBeNull();
    expect(parseStepLine('{"type": "start", "total_steps": 20}')).toBeNull();
    expect(parseStepLine('{"type": "step", "step": 1, "loss": 2')).toBeNull();
    expect(parseStepLine('{"type": "step", "step": "one"}')).toBeNull();
    expect(parseStepLine("[1, 2]")).toBeNull();
  });
});

describe("mergePoints", () => {
  const p = (step: number) => ({ step, epoch: null, loss: step, learningRate: null });
  it("appends only live points past the stored ones", () => {
    expect(mergePoints([p(1), p(2)], [p(2), p(3), p(3), p(4)]).map((x) => x.step)).toEqual([1, 2, 3, 4]);
  });
  it("works with nothing stored", () => {
    expect(mergePoints([], [p(5), p(6)]).map((x) => x.step)).toEqual([5, 6]);
  });
});

describe("chartSeries", () => {
  it("splits loss and learning rate, skipping missing values", () => {
    const s = chartSeries([
      { step: 1, epoch: 0.1, loss: 3, learningRate: null },
      { step: 2, epoch: 0.2, loss: null, learningRate: 0.1 },
    ], { loss: "loss", learningRate: "lr" });
    expect(s.loss[0].points).toEqual([{ x: 1, y: 3 }]);
    expect(s.learningRate[0].points).toEqual([{ x: 2, y: 0.1 }]);
  });
});

describe("LogCursor", () => {
  it("drops lines already seen and picks the step points", () => {
    const cursor = new LogCursor(1);
    const first = cursor.take([
      { seq: 1, line: "old" },
      { seq: 2, line: "text" },
      { seq: 3, line: '{"type": "step", "step": 1, "epoch": 0.5, "loss": 1.5, "learning_rate": 0.01}' },
    ]);
    expect(first.lines.map((l) => l.seq)).toEqual([2, 3]);
    expect(first.points).toHaveLength(1);
    const again = cursor.take([{ seq: 3, line: "dup" }, { seq: 4, line: "new" }]);
    expect(again.lines).toEqual([{ seq: 4, text: "new" }]);
  });
});
