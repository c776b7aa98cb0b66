/**
 * The rotation period that keys without one of their own are judged by (`doctor`,
 * `inventory`): `.tensorseal.yaml`'s `doctor.rotation_period` (`none`: null, no date), else 365 days.
 */
import { DEFAULT_ROTATION_SECONDS } from "../doctor/check-rotation.js";
import { parseDuration } from "./commands/keys.js";
import { doctorConfig } from "./project-config.js";

export function defaultRotationSeconds(): number | null {
  const { rotationPeriod } = doctorConfig();
  return rotationPeriod === undefined ? DEFAULT_ROTATION_SECONDS : parseDuration(rotationPeriod);
}
