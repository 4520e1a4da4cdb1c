/** `-f deb`: NAME_VERSION-RELEASE_ARCH.deb (deb.ts). */
import { packageFormat } from '../package.js';
import { encodeDeb } from './deb.js';
import { checkDebNames } from './names.js';

export const debFormat = packageFormat({
  name: 'deb',
  checkNames: checkDebNames,
  encode: (plan, sink, o) => encodeDeb(plan, sink, o),
});
