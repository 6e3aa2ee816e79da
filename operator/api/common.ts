// Building blocks shared by the threefs.io kinds: Kubernetes value types (quantities, resources,
// tolerations, conditions) and the helpers that attach Kubernetes-only schema keywords (CEL rules,
// list types) through zod's `.meta()`, which the CRD generator copies into the OpenAPI schema.
import { z } from 'zod';

export const API_GROUP = 'threefs.io';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** One CEL rule as the apiserver evaluates it (`x-kubernetes-validations`). */
export interface CelRule {
  rule: string;
  message: string;
  /** JSONPath (from the node carrying the rule) of the field the error names. */
  fieldPath?: string;
  reason?:
    'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Attaches CEL validation rules to a schema node, after any it already carries. */
export function withRules<T extends z.ZodType>(schema: T, rules: readonly CelRule[]): T {
  const existing = (schema.meta()?.['x-kubernetes-validations'] ?? []) as CelRule[];
  return schema.meta({
    'x-kubernetes-validations': [...existing, ...rules.map((r) => ({ ...r }))],
  });
}

/** A field the apiserver refuses to change once set (a transition rule: only checked on update). */
export function immutable<T extends z.ZodType>(schema: T, what: string, why: string): T {
  return withRules(schema, [{ rule: 'self == oldSelf', message: `${what} is immutable: ${why}` }]);
}

/** A Kubernetes object name (DNS-1123 subdomain). */
export const objectName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);

/** A resource quantity such as `500m`, `2Gi` or `4`: the apiserver accepts a string or a number. */
export const quantity = z
  .union([z.string(), z.number()])
  .meta({ 'x-kubernetes-int-or-string': true });

const resourceList = z.record(z.string(), quantity);

export const resources = z
  .object({
    requests: resourceList.optional(),
    limits: resourceList.optional(),
  })
  .describe('CPU, memory and extended resources (e.g. RDMA devices), as in a container spec.');

export const toleration = z.object({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

/**
 * A core/v1 Affinity passed through to pods unchanged. Its schema is large and owned by Kubernetes,
 * and the pod the operator creates validates it, so the CRD keeps it opaque.
 */
export const affinity = z
  .record(z.string(), z.unknown())
  .meta({ 'x-kubernetes-preserve-unknown-fields': true })
  .describe('A core/v1 Affinity, copied into the pods of this component.');

export const placement = z
  .object({
    nodeSelector: z.record(z.string(), z.string()).optional(),
    affinity: affinity.optional(),
    tolerations: z.array(toleration).max(64).optional(),
    priorityClassName: z.string().optional(),
  })
  .describe('Where the pods of this component may run.');

/** metav1.Condition, kept as a map keyed by type so server-side apply merges one condition at a time. */
export const condition = z.object({
  type: z.string().min(1).max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: z.string().meta({ format: 'date-time' }),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
});

export const conditions = z
  .array(condition)
  .max(16)
  .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });

/** Public state of a target as mgmtd publishes it in routing info (brief §2.4). */
export const targetPublicState = z.enum(['SERVING', 'LASTSRV', 'SYNCING', 'WAITING', 'OFFLINE']);
/** Local state of a target as its storage daemon reports it in heartbeats (brief §2.4). */
export const targetLocalState = z.enum(['UPTODATE', 'ONLINE', 'OFFLINE']);

/** The upper bound the schemas put on replication factor and chain length. */
export const MAX_REPLICATION_FACTOR = 5;

/** The object a custom resource of this API is: the usual envelope around its spec and status. */
export function customResource<Spec extends z.ZodType, Status extends z.ZodType>(
  spec: Spec,
  status: Status,
) {
  return z.object({
    apiVersion: z.string(),
    kind: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    spec,
    status: status.optional(),
  });
}
