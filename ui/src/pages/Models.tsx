import { Page } from "../components/ui";

export default function Models({ path }: { path: string }) {
  return <Page title="Models">{path}</Page>;
}
