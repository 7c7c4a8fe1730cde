// GraphQL documents of the model registry pages.
import { graphql } from "../../gql";

export const ModelFields = graphql(`
  fragment ModelsPageModel on Model {
    id name provider modelType maxTokens parameters enabled remark isFineTuned baseUrl hasCredentials modelPath
    lastOperator createdAt tenantIds conversationTemplate hasChatTemplate
  }
`);

export const ModelList = graphql(`
  query ModelsPageList($filter: ModelFilter, $pagination: Pagination) {
    models(filter: $filter, pagination: $pagination) {
      items { ...ModelsPageModel }
      totalCount offset limit
    }
  }
`);

export const ModelGet = graphql(`
  query ModelsPageGet($id: ID!) {
    model(id: $id) { ...ModelsPageModel }
  }
`);

export const CreateModel = graphql(`
  mutation ModelsPageCreate($input: CreateModelInput!) {
    createModel(input: $input) { model { ...ModelsPageModel } errors { field code message } }
  }
`);

export const UpdateModel = graphql(`
  mutation ModelsPageUpdate($input: UpdateModelInput!) {
    updateModel(input: $input) { model { ...ModelsPageModel } errors { field code message } }
  }
`);

export const DeleteModel = graphql(`
  mutation ModelsPageDelete($id: ID!) {
    deleteModel(id: $id) { errors { field code message } }
  }
`);
