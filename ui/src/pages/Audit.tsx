import { Page } from "../components/ui";

export default function Audit({ path }: { path: string }) {
  return <Page title="Audit">{path}</Page>;
}
