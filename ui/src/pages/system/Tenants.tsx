import { Page } from "../../components/ui";

export default function Tenants({ path }: { path: string }) {
  return <Page title="Tenants">{path}</Page>;
}
