/**
 * The schemas in schemas/ are valid JSON Schema 2020-12: checked here once
 * against the meta-schema, since the CLI compiles them without that check
 * (pkg/spec/schema.ts) to start faster.
 */
import { describe, it, expect } from 'vitest';
import { readFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { schemaPath } from '../../../pkg/spec/schema.js';

describe('schemas/', () => {
  it('spec.schema.json and image.schema.json pass the JSON Schema 2020-12 meta-schema and compile with their cross reference', async () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    for (const name of ['spec.schema.json', 'image.schema.json']) {
      const schema = JSON.parse(await readFile(schemaPath(name), 'utf8')) as object;
      expect(ajv.validateSchema(schema), `${name}: ${ajv.errorsText()}`).toBe(true);
      ajv.addSchema(schema);
    }
    expect(ajv.getSchema('https://dockyard.dev/schemas/image.schema.json')).toBeTypeOf('function');
  });
});
