/** A signed webhook's two flags (URL, secret file) as WebhookOptions; usage errors name the flags. */
import { readFile } from "node:fs/promises";
import { fail } from "../../../format/errors.js";
import { checkWebhookUrl, type WebhookOptions } from "../../../service/index.js";

export async function webhookFlags(
  urlFlag: string,
  url: unknown,
  secretFlag: string,
  secretFile: unknown,
): Promise<WebhookOptions | undefined> {
  if (Boolean(url) !== Boolean(secretFile))
    fail("E_USAGE", `${urlFlag} and ${secretFlag} go together`);
  if (!url) return undefined;
  try {
    checkWebhookUrl(String(url), urlFlag);
  } catch (e) {
    fail("E_USAGE", (e as Error).message);
  }
  const file = String(secretFile);
  const text = await readFile(file, "utf8").catch((e: Error) =>
    fail("E_USAGE", `cannot read ${secretFlag} ${file}: ${e.message}`),
  );
  const secret = Buffer.from(text.trim());
  if (secret.length < 16) fail("E_USAGE", `${secretFlag} must hold at least 16 bytes`);
  return { url: String(url), secret };
}
