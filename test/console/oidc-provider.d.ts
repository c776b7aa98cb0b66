// oidc-provider ships no types; the OIDC browser test uses its constructor and callback only.
declare module "oidc-provider";
