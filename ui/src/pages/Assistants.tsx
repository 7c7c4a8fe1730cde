import { Page } from "../components/ui";

export default function Assistants({ path }: { path: string }) {
  return <Page title="Assistants">{path}</Page>;
}
