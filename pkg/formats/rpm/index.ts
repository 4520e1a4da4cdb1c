/** `-f rpm`: NAME-VERSION-RELEASE.ARCH.rpm, an rpm v4 package (rpm.ts). */
import { packageFormat } from '../package.js';
import { encodeRpm } from './rpm.js';
import { checkRpmVersion } from './version.js';

export const rpmFormat = packageFormat({
  name: 'rpm',
  checkNames(meta) {
    const message = checkRpmVersion(meta);
    if (message === undefined) return undefined;
    const key = /^rpm: package name/.test(message) ? 'name' : /^rpm: release/.test(message) ? 'release' : 'version';
    return { key, message: message.replace(/^rpm: /, '') };
  },
  encode: (plan, sink, o) => encodeRpm(plan, sink, o),
});
