import { Page } from "../components/ui";

export default function Playground({ path }: { path: string }) {
  return <Page title="Playground">{path}</Page>;
}
