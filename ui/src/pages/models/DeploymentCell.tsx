// A model's latest deployment status (live), linking to that deployment.
import { StatusBadge } from "../../components/ui";
import { Link } from "../../components/Link";
import type { Deployment } from "../deployments/useLiveDeployments";

export function DeploymentCell({ deployment, none }: { deployment: Deployment | undefined; none: string }) {
  return (
    <span data-testid="model-deployment-status" data-deployment-id={deployment?.id}>
      {deployment ? (
        <Link to={`/deployments/${deployment.id}`}><StatusBadge status={deployment.status} /></Link>
      ) : <span className="muted">{none}</span>}
    </span>
  );
}
