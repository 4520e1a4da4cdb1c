/** The bench's "full" kernel spec: Debian's whole module tree, the fixture init, one onboot container. */
import { fixtureRefs } from '../test/fixtures/build.js';

export const FULL_KERNEL_SPEC = `kernel:
  image: ${fixtureRefs.kernelFull}
  cmdline: "console=ttyS0"
init:
  - ${fixtureRefs.init}
onboot:
  - name: hello
    image: ${fixtureRefs.busybox}
    command: ["/bin/echo", "hello"]
`;
