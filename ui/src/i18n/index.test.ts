import { describe, expect, it } from "vitest";
import { defineText, format, translate } from "./index";

const text = defineText({
  en: { hello: "Hello {name}", count: "{n} items" },
  zh: { hello: "你好 {name}", count: "{n} 项" },
});

describe("i18n", () => {
  it("translates with placeholders in both languages", () => {
    expect(translate(text, "en", "hello", { name: "Ann" })).toBe("Hello Ann");
    expect(translate(text, "zh", "count", { n: 3 })).toBe("3 项");
  });
  it("leaves unknown placeholders as they are", () => {
    expect(format("{a} {b}", { a: 1 })).toBe("1 {b}");
  });
});
