// The system dictionary (platform admins): entries with filters and paging, the trees of chosen root codes,
// and create / edit / delete (deleting an entry deletes its children).
import { useEffect, useMemo, useState } from "react";
import {
  Button, Card, ConfirmButton, DataTable, ErrorText, Loading, Modal, NumberInput, Page, Pager, Select, Tabs, TextArea,
  TextInput, type Column,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { DictsPageListQuery, DictType } from "../../gql/graphql";
import { mutate, useAction, usePaging, useQuery } from "../../hooks/api";
import { defineText, useText } from "../../i18n";
import { DICT_TYPES, countNodes, dictValueOk, parseCodes } from "./dicts";
import { useDebounced } from "./useDebounced";

const text = defineText({
  en: {
    title: "Dictionaries", list: "Entries", tree: "Tree", code: "Code", label: "Label", value: "Value", type: "Type",
    sort: "Sort", parentId: "Parent ID", parentHint: "0: a root entry.", remark: "Remark", actions: "Actions",
    create: "Create entry", createTitle: "Create dictionary entry", submitCreate: "Create", edit: "Edit",
    editTitle: "Edit dictionary entry", save: "Save", cancel: "Cancel", del: "Delete", addChild: "Add child",
    filterCode: "Code contains", filterLabel: "Label contains", filterParent: "Parent ID", filterParentHint: "Empty: any; 0: roots.",
    codes: "Root codes", codesHint: "Comma-separated; empty: every root.", badValue: "The value is not a valid {type}.",
    noTree: "No tree for these codes.", entries: "{n} entries", id: "ID", deleteHint: "Children are deleted too.",
    expand: "Open all", collapse: "Close all",
  },
  zh: {
    title: "字典", list: "条目", tree: "树", code: "编码", label: "标签", value: "值", type: "类型",
    sort: "排序", parentId: "父级 ID", parentHint: "0 表示根条目。", remark: "备注", actions: "操作",
    create: "创建条目", createTitle: "创建字典条目", submitCreate: "创建", edit: "编辑",
    editTitle: "编辑字典条目", save: "保存", cancel: "取消", del: "删除", addChild: "添加子项",
    filterCode: "编码包含", filterLabel: "标签包含", filterParent: "父级 ID", filterParentHint: "留空：任意；0：根条目。",
    codes: "根编码", codesHint: "以逗号分隔；留空：全部根条目。", badValue: "值不是有效的 {type}。",
    noTree: "这些编码下没有字典树。", entries: "{n} 个条目", id: "ID", deleteHint: "子项也会被删除。",
    expand: "全部展开", collapse: "全部收起",
  },
});

const List = graphql(`
  query DictsPageList($filter: DictFilter, $pagination: Pagination) {
    dicts(filter: $filter, pagination: $pagination) {
      totalCount
      items { id parentId code dictValue dictLabel dictType sort remark }
    }
  }
`);

const Roots = graphql(`
  query DictsPageRoots {
    dicts(filter: { parentId: "0" }, pagination: { offset: 0, limit: 100 }) { items { id code } }
  }
`);

const Tree = graphql(`
  query DictsPageTree($codes: [String!]!) {
    tree(codes: $codes) {
      ...DictsPageNode
      children {
        ...DictsPageNode
        children {
          ...DictsPageNode
          children {
            ...DictsPageNode
            children { ...DictsPageNode children { ...DictsPageNode } }
          }
        }
      }
    }
  }
  fragment DictsPageNode on DictEntry { id parentId code dictValue dictLabel dictType sort remark }
`);

const Create = graphql(`
  mutation DictsPageCreate($input: CreateDictInput!) {
    createDict(input: $input) { entry { id } errors { code message field } }
  }
`);

const Update = graphql(`
  mutation DictsPageUpdate($input: UpdateDictInput!) {
    updateDict(input: $input) { entry { id } errors { code message field } }
  }
`);

const Delete = graphql(`
  mutation DictsPageDelete($id: ID!) {
    deleteDict(id: $id) { ok errors { code message field } }
  }
`);

type Entry = DictsPageListQuery["dicts"]["items"][number];
interface Node extends Entry {
  children?: readonly Node[] | null;
}
type Dialog = { kind: "create"; parentId: string } | { kind: "edit"; entry: Entry };

export default function Dicts(_: { path: string }) {
  const t = useText(text);
  const [tab, setTab] = useState<"list" | "tree">("list");
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const [version, setVersion] = useState(0);
  const action = useAction();
  const changed = () => setVersion((v) => v + 1);
  const open = (d: Dialog) => { action.clear(); setDialog(d); };
  return (
    <Page title={t("title")}
      actions={<Button kind="primary" onClick={() => open({ kind: "create", parentId: "0" })}>{t("create")}</Button>}>
      <Tabs value={tab} onChange={setTab} tabs={[{ value: "list", label: t("list") }, { value: "tree", label: t("tree") }]} />
      {tab === "list" ? <EntryList version={version} onOpen={open} onChanged={changed} /> : <TreeView version={version} onOpen={open} onChanged={changed} />}
      {dialog ? (
        <EntryForm dialog={dialog} busy={action.busy} error={action.error} onClose={() => setDialog(null)}
          onSubmit={(v) => void action.run(async () => {
            if (dialog.kind === "create") {
              await mutate(Create, { input: { ...v, parentId: v.parentId || "0" } });
            } else {
              const { parentId: _parent, ...rest } = v;
              await mutate(Update, { input: { id: dialog.entry.id, ...rest } });
            }
            setDialog(null);
            changed();
          })} />
      ) : null}
    </Page>
  );
}

function useDelete(onChanged: () => void) {
  const action = useAction();
  return {
    error: action.error,
    busy: action.busy,
    remove: (id: string) => void action.run(async () => {
      await mutate(Delete, { id });
      onChanged();
    }),
  };
}

function EntryList({ version, onOpen, onChanged }: { version: number; onOpen: (d: Dialog) => void; onChanged: () => void }) {
  const t = useText(text);
  const [code, setCode] = useState("");
  const [label, setLabel] = useState("");
  const [parent, setParent] = useState("");
  const filter = useDebounced(useMemo(() => ({
    code: code.trim() || null, label: label.trim() || null, parentId: parent.trim() || null,
  }), [code, label, parent]));
  const paging = usePaging(20);
  const { setOffset } = paging;
  useEffect(() => setOffset(0), [filter, setOffset]);
  const list = useQuery(List, { filter, pagination: paging.pagination });
  const { reload } = list;
  useEffect(() => {
    if (version) void reload();
  }, [version, reload]);
  const del = useDelete(onChanged);

  const columns: Column<Entry>[] = [
    { key: "id", title: t("id"), render: (e) => e.id, className: "num" },
    { key: "code", title: t("code"), render: (e) => <code>{e.code}</code> },
    { key: "label", title: t("label"), render: (e) => e.dictLabel },
    { key: "value", title: t("value"), render: (e) => <code>{e.dictValue}</code> },
    { key: "type", title: t("type"), render: (e) => e.dictType },
    { key: "sort", title: t("sort"), render: (e) => e.sort, className: "num" },
    { key: "parent", title: t("parentId"), render: (e) => e.parentId, className: "num" },
    { key: "remark", title: t("remark"), render: (e) => e.remark || "—" },
    {
      key: "actions", title: t("actions"),
      render: (e) => <EntryActions entry={e} onOpen={onOpen} onDelete={del.remove} busy={del.busy} />,
    },
  ];

  return (
    <Card>
      <div className="form-grid">
        <TextInput label={t("filterCode")} name="code" type="search" value={code} onChange={setCode} />
        <TextInput label={t("filterLabel")} name="label" type="search" value={label} onChange={setLabel} />
        <TextInput label={t("filterParent")} name="parentId" value={parent} onChange={setParent} hint={t("filterParentHint")} />
      </div>
      <small className="muted">{t("deleteHint")}</small>
      <ErrorText error={list.error ?? del.error} />
      <DataTable columns={columns} rows={list.data?.dicts.items} rowKey={(e) => e.id} loading={list.loading} caption={t("list")} />
      <Pager offset={paging.offset} limit={paging.limit} total={list.data?.dicts.totalCount ?? 0} onChange={paging.setOffset} />
    </Card>
  );
}

function EntryActions({ entry, onOpen, onDelete, busy }: {
  entry: Entry; onOpen: (d: Dialog) => void; onDelete: (id: string) => void; busy: boolean;
}) {
  const t = useText(text);
  return (
    <span className="actions">
      <Button onClick={() => onOpen({ kind: "edit", entry })}>{t("edit")}</Button>
      <Button onClick={() => onOpen({ kind: "create", parentId: entry.id })}>{t("addChild")}</Button>
      <ConfirmButton busy={busy} onConfirm={() => onDelete(entry.id)}>{t("del")}</ConfirmButton>
    </span>
  );
}

function TreeView({ version, onOpen, onChanged }: { version: number; onOpen: (d: Dialog) => void; onChanged: () => void }) {
  const t = useText(text);
  const [typed, setTyped] = useState("");
  const roots = useQuery(Roots, {});
  const { reload: reloadRoots } = roots;
  const wanted = parseCodes(useDebounced(typed));
  const codes = wanted.length ? wanted : Array.from(new Set((roots.data?.dicts.items ?? []).map((r) => r.code)));
  const tree = useQuery(Tree, { codes }, { skip: codes.length === 0 });
  const { reload: reloadTree } = tree;
  useEffect(() => {
    if (version) {
      void reloadRoots();
      void reloadTree();
    }
  }, [version, reloadRoots, reloadTree]);
  const del = useDelete(onChanged);
  const nodes = (tree.data?.tree ?? []) as readonly Node[];
  const [openAll, setOpenAll] = useState(true);

  const renderNode = (node: Node) => (
    <li key={node.id}>
      <details open={openAll}>
        <summary>
          <strong>{node.dictLabel}</strong> <code>{node.code}</code> = <code>{node.dictValue}</code>{" "}
          <span className="muted">{node.dictType} · {t("sort")} {node.sort}</span>
        </summary>
        <EntryActions entry={node} onOpen={onOpen} onDelete={del.remove} busy={del.busy} />
        {node.children?.length ? <ul>{node.children.map(renderNode)}</ul> : null}
      </details>
    </li>
  );

  return (
    <Card actions={<Button onClick={() => setOpenAll((v) => !v)}>{openAll ? t("collapse") : t("expand")}</Button>}>
      <div className="form-grid">
        <TextInput label={t("codes")} name="codes" value={typed} onChange={setTyped} hint={t("codesHint")} />
      </div>
      <ErrorText error={roots.error ?? tree.error ?? del.error} />
      <Loading loading={roots.loading || tree.loading} />
      {!tree.loading && !roots.loading && nodes.length === 0 ? <p className="muted">{t("noTree")}</p> : null}
      {nodes.length ? (
        <>
          <small className="muted">{t("entries", { n: countNodes(nodes.map(asTree)) })}</small>
          <ul className="dict-tree" key={String(openAll)} data-testid="dict-tree">{nodes.map(renderNode)}</ul>
        </>
      ) : null}
    </Card>
  );
}

function asTree(node: Node): { id: string; children: ReturnType<typeof asTree>[] } {
  return { id: node.id, children: (node.children ?? []).map(asTree) };
}

interface EntryValues {
  code: string;
  dictLabel: string;
  dictValue: string;
  dictType: DictType;
  sort: number;
  remark: string;
  parentId: string;
}

function EntryForm({ dialog, busy, error, onClose, onSubmit }: {
  dialog: Dialog; busy: boolean; error: string | null; onClose: () => void; onSubmit: (v: EntryValues) => void;
}) {
  const t = useText(text);
  const entry = dialog.kind === "edit" ? dialog.entry : null;
  const [v, setV] = useState<EntryValues>(() => ({
    code: entry?.code ?? "", dictLabel: entry?.dictLabel ?? "", dictValue: entry?.dictValue ?? "",
    dictType: entry?.dictType ?? "STRING", sort: entry?.sort ?? 0, remark: entry?.remark ?? "",
    parentId: dialog.kind === "create" ? dialog.parentId : (entry?.parentId ?? "0"),
  }));
  const [problem, setProblem] = useState<string | null>(null);
  const set = <K extends keyof EntryValues>(key: K, value: EntryValues[K]) => setV((x) => ({ ...x, [key]: value }));
  return (
    <Modal title={entry ? t("editTitle") : t("createTitle")} onClose={onClose}>
      <form onSubmit={(e) => {
        e.preventDefault();
        if (!dictValueOk(v.dictType, v.dictValue)) {
          setProblem(t("badValue", { type: v.dictType }));
          return;
        }
        setProblem(null);
        onSubmit({ ...v, code: v.code.trim() });
      }}>
        <div className="form-grid">
          <TextInput label={t("code")} name="code" value={v.code} onChange={(x) => set("code", x)} required />
          <TextInput label={t("label")} name="dictLabel" value={v.dictLabel} onChange={(x) => set("dictLabel", x)} required />
          <TextInput label={t("value")} name="dictValue" value={v.dictValue} onChange={(x) => set("dictValue", x)} />
          <Select label={t("type")} name="dictType" value={v.dictType} onChange={(x) => set("dictType", x)}
            options={DICT_TYPES.map((x) => ({ value: x, label: x }))} />
          <NumberInput label={t("sort")} name="sort" step={1} value={v.sort} onChange={(x) => set("sort", Math.round(x ?? 0))} />
          {entry ? (
            <p><span className="muted">{t("parentId")}: </span>{entry.parentId}</p>
          ) : (
            <TextInput label={t("parentId")} name="parentId" value={v.parentId} onChange={(x) => set("parentId", x.trim())} hint={t("parentHint")} />
          )}
        </div>
        <TextArea label={t("remark")} name="remark" rows={2} value={v.remark} onChange={(x) => set("remark", x)} />
        <ErrorText error={problem ?? error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={busy}>{entry ? t("save") : t("submitCreate")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
