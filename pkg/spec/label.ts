/**
 * An image's `org.mobyproject.config` label: JSON (LinuxKit parses it as
 * YAML, of which JSON is a subset) holding image-config keys only, checked
 * against the same schema definition as a container entry.
 */
import { parse } from 'yaml';
import { DockyardError } from '../errors.js';
import type { ImageConfig } from './types.js';
import { describeErrors, validateImageConfig } from './schema.js';

export const LABEL = 'org.mobyproject.config';

export function parseImageLabel(text: string, imageRef: string): ImageConfig {
  let data: unknown;
  try {
    data = parse(text);
  } catch (e) {
    throw new DockyardError('E_SPEC_INVALID', `image ${imageRef}: label ${LABEL} does not parse: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new DockyardError('E_SPEC_INVALID', `image ${imageRef}: label ${LABEL} must be a JSON object`);
  }
  const obj = data as Record<string, unknown>;
  for (const k of ['name', 'image']) {
    if (k in obj) throw new DockyardError('E_SPEC_INVALID', `image ${imageRef}: label ${LABEL} must not set "${k}"`);
  }
  const errors = validateImageConfig(obj);
  if (errors.length > 0) {
    const issues = describeErrors(errors, obj, 'label');
    throw new DockyardError('E_SPEC_INVALID', `image ${imageRef}: invalid ${LABEL} label: ${issues.map((i) => i.message).join('; ')}`);
  }
  return obj as ImageConfig;
}
