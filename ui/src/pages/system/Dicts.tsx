import { Page } from "../../components/ui";

export default function Dicts({ path }: { path: string }) {
  return <Page title="Dicts">{path}</Page>;
}
