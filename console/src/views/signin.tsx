/** Sign-in with an API token: sent once to the server, which answers with a session cookie. */
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { signIn } from "../session";
import type { SessionInfo } from "../types";

export function SignInView({ onSignedIn }: { onSignedIn: (s: SessionInfo) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [oidc, setOidc] = useState(false);
  useEffect(() => {
    api<{ oidc: boolean }>("GET", "/console/config")
      .then((c) => setOidc(c.oidc))
      .catch(() => {});
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const s = await signIn(token.trim());
      setToken("");
      onSignedIn(s);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>TensorSeal console</h1>
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          required
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      {oidc && (
        <p>
          <a href="/console/oidc/login">Sign in with your identity provider</a>
        </p>
      )}
      <p class="hint">
        The token is sent once; the server keeps the session and this browser gets only an HttpOnly
        cookie. What you can see and do is what the token may do over the API.
      </p>
    </main>
  );
}
