/** `tensorseal init`: create the keystore and its `default` key (flags: commands/init.ts). */
import type { OptionValues } from "commander";
import { Keystore } from "../../keys/index.js";
import { homeDir, keystoreUnlock } from "../keys-context.js";
import { printJson } from "../options.js";
import { say } from "../output.js";

export async function init(o: OptionValues): Promise<void> {
  const home = homeDir();
  const ks = await Keystore.init(home, await keystoreUnlock({ confirm: true }));
  await ks.createKey("default");
  if (o.json) printJson({ home, keys: ["default"] });
  else say(`created keystore in ${home} with key "default"`);
}
