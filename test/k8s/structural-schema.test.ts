// The zod → structural OpenAPI conversion, row by row (pure logic, no apiserver).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { immutable, quantity, withRules } from '../../operator/api/common.js';
import { normalizeNode, structuralSchema } from '../../operator/api/structural-schema.js';

describe('structuralSchema', () => {
  it('keeps types, defaults, bounds and descriptions', () => {
    const s = structuralSchema(
      z.object({ n: z.number().int().min(1).max(5).default(3).describe('count') }),
    );
    assert.deepEqual(s, {
      type: 'object',
      properties: {
        n: { description: 'count', type: 'integer', default: 3, minimum: 1, maximum: 5 },
      },
    });
  });

  it('drops the safe-integer bounds zod adds to .int()', () => {
    assert.deepEqual(structuralSchema(z.number().int()), { type: 'integer' });
  });

  it('writes int-or-string quantities as the bare marker', () => {
    assert.deepEqual(structuralSchema(quantity), { 'x-kubernetes-int-or-string': true });
  });

  it('writes records as additionalProperties without propertyNames', () => {
    assert.deepEqual(structuralSchema(z.record(z.string(), z.string())), {
      type: 'object',
      additionalProperties: { type: 'string' },
    });
  });

  it('appends CEL rules instead of replacing them', () => {
    const s = structuralSchema(
      withRules(immutable(z.string(), 'x', 'why'), [{ rule: 'size(self) > 0', message: 'empty' }]),
    );
    assert.deepEqual(s['x-kubernetes-validations'], [
      { rule: 'self == oldSelf', message: 'x is immutable: why' },
      { rule: 'size(self) > 0', message: 'empty' },
    ]);
  });

  it('writes an object section default with its nested defaults filled in', () => {
    const section = z
      .object({
        mode: z.enum(['a', 'b']).default('a'),
        inner: z.object({ n: z.number().int().default(2) }).prefault({}),
        optional: z.string().optional(),
      })
      .prefault({});
    assert.deepEqual(structuralSchema(section).default, { mode: 'a', inner: { n: 2 } });
  });

  it('orders keys the same way whatever order zod writes them in', () => {
    const a = normalizeNode({ maximum: 2, type: 'integer', description: 'd', minimum: 1 }, '');
    assert.deepEqual(Object.keys(a), ['description', 'type', 'minimum', 'maximum']);
  });

  const refused: [string, z.ZodType, RegExp][] = [
    ['a union that is not int-or-string', z.union([z.string(), z.number()]), /anyOf/],
    ['a nullable field', z.string().nullable(), /anyOf|nullable/],
    ['a node without a type', z.unknown(), /no type/],
    ['a literal with no type', z.any(), /no type/],
  ];
  for (const [name, schema, message] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(() => structuralSchema(schema), message);
    });
  }
});
