export { Cache, type CacheEntry, type PullOptions, type PullProgress } from './cache.js';
export { resolveAll, type ResolveAllOptions, defaultResolveConcurrency } from './resolve.js';
