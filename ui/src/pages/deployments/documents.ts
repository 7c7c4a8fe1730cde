// GraphQL documents of the deployments area (the models area deploys and joins statuses with them too).
import { graphql } from "../../gql";

export const DeploymentFields = graphql(`
  fragment DeploymentsPageDeployment on Deployment {
    id modelId modelName tenantId status reason engine replicas gpusPerReplica label quantization runtimeBackend
    workerAddresses operator createdAt startedAt stoppedAt restarts
  }
`);

export const DeploymentList = graphql(`
  query DeploymentsPageList($status: [DeploymentStatus!], $pagination: Pagination, $modelIds: [ID!]) {
    deployments(status: $status, pagination: $pagination, modelIds: $modelIds) {
      items { ...DeploymentsPageDeployment }
      totalCount offset limit
    }
  }
`);

export const DeploymentGet = graphql(`
  query DeploymentsPageGet($id: ID!) {
    deployment(id: $id) { ...DeploymentsPageDeployment }
  }
`);

export const DeploymentHealth = graphql(`
  query DeploymentsPageHealth($id: ID!, $limit: Int!) {
    deploymentHealth(id: $id, limit: $limit) { workerAddress healthy speed queueLength detail checkedAt }
  }
`);

export const DeploymentLogs = graphql(`
  query DeploymentsPageLogs($id: ID!, $replica: Int!, $since: Int!) {
    deploymentLogs(id: $id, replica: $replica, since: $since) { lines cursor }
  }
`);

export const DeploymentsChanged = graphql(`
  subscription DeploymentsPageChanged {
    deploymentsStatusChanged { ...DeploymentsPageDeployment }
  }
`);

export const DeploymentChanged = graphql(`
  subscription DeploymentsPageOneChanged($id: ID!) {
    deploymentStatusChanged(id: $id) { ...DeploymentsPageDeployment }
  }
`);

export const FastChatHealth = graphql(`
  subscription DeploymentsPageFastChat {
    fastchatHealth { controllerAlive checkedAt workers { workerAddress healthy speed queueLength detail checkedAt } }
  }
`);

export const DeployModel = graphql(`
  mutation DeploymentsPageDeploy($input: DeployModelInput!) {
    deployModel(input: $input) { deployment { ...DeploymentsPageDeployment } errors { field code message } }
  }
`);

export const UndeployModel = graphql(`
  mutation DeploymentsPageUndeploy($id: ID!) {
    undeployModel(id: $id) { deployment { ...DeploymentsPageDeployment } errors { field code message } }
  }
`);

export const ScaleDeployment = graphql(`
  mutation DeploymentsPageScale($input: ScaleDeploymentInput!) {
    scaleDeployment(input: $input) { deployment { ...DeploymentsPageDeployment } errors { field code message } }
  }
`);

export const RedeployModel = graphql(`
  mutation DeploymentsPageRedeploy($id: ID!) {
    redeployModel(id: $id) { deployment { ...DeploymentsPageDeployment } errors { field code message } }
  }
`);

/** Running vllm deployments a LoRA adapter can be served on (engineOptions.maxLoras > 0; filtered by the caller). */
export const AdapterBases = graphql(`
  query DeploymentsPageAdapterBases {
    deployments(status: [RUNNING, DEGRADED], pagination: {offset: 0, limit: 100}) {
      items { id modelName engine baseDeploymentId engineOptions { maxLoras } }
    }
  }
`);
