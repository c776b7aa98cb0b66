/**
 * The Cedar schema every policy set is validated against (strict mode) when it is loaded, and
 * the built-in default policy set that reproduces the first slice's scope semantics (a route
 * needs one role), so there is a single authorization path with or without `--policy`.
 *
 * Principals: `Workload` (static tokens, Kubernetes service-account and CI OIDC tokens, SPIFFE
 * certificates) and `User` (any other OIDC subject), each with `roles` and parents
 * `Role::"<role>"`. Resources: `Key` (name, labels as "k=v", sensitivity and its level, see
 * attributes.ts), `Artifact` (a registered sealed file, child of its `Key`; `key` is the Key
 * entity, so `resource.key.sensitivityLevel` works) and `Service` (for actions on no key).
 * Context: source address, time (Unix seconds), the principal's kind and workload identity,
 * on attested release the verified attestation claims, and on unwrap/rewrap of a registered
 * stanza the artifact it belongs to (`context.artifact`).
 */
export const CEDAR_NAMESPACE = "TensorSeal";

export const CEDAR_SCHEMA = `namespace TensorSeal {
  entity Role;
  entity Workload in [Role] { roles: Set<String>, kind: String };
  entity User in [Role] { roles: Set<String>, kind: String };
  entity Key { name: String, labels: Set<String>, sensitivity: String, sensitivityLevel: Long };
  entity Artifact in [Key] {
    id: String,
    key: Key,
    version: Long,
    digest: String,
    labels: Set<String>,
    sensitivity: String,
    sensitivityLevel: Long,
  };
  entity Service;
  type ArtifactInfo = {
    id: String,
    key: String,
    version: Long,
    labels: Set<String>,
    sensitivity: String,
    sensitivityLevel: Long,
  };
  type WorkloadIdentity = {
    kind: String,
    id: String,
    k8sNamespace?: String,
    serviceAccount?: String,
    repository?: String,
    ref?: String,
    spiffeId?: String,
  };
  type Attestation = {
    issuer: String,
    tee: String,
    measurement: String,
    debug: Bool,
    svn: Long,
  };
  type ClientCert = { subject: String, fingerprint: String, spiffeId?: String };
  type RequestContext = {
    source: String,
    time: Long,
    principalKind: String,
    workload: WorkloadIdentity,
    attestation?: Attestation,
    clientCert?: ClientCert,
    artifact?: ArtifactInfo,
  };
  action "unwrap", "wrap", "rewrap", "keys:create", "keys:rotate", "keys:disable", "keys:enable",
    "keys:schedule-destroy", "keys:cancel-destroy", "keys:update", "keys:export" appliesTo {
    principal: [Workload, User],
    resource: [Key],
    context: RequestContext,
  };
  action "artifacts:register" appliesTo {
    principal: [Workload, User],
    resource: [Artifact],
    context: RequestContext,
  };
  // On the Service: may the principal list/show artifacts at all; on each Artifact: this one.
  action "artifacts:read" appliesTo {
    principal: [Workload, User],
    resource: [Service, Artifact],
    context: RequestContext,
  };
  action "keys:list", "attestation:challenge", "audit:read", "principals:read",
    "principals:block", "principals:unblock", "principals:contain", "approvals:request",
    "approvals:approve", "approvals:read", "policies:read", "policies:update", "root:custody",
    "overview:read", "root:verify-shares", "incidents:read", "incidents:open", "incidents:note",
    "incidents:close", "drills:read", "drills:record" appliesTo {
    principal: [Workload, User],
    resource: [Service],
    context: RequestContext,
  };
}
`;

/** Each action and the role(s) the default policy set permits it to (any one of them). */
export const ACTION_ROLES: Record<string, string | readonly string[]> = {
  unwrap: "unwrap",
  wrap: "wrap",
  rewrap: "rewrap",
  "keys:create": "admin",
  "keys:rotate": "admin",
  "keys:list": "admin",
  "keys:disable": "admin",
  "keys:enable": "admin",
  "keys:schedule-destroy": "admin",
  "keys:cancel-destroy": "admin",
  "keys:update": "admin",
  // Dual control: each gated operation's own action is checked for the requester and every
  // approver too (keys:schedule-destroy, keys:export, policies:update).
  "keys:export": "admin",
  "approvals:request": "admin",
  "approvals:approve": "admin",
  "approvals:read": "admin",
  "policies:read": "admin",
  "policies:update": "admin",
  // Which HSM/KMS key may hold the service root: an operation under dual control.
  "root:custody": "admin",
  // A test recovery of the root shares (POST /v1/root/shares/verify): reveals only yes or no.
  "root:verify-shares": "admin",
  "attestation:challenge": "unwrap",
  // Registering an artifact (resource: the Artifact, child of its key) is part of writing a file.
  "artifacts:register": ["wrap", "writer"],
  "artifacts:read": ["admin", "reader"],
  "audit:read": ["admin", "audit"],
  // Anomaly auto-block: who is blocked, blocking one (incident containment), lifting a block.
  "principals:read": "admin",
  "principals:block": "admin",
  "principals:unblock": "admin",
  // The console's summary (GET /v1/overview): each of its sections is decided again with the
  // action of the route that shows it, so this action alone reveals nothing.
  "overview:read": ["admin", "audit", "reader"],
  // Incident containment: block and revoke tokens / client certificates (the `contain` approval).
  "principals:contain": "admin",
  // Incidents and drills on the service (the console): everyone who reads the service sees
  // them; opening, following, closing and recording a drill are the responder's (admin).
  "incidents:read": ["admin", "audit", "reader"],
  "incidents:open": "admin",
  "incidents:note": "admin",
  "incidents:close": "admin",
  "drills:read": ["admin", "audit", "reader"],
  "drills:record": "admin",
};

/** The default policy set: action A is permitted to a principal holding (one of) A's role(s). */
export const DEFAULT_POLICIES: Record<string, string> = Object.fromEntries(
  Object.entries(ACTION_ROLES).map(([action, role]) => [
    `default:${action}`,
    typeof role === "string"
      ? `permit (principal in TensorSeal::Role::"${role}", action == TensorSeal::Action::"${action}", resource);`
      : `permit (principal, action == TensorSeal::Action::"${action}", resource) when { ${role
          .map((r) => `principal in TensorSeal::Role::"${r}"`)
          .join(" || ")} };`,
  ]),
);
