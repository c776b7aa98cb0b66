/** Hash routing: #/keys, #/keys/NAME, #/audit?key=..., ... (no server round trip, no history API). */
import { useEffect, useMemo, useState } from "preact/hooks";

export interface Route {
  path: string[];
  params: URLSearchParams;
}

function parse(hash: string): Route {
  const h = hash.replace(/^#\/?/, "");
  const [p = "", q = ""] = h.split("?");
  const path = p.split("/").filter(Boolean).map(decodeURIComponent);
  return { path: path.length ? path : ["overview"], params: new URLSearchParams(q) };
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    // Effects run after paint: a change made before the listener existed (a link followed the
    // moment the shell appeared) would otherwise go unseen. Same hash: no render.
    on();
    return () => removeEventListener("hashchange", on);
  }, []);
  return useMemo(() => parse(hash), [hash]);
}

export function href(path: string, params?: Record<string, string>): string {
  const q = params ? new URLSearchParams(params).toString() : "";
  return `#/${path}${q ? `?${q}` : ""}`;
}
