/**
 * The OpenAPI document at /openapi.json (@fastify/swagger from the route schemas). OpenAPI 3.1,
 * whose schemas are JSON Schema 2020-12, so what the routes validate (propertyNames, const, type
 * arrays, oneOf) is what the document says; CI runs Schemathesis against it
 * (test/service/schemathesis.test.ts).
 */
import type { SwaggerOptions } from "@fastify/swagger";

type Doc = { paths?: Record<string, Record<string, Operation>> };
interface Operation {
  requestBody?: { required?: boolean; content?: Record<string, { schema?: { type?: unknown } }> };
}

/**
 * @fastify/swagger marks every request body as required, but routes whose body schema admits
 * `null` (the lifecycle actions, approve/reject) also accept a request without one.
 */
function optionalBodies<T>(doc: T): T {
  for (const ops of Object.values((doc as Doc).paths ?? {}))
    for (const op of Object.values(ops)) {
      const body = op.requestBody;
      const types = Object.values(body?.content ?? {}).map((c) => c.schema?.type);
      if (body && types.length > 0 && types.every((t) => Array.isArray(t) && t.includes("null")))
        body.required = false;
    }
  return doc;
}

export const openapiOptions: SwaggerOptions = {
  openapi: {
    openapi: "3.1.0",
    info: { title: "TensorSeal key service", version: "0.1.0" },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  },
  transformObject: (d) => optionalBodies("openapiObject" in d ? d.openapiObject : d.swaggerObject),
};
