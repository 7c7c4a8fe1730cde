import { Page } from "../../components/ui";

export default function Templates({ path }: { path: string }) {
  return <Page title="Templates">{path}</Page>;
}
