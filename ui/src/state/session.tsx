// Who is signed in and in which tenant. The token and the chosen tenant live in localStorage, so a reload (and
// GraphiQL at /graphql, same origin) keeps them; the API still checks both on every request.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { ApiError, gql, setCredentials, setUnauthenticatedHandler } from "../api/client";
import { graphql } from "../gql";
import type { MeQuery } from "../gql/graphql";

import { TENANT_KEY, TOKEN_KEY } from "./keys";

export { TENANT_KEY, TOKEN_KEY };

const Me = graphql(`
  query Me {
    me {
      account { id username nickname email source isPlatformAdmin }
      memberships { tenantId role tenant { id name code } }
    }
  }
`);

const Login = graphql(`
  mutation Login($input: LoginInput!) {
    login(input: $input) { token errors { code message } }
  }
`);

export type Role = "ADMIN" | "MAINTAINER" | "MEMBER" | "NONE";
export type Me = MeQuery["me"];

export interface TenantChoice {
  id: string;
  name: string;
  code: string;
}

export interface Session {
  me: Me | null;
  loading: boolean;
  tenantId: string | null;
  /** Tenants the switcher offers: the memberships, or (platform admins) every tenant they loaded. */
  tenants: TenantChoice[];
  role: Role;
  isAdmin: boolean;
  /** May manage the current tenant's resources (maintainer or platform admin). */
  canManage: boolean;
  login: (username: string, password: string) => Promise<string | null>;
  logout: () => void;
  setTenant: (id: string | null) => void;
  setAdminTenants: (tenants: TenantChoice[]) => void;
  reload: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function roleIn(me: Me | null, tenantId: string | null): Role {
  if (!me) return "NONE";
  if (me.account.isPlatformAdmin) return "ADMIN";
  const membership = me.memberships.find((m) => m.tenantId === tenantId);
  return membership ? membership.role : "NONE";
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [token, setToken] = useState<string | null>(() => localStorage.getItem(TOKEN_KEY));
  const [tenantId, setTenantId] = useState<string | null>(() => localStorage.getItem(TENANT_KEY));
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState<boolean>(() => localStorage.getItem(TOKEN_KEY) !== null);
  const [adminTenants, setAdminTenants] = useState<TenantChoice[]>([]);

  setCredentials({ token, tenantId });

  const logout = useCallback(() => {
    localStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setMe(null);
    setLoading(false);
  }, []);

  useEffect(() => setUnauthenticatedHandler(logout), [logout]);

  const reload = useCallback(async () => {
    if (!token) return;
    setLoading(true);
    try {
      const data = await gql(Me);
      setMe(data.me);
      // Keep the chosen tenant if it is still one of the account's; else the first membership.
      const ids = data.me.memberships.map((m) => m.tenantId);
      setTenantId((current) => {
        if (data.me.account.isPlatformAdmin && current) return current;
        const next = current && ids.includes(current) ? current : (ids[0] ?? null);
        if (next) localStorage.setItem(TENANT_KEY, next);
        else localStorage.removeItem(TENANT_KEY);
        return next;
      });
    } catch (e) {
      if (e instanceof ApiError && e.code !== "NETWORK") logout();
    } finally {
      setLoading(false);
    }
  }, [token, logout]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const login = useCallback(async (username: string, password: string): Promise<string | null> => {
    setCredentials({ token: null, tenantId: null });
    const data = await gql(Login, { input: { username, password } });
    const error = data.login.errors[0];
    if (error || !data.login.token) return error?.message ?? "sign-in failed";
    localStorage.setItem(TOKEN_KEY, data.login.token);
    setToken(data.login.token);
    return null;
  }, []);

  const setTenant = useCallback((id: string | null) => {
    if (id) localStorage.setItem(TENANT_KEY, id);
    else localStorage.removeItem(TENANT_KEY);
    setTenantId(id);
  }, []);

  const value = useMemo<Session>(() => {
    const role = roleIn(me, tenantId);
    const memberTenants = (me?.memberships ?? []).map((m) => ({
      id: m.tenantId,
      name: m.tenant?.name ?? m.tenantId,
      code: m.tenant?.code ?? "",
    }));
    const tenants = me?.account.isPlatformAdmin
      ? [...adminTenants, ...memberTenants.filter((t) => !adminTenants.some((a) => a.id === t.id))]
      : memberTenants;
    return {
      me,
      loading,
      tenantId,
      tenants,
      role,
      isAdmin: role === "ADMIN",
      canManage: role === "ADMIN" || role === "MAINTAINER",
      login,
      logout,
      setTenant,
      setAdminTenants,
      reload,
    };
  }, [me, loading, tenantId, adminTenants, login, logout, setTenant, reload]);

  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}
