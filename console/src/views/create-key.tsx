/** Create a key (admins): a name and a sensitivity; the API decides (Cedar `keys:create`). */
import { useState } from "preact/hooks";
import { api } from "../api";
import { href } from "../route";
import type { Key } from "../types";

const SENSITIVITIES = ["unspecified", "public", "internal", "confidential", "restricted"];

export function CreateKey({ done }: { done: () => void }) {
  const [msg, setMsg] = useState<{ ok: boolean; text: string; name?: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const d = new FormData(form);
    const name = String(d.get("name") ?? "").trim();
    try {
      const k = await api<Key>("POST", "/v1/keys", {
        name,
        sensitivity: String(d.get("sensitivity") ?? "unspecified"),
      });
      setMsg({ ok: true, text: `Created ${k.name} at v${k.primaryVersion}`, name: k.name });
      form.reset();
      done();
    } catch (err) {
      setMsg({ ok: false, text: (err as Error).message });
    }
  };
  return (
    <form class="filters" onSubmit={submit} aria-label="Create a key">
      <div class="field">
        <label for="new-key-name">New key name</label>
        <input id="new-key-name" name="name" required pattern="[A-Za-z0-9._\-]{1,128}" />
      </div>
      <div class="field">
        <label for="new-key-sensitivity">Sensitivity</label>
        <select id="new-key-sensitivity" name="sensitivity">
          {SENSITIVITIES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <button type="submit">Create key</button>
      {msg && (
        <span class={msg.ok ? "ok" : "error"} role={msg.ok ? "status" : "alert"}>
          {msg.text}
          {msg.name && (
            <>
              {" "}
              <a href={href(`keys/${encodeURIComponent(msg.name)}`)}>Open</a>
            </>
          )}
        </span>
      )}
    </form>
  );
}
