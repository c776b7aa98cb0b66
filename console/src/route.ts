/** Hash routing: #/keys, #/keys/NAME, #/audit?key=..., ... (no server round trip, no history API). */
import { useEffect, useState } from "preact/hooks";

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
  const [r, setR] = useState(() => parse(location.hash));
  useEffect(() => {
    const on = () => setR(parse(location.hash));
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return r;
}

export function href(path: string, params?: Record<string, string>): string {
  const q = params ? new URLSearchParams(params).toString() : "";
  return `#/${path}${q ? `?${q}` : ""}`;
}
