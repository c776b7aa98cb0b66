/** Small shared pieces: loading an API resource, error and status lines, time formatting. */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";

export interface Loaded<T> {
  data: T | null;
  error: ApiError | Error | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change (and on reload); keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load()
      .then((d) => {
        if (!live) return;
        setData(d);
        setError(null);
      })
      .catch((e: Error) => {
        if (!live) return;
        setError(e);
        setData(null);
      })
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** A load's error line, and "Loading…" until its first data arrives. */
export function LoadStatus({ r }: { r: Loaded<unknown> }) {
  return (
    <>
      <ErrorLine error={r.error} />
      {r.loading && !r.data && <Status>Loading…</Status>}
    </>
  );
}

/** A table's column headings (each `scope="col"`). */
export function ColumnHeads({ names }: { names: readonly string[] }) {
  return (
    <thead>
      <tr>
        {names.map((n) => (
          <th key={n} scope="col">
            {n}
          </th>
        ))}
      </tr>
    </thead>
  );
}

/** An API error as the user should read it; 403 says the caller's rights do not allow it. */
export function ErrorLine({ error }: { error: Error | null }) {
  if (!error) return null;
  const denied = error instanceof ApiError && error.status === 403;
  return (
    <p class={denied ? "notice" : "error"} role="alert">
      {denied ? "Not permitted for your identity: " : "Error: "}
      {error.message}
    </p>
  );
}

export function Status({ children }: { children: ComponentChildren }) {
  return (
    <p class="status" role="status">
      {children}
    </p>
  );
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace("T", " ").slice(0, 19);
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <section aria-labelledby={id} class="panel">
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

export function isAdmin(roles: readonly string[]): boolean {
  return roles.includes("admin");
}

/** A time window (label, milliseconds back from now) chosen from a list, with a Refresh button. */
export function WindowPicker({
  id,
  windows,
  value,
  onChange,
  onRefresh,
}: {
  id: string;
  windows: readonly (readonly [string, number])[];
  value: number;
  onChange: (i: number) => void;
  onRefresh: () => void;
}) {
  return (
    <>
      <label for={id}>Window</label>{" "}
      <select
        id={id}
        value={String(value)}
        onChange={(e) => onChange(Number((e.target as HTMLSelectElement).value))}
      >
        {windows.map(([l], i) => (
          <option key={l} value={String(i)}>
            {l}
          </option>
        ))}
      </select>{" "}
      <button type="button" onClick={onRefresh}>
        Refresh
      </button>
    </>
  );
}

/** The outcome of an action: a status line when it worked, an alert when it did not. */
export function Outcome({
  msg,
  as = "span",
  children,
}: {
  msg: { ok: boolean; text: string } | null;
  as?: "span" | "p";
  children?: ComponentChildren;
}) {
  if (!msg) return null;
  const Tag = as;
  return (
    <Tag class={msg.ok ? "ok" : "error"} role={msg.ok ? "status" : "alert"}>
      {msg.text}
      {children}
    </Tag>
  );
}

/** Previous and next page buttons (a missing handler disables its button), then `children`. */
export function Pager({
  previous,
  next,
  children,
}: {
  previous?: () => void;
  next?: () => void;
  children?: ComponentChildren;
}) {
  return (
    <div class="pager">
      <button type="button" disabled={!previous} onClick={previous}>
        Previous page
      </button>
      <button type="button" disabled={!next} onClick={next}>
        Next page
      </button>
      {children}
    </div>
  );
}
