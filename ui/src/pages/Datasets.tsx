// Datasets: /datasets (list, search, create/edit/delete) and /datasets/:id (samples, import, export).
import { matchPath } from "../router";
import { DatasetDetail } from "./datasets/DatasetDetail";
import { DatasetList } from "./datasets/DatasetList";

export default function Datasets({ path }: { path: string }) {
  const one = matchPath("/datasets/:id", path);
  if (one) return <DatasetDetail key={one.id} id={one.id} />;
  return <DatasetList />;
}
