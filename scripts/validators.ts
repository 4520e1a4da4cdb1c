/**
 * Build step (`npm run build`, after tsc): writes the schemas' validators
 * as code to dist/pkg/spec/validators/ (see pkg/spec/schema.ts).
 */
import { writeValidators } from '../pkg/spec/schema.js';

for (const path of writeValidators()) process.stdout.write(`wrote ${path}\n`);
