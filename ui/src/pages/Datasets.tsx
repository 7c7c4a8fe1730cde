import { Page } from "../components/ui";

export default function Datasets({ path }: { path: string }) {
  return <Page title="Datasets">{path}</Page>;
}
