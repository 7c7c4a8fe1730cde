// The app's areas: the first path segment picks a lazily loaded module (a page per area keeps the first load
// small). `need` hides an area from who may not use it; the API enforces the same rules regardless.
import { lazy, type ComponentType, type LazyExoticComponent } from "react";
import type { Role } from "./state/session";

export type Need = "member" | "admin";

export interface Area {
  path: string;
  key: AreaKey;
  need: Need;
  component: LazyExoticComponent<ComponentType<{ path: string }>>;
  nav: boolean;
  /** Works without a tenant (platform admins: the platform's models, the whole audit log, the system pages). */
  platform?: boolean;
}

export type AreaKey =
  | "dashboard" | "models" | "deployments" | "files" | "finetune" | "datasets" | "evaluations" | "assistants"
  | "tools" | "channels" | "playground" | "audit" | "tenants" | "accounts" | "dicts" | "templates";

export const AREAS: Area[] = [
  { path: "/", key: "dashboard", need: "member", nav: true, component: lazy(() => import("./pages/Dashboard")) },
  { path: "/models", key: "models", need: "member", nav: true, platform: true, component: lazy(() => import("./pages/Models")) },
  { path: "/deployments", key: "deployments", need: "member", nav: true, component: lazy(() => import("./pages/Deployments")) },
  { path: "/files", key: "files", need: "member", nav: true, component: lazy(() => import("./pages/Files")) },
  { path: "/finetune", key: "finetune", need: "member", nav: true, component: lazy(() => import("./pages/FineTuning")) },
  { path: "/datasets", key: "datasets", need: "member", nav: true, component: lazy(() => import("./pages/Datasets")) },
  { path: "/evaluations", key: "evaluations", need: "member", nav: true, component: lazy(() => import("./pages/Evaluations")) },
  { path: "/assistants", key: "assistants", need: "member", nav: true, component: lazy(() => import("./pages/Assistants")) },
  { path: "/tools", key: "tools", need: "member", nav: true, component: lazy(() => import("./pages/Tools")) },
  { path: "/channels", key: "channels", need: "member", nav: true, component: lazy(() => import("./pages/Channels")) },
  { path: "/playground", key: "playground", need: "member", nav: true, component: lazy(() => import("./pages/Playground")) },
  { path: "/audit", key: "audit", need: "member", nav: true, platform: true, component: lazy(() => import("./pages/Audit")) },
  { path: "/system/tenants", key: "tenants", need: "admin", nav: true, platform: true, component: lazy(() => import("./pages/system/Tenants")) },
  { path: "/system/accounts", key: "accounts", need: "admin", nav: true, platform: true, component: lazy(() => import("./pages/system/Accounts")) },
  { path: "/system/dicts", key: "dicts", need: "admin", nav: true, platform: true, component: lazy(() => import("./pages/system/Dicts")) },
  { path: "/system/templates", key: "templates", need: "admin", nav: true, platform: true, component: lazy(() => import("./pages/system/Templates")) },
];

export function allowed(need: Need, role: Role): boolean {
  return need === "admin" ? role === "ADMIN" : role !== "NONE";
}

/** The area whose path is the longest prefix of `path` ("/" only for "/" itself). */
export function areaFor(path: string): Area | null {
  let best: Area | null = null;
  for (const area of AREAS) {
    const hit = area.path === "/" ? path === "/" : path === area.path || path.startsWith(area.path + "/");
    if (hit && (!best || area.path.length > best.path.length)) best = area;
  }
  return best;
}
