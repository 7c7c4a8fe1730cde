import { Page } from "../components/ui";

export default function Channels({ path }: { path: string }) {
  return <Page title="Channels">{path}</Page>;
}
