import { Page } from "../components/ui";

export default function Deployments({ path }: { path: string }) {
  return <Page title="Deployments">{path}</Page>;
}
