import { Page } from "../components/ui";

export default function FineTuning({ path }: { path: string }) {
  return <Page title="FineTuning">{path}</Page>;
}
