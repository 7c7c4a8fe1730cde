import { Page } from "../components/ui";

export default function Dashboard({ path }: { path: string }) {
  return <Page title="Dashboard">{path}</Page>;
}
