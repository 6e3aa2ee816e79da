// Builds a CustomResourceDefinition for one kind from its zod spec and status schemas plus the
// metadata only a CRD has: names, printer columns, categories.
import type { z } from 'zod';
import { API_GROUP, API_VERSION } from './common.js';
import { structuralSchema } from './structural-schema.js';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  /** 0 shows in `kubectl get`; 1 only with `-o wide`. */
  priority?: 0 | 1;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
}

/** Every threefs kind is in this category, so `kubectl get threefs` lists them all. */
export const CATEGORY = 'threefs';

export function crdName(def: KindDefinition): string {
  return `${def.plural}.${API_GROUP}`;
}

export function buildCrd(def: KindDefinition): Record<string, unknown> {
  const spec = structuralSchema(def.spec, '.spec');
  const status = structuralSchema(def.status, '.status');
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: crdName(def) },
    spec: {
      group: API_GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: [CATEGORY],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            ...def.printerColumns,
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              description: def.description,
              type: 'object',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
                status,
              },
              required: ['spec'],
            },
          },
        },
      ],
    },
  };
}
