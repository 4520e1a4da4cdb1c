/** `-f pacman`: NAME-VERSION-RELEASE-ARCH.pkg.tar.gz, Arch Linux's package (pacman.ts). */
import { packageFormat } from '../package.js';
import { encodePacman } from './pacman.js';
import { checkPacmanNames } from './version.js';

export const pacmanFormat = packageFormat({
  name: 'pacman',
  checkNames: checkPacmanNames,
  encode: (plan, sink, o) => encodePacman(plan, sink, o),
});
