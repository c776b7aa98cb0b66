/**
 * The key service's name patterns, apart from the repositories that enforce them so that the
 * CLI can check arguments and print help without loading the database layer.
 */
export const KEY_NAME_PATTERN = "^[A-Za-z0-9._-]{1,128}$";
export const ARTIFACT_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$";
export const LABEL_KEY_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$";
export const DIGEST_PATTERN = "^sha256:[0-9a-f]{64}$";
