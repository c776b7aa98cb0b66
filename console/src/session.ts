/** Sign-in, the current session and sign-out (the cookie is set and cleared by the server). */
import { api, setCsrf } from "./api";
import type { SessionInfo } from "./types";

export async function currentSession(): Promise<SessionInfo | null> {
  try {
    const s = await api<SessionInfo>("GET", "/console/session");
    setCsrf(s.csrf);
    return s;
  } catch {
    return null;
  }
}

export async function signIn(token: string): Promise<SessionInfo> {
  const s = await api<SessionInfo>("POST", "/console/session", { token });
  setCsrf(s.csrf);
  return s;
}

export async function signOut(): Promise<void> {
  await api("DELETE", "/console/session");
  setCsrf("");
}
