import { Page } from "../components/ui";

export default function Files({ path }: { path: string }) {
  return <Page title="Files">{path}</Page>;
}
