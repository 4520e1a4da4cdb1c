export { readSpecInputs, loadSpecs, nothingToBuild, STDIN_NAME, VOLUME_NAME, type SpecInput, type LoadOptions, type LoadResult } from './load.js';
export { parseImageLabel, LABEL } from './label.js';
export { renderMetadata, renderSpecYaml, metadataValue } from './render.js';
export { schemaPath } from './schema.js';
export type * from './types.js';
