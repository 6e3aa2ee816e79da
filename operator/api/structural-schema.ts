// Turns a zod schema into a Kubernetes *structural* OpenAPI v3 schema: every node has a type (or is
// int-or-string / preserve-unknown-fields), no $ref, no anyOf/oneOf/allOf/not, no
// additionalProperties beside properties. zod's own JSON Schema export does most of the work; this
// removes what Kubernetes rejects, checks the rest, and orders keys so the generated files are stable.
import { z } from 'zod';
import { ThreeFsError } from '../../daemons/common/errors.js';

export type SchemaNode = { [key: string]: unknown };

/** Keys in the order they are written, so generated YAML reads top-down and never reorders. */
const keyOrder = [
  'description',
  'type',
  'format',
  'enum',
  'default',
  'minimum',
  'exclusiveMinimum',
  'maximum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
];
const allowedKeys = new Set(keyOrder);
const validTypes = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

function fail(path: string, message: string): never {
  throw new ThreeFsError('INTERNAL', `not a structural schema at ${path || '<root>'}: ${message}`);
}

function isNode(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The default of an object section with its properties' own defaults filled in. The apiserver
 * checks a default against the node's CEL rules as written, before nested defaults apply, so a
 * bare `{}` would fail a rule such as `self.transport != 'RDMA' || ...`. Children are normalized
 * first, so their defaults are already expanded.
 */
export function expandDefault(value: SchemaNode, properties: SchemaNode): SchemaNode {
  const expanded: SchemaNode = {};
  for (const [name, child] of Object.entries(properties)) {
    if (isNode(child) && child.default !== undefined) expanded[name] = child.default;
  }
  return { ...expanded, ...value };
}

/** Normalizes one node (and its children) of zod's openapi-3.0 output. Pure: returns a new node. */
export function normalizeNode(input: SchemaNode, path: string): SchemaNode {
  const node: SchemaNode = { ...input };
  delete node.$schema;
  delete node.propertyNames; // record keys are always strings in Kubernetes

  if (node['x-kubernetes-int-or-string'] === true) {
    // zod writes anyOf [string, number]; Kubernetes wants the marker alone.
    delete node.anyOf;
    delete node.type;
  }
  if (node['x-kubernetes-preserve-unknown-fields'] === true) {
    if (isNode(node.additionalProperties) && Object.keys(node.additionalProperties).length === 0) {
      delete node.additionalProperties;
    }
  }
  if (node.additionalProperties === false) delete node.additionalProperties;
  if (node.type === 'integer') {
    // zod bounds .int() to the safe-integer range; that is noise in a CRD.
    if (node.maximum === Number.MAX_SAFE_INTEGER) delete node.maximum;
    if (node.minimum === Number.MIN_SAFE_INTEGER) delete node.minimum;
  }

  for (const key of Object.keys(node)) {
    if (!allowedKeys.has(key))
      fail(path, `keyword '${key}' is not allowed (${JSON.stringify(node[key])})`);
  }
  const typeless =
    node['x-kubernetes-int-or-string'] === true ||
    node['x-kubernetes-preserve-unknown-fields'] === true;
  if (node.type === undefined && !typeless) fail(path, 'node has no type');
  if (node.type !== undefined && (typeof node.type !== 'string' || !validTypes.has(node.type))) {
    fail(path, `type ${JSON.stringify(node.type)} is not one Kubernetes accepts`);
  }
  if (node.properties !== undefined && node.additionalProperties !== undefined) {
    fail(path, 'properties and additionalProperties are mutually exclusive');
  }
  if (node.type === 'array' && !isNode(node.items)) fail(path, 'array without items');

  if (isNode(node.properties)) {
    const properties: SchemaNode = {};
    for (const [name, child] of Object.entries(node.properties)) {
      if (!isNode(child)) fail(`${path}.${name}`, 'property schema is not an object');
      properties[name] = normalizeNode(child, `${path}.${name}`);
    }
    node.properties = properties;
  }
  if (isNode(node.items)) node.items = normalizeNode(node.items, `${path}[]`);
  if (isNode(node.additionalProperties)) {
    node.additionalProperties = normalizeNode(node.additionalProperties, `${path}{}`);
  }

  if (node.type === 'object' && isNode(node.default) && isNode(node.properties)) {
    node.default = expandDefault(node.default, node.properties);
  }

  const ordered: SchemaNode = {};
  for (const key of keyOrder) if (node[key] !== undefined) ordered[key] = node[key];
  return ordered;
}

/** The structural OpenAPI v3 schema of a zod schema, as the apiserver accepts it. */
export function structuralSchema(schema: z.ZodType, path = ''): SchemaNode {
  const json = z.toJSONSchema(schema, {
    io: 'input', // defaulted fields are optional for the user; the apiserver fills them in
    target: 'openapi-3.0',
    unrepresentable: 'throw',
    reused: 'inline',
    cycles: 'throw',
  }) as SchemaNode;
  return normalizeNode(json, path);
}
