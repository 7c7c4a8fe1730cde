import { Page } from "../../components/ui";

export default function Accounts({ path }: { path: string }) {
  return <Page title="Accounts">{path}</Page>;
}
