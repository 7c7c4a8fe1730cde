// Strings of the chat playground, English and Chinese.
import { defineText } from "../../i18n";

export const text = defineText({
  en: {
    title: "Chat playground", channel: "Channel", modelA: "Model A", modelB: "Model B", compare: "Compare two models",
    message: "Message", send: "Send", stop: "Stop", clear: "New conversation", system: "System prompt",
    temperature: "Temperature", maxTokens: "Max tokens", settings: "Settings", you: "You", assistant: "Assistant",
    finish: "finish: {reason}", streaming: "Streaming…", empty: "Send a message to start.",
    chooseTenant: "Choose a tenant in the top bar: the playground charges a channel of the tenant.",
    noChannels: "The tenant has no channel yet: create one under Channels (the playground's calls are charged to it).",
    noModels: "This channel allows no model: edit it under Channels.", conversation: "Conversation {column}",
    hint: "Calls go through the gateway with the channel's allowed models, quota and limits.",
  },
  zh: {
    title: "对话测试", channel: "渠道", modelA: "模型 A", modelB: "模型 B", compare: "对比两个模型",
    message: "消息", send: "发送", stop: "停止", clear: "新对话", system: "系统提示词",
    temperature: "温度", maxTokens: "最大 Token 数", settings: "设置", you: "我", assistant: "助手",
    finish: "结束原因：{reason}", streaming: "生成中…", empty: "发送一条消息开始对话。",
    chooseTenant: "请在顶栏选择租户：对话测试将计入该租户的某个渠道。",
    noChannels: "该租户还没有渠道：请先在“渠道”中创建（对话测试的调用计入该渠道）。",
    noModels: "此渠道未允许任何模型：请在“渠道”中编辑。", conversation: "对话 {column}",
    hint: "调用经过网关，受渠道允许的模型、配额和限流约束。",
  },
});
