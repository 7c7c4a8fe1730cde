import { Page } from "../components/ui";

export default function Evaluations({ path }: { path: string }) {
  return <Page title="Evaluations">{path}</Page>;
}
