import { Page } from "../components/ui";

export default function Tools({ path }: { path: string }) {
  return <Page title="Tools">{path}</Page>;
}
