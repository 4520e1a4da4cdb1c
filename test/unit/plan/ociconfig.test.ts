/**
 * convertConfig against what LinuxKit wrote: every valid conformance case's
 * containers/**\/config.json and runtime.json, compared as JSON values
 * (ignoring ociVersion); and the invalid cases whose failure lies in a
 * container's configuration.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { loadSpecs, parseImageLabel, LABEL, type Spec, type ImageSpec } from '../../../pkg/spec/index.js';
import { OciLayout, type ImageHandle } from '../../../pkg/oci/index.js';
import { DockyardError } from '../../../pkg/errors.js';
import { containerIds, convertConfig, checkImageEntry, encodeJson, ALL_CAPABILITIES } from '../../../pkg/plan/ociconfig.js';

const corpus = resolve(__dirname, '../../data/conformance');
const casesDir = join(corpus, 'cases');
const amd64 = { os: 'linux', architecture: 'amd64' };

function specFiles(caseDir: string): string[] {
  const args = join(caseDir, 'build-args');
  if (existsSync(args)) return readFileSync(args, 'utf8').trim().split(/\s+/);
  return ['spec.yml'];
}

function loadCase(caseDir: string): Spec {
  const inputs = specFiles(caseDir).map((f) => ({ file: join(caseDir, f), text: readFileSync(join(caseDir, f), 'utf8') }));
  const { spec, problems } = loadSpecs(inputs);
  expect(problems).toEqual([]);
  return spec!;
}

function withoutVersion(v: unknown): unknown {
  const o = { ...(v as Record<string, unknown>) };
  delete o.ociVersion;
  return o;
}

const validCases = readdirSync(casesDir)
  .filter((c) => /^[0-4]\d-/.test(c) && existsSync(join(casesDir, c, 'expected', 'containers')))
  .sort();

describe('convertConfig reproduces LinuxKit config.json / runtime.json', () => {
  let layout: OciLayout;
  const handles = new Map<string, ImageHandle>();
  beforeAll(async () => {
    layout = await OciLayout.open(join(corpus, 'images'));
  });
  async function handle(ref: string): Promise<ImageHandle> {
    let h = handles.get(ref);
    if (!h) {
      h = await layout.resolve(ref, amd64);
      handles.set(ref, h);
    }
    return h;
  }

  it('finds the valid cases with container bundles', () => {
    expect(validCases.length).toBeGreaterThanOrEqual(20);
  });

  for (const name of validCases) {
    it(name, async () => {
      const caseDir = join(casesDir, name);
      const spec = loadCase(caseDir);
      const ids = containerIds(spec);
      const volumes = new Map(spec.volumes.map((v) => [v.name, { readonly: v.readonly === true }]));
      const unpacked = new Map<string, string>();
      const seen: string[] = [];
      for (const [section, list] of [
        ['onboot', spec.onboot],
        ['onshutdown', spec.onshutdown],
        ['services', spec.services],
      ] as const) {
        for (const [i, entry] of list.entries()) {
          const h = await handle(entry.image);
          const labelText = h.config.config?.Labels?.[LABEL];
          const label = labelText === undefined ? undefined : parseImageLabel(labelText, h.ref);
          const dir = section === 'services' ? `containers/services/${entry.name}` : `containers/${section}/${String(i).padStart(3, '0')}-${entry.name}`;
          const sharedWith = unpacked.get(h.canonical);
          const got = convertConfig({ image: entry, imageConfig: h.config, label, ids, placement: { dir, sharedWith }, volumes });
          if (sharedWith === undefined) unpacked.set(h.canonical, `${dir}/${got.readonly ? 'rootfs' : 'lower'}`);

          const expDir = join(caseDir, 'expected', dir);
          const expConfig = JSON.parse(readFileSync(join(expDir, 'config.json'), 'utf8'));
          const expRuntime = JSON.parse(readFileSync(join(expDir, 'runtime.json'), 'utf8'));
          // What is written is what is compared: the encoded bytes, parsed back.
          const gotConfig = JSON.parse(encodeJson(got.config).toString('utf8'));
          const gotRuntime = JSON.parse(encodeJson(got.runtime).toString('utf8'));
          expect(withoutVersion(gotConfig), `${dir}/config.json`).toEqual(withoutVersion(expConfig));
          expect(gotRuntime, `${dir}/runtime.json`).toEqual(expRuntime);
          expect(got.readonly).toBe(expConfig.root?.readonly === true);
          expect(checkImageEntry(entry)).toEqual([]);
          seen.push(dir);
        }
      }
      // Every bundle LinuxKit wrote was produced.
      const expected: string[] = [];
      const walk = (d: string, rel: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (e.isDirectory()) walk(join(d, e.name), `${rel}/${e.name}`);
          else if (e.name === 'config.json') expected.push(rel);
        }
      };
      walk(join(caseDir, 'expected', 'containers'), 'containers');
      expect(seen.sort()).toEqual(expected.sort());
    });
  }
});

/** The invalid cases whose failure is in a container's configuration. */
const invalid: { name: string; message: RegExp }[] = [
  { name: '70-invalid-unknown-capability', message: /^x: capabilities: unknown capability "CAP_NOT_A_THING"/ },
  { name: '72-invalid-uid-unknown-name', message: /^x: uid "nobody-here" is neither a number nor the name of a container/ },
  { name: '74-invalid-bind-no-colon', message: /^x: bind "\/var\/lib\/data": missing ':'/ },
  { name: '77-invalid-mount-missing-type', message: /^x: mount on \/data is missing type/ },
  { name: '78-invalid-rlimit', message: /^x: rlimit "nofiles,10,20": unknown limit RLIMIT_NOFILES/ },
];

describe('container configuration errors (invalid cases)', () => {
  const busybox = { config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo image-cmd'] } };
  for (const { name, message } of invalid) {
    it(name, () => {
      const caseDir = join(casesDir, name);
      expect(readFileSync(join(caseDir, 'expected', 'error.txt'), 'utf8')).toMatch(/exit status: [1-9]/);
      // Taken straight from the YAML: the loader may already refuse some of these (uid names).
      const doc = parse(readFileSync(join(caseDir, 'spec.yml'), 'utf8')) as { onboot: ImageSpec[] };
      const spec = { onboot: doc.onboot, onshutdown: [], services: [] } as unknown as Spec;
      const entry = doc.onboot[0];
      let err: unknown;
      try {
        convertConfig({ image: entry, imageConfig: busybox, ids: containerIds(spec), placement: { dir: 'containers/onboot/000-x' }, volumes: new Map() });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DockyardError);
      expect((err as DockyardError).code).toBe('E_SPEC_INVALID');
      expect((err as DockyardError).message).toMatch(message);
      // validate knows it too, except a uid name (the loader checks names against the spec).
      const problems = checkImageEntry(entry);
      if (name.startsWith('72')) {
        expect(problems).toEqual([]);
        const { problems: loadProblems } = loadSpecs([{ file: join(caseDir, 'spec.yml'), text: readFileSync(join(caseDir, 'spec.yml'), 'utf8') }]);
        expect(loadProblems.map((p) => p.message).join('\n')).toMatch(/uid "nobody-here" is neither a number nor the name of a container/);
      } else {
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatch(message);
      }
    });
  }
});

describe('convertConfig details', () => {
  const img = { config: { Entrypoint: ['/bin/sh'], Cmd: null, Env: null } };
  const base = (extra: Partial<ImageSpec>, label?: Record<string, unknown>) =>
    convertConfig({
      image: { name: 'c', image: 'x', ...extra },
      imageConfig: img,
      label,
      ids: new Map([['c', 100], ['d', 101]]),
      placement: { dir: 'containers/services/c' },
      volumes: new Map([['ro', { readonly: true }], ['rw', { readonly: false }]]),
    });

  it('`all` is the 41 capabilities in kernel order; none is none', () => {
    expect(ALL_CAPABILITIES).toHaveLength(41);
    expect(ALL_CAPABILITIES[0]).toBe('CAP_CHOWN');
    expect(ALL_CAPABILITIES[40]).toBe('CAP_CHECKPOINT_RESTORE');
    const all = base({ capabilities: ['ALL'] }).config as any;
    expect(all.process.capabilities.effective).toEqual(ALL_CAPABILITIES);
    expect(all.process.capabilities.bounding).toEqual([...ALL_CAPABILITIES].sort());
    const none = base({ capabilities: ['none'] }, { capabilities: ['CAP_KILL'] }).config as any;
    expect(none.process.capabilities).toEqual({});
  });

  it('capabilities.add extends the label; capabilities replaces both', () => {
    const add = base({ 'capabilities.add': ['CAP_KILL'] }, { capabilities: ['CAP_SYS_ADMIN'], ambient: ['CAP_NET_RAW'] }).config as any;
    expect(add.process.capabilities).toEqual({
      bounding: ['CAP_KILL', 'CAP_NET_RAW', 'CAP_SYS_ADMIN'],
      effective: ['CAP_SYS_ADMIN', 'CAP_KILL'],
      inheritable: ['CAP_KILL', 'CAP_NET_RAW', 'CAP_SYS_ADMIN'],
      permitted: ['CAP_KILL', 'CAP_NET_RAW', 'CAP_SYS_ADMIN'],
      ambient: ['CAP_NET_RAW'],
    });
    const repl = base({ capabilities: ['CAP_CHOWN'], 'capabilities.add': ['CAP_KILL'] }, { capabilities: ['CAP_SYS_ADMIN'] }).config as any;
    expect(repl.process.capabilities.effective).toEqual(['CAP_CHOWN']);
  });

  it('uid/gid by container name; unlimited rlimit is 2^64-1 in the bytes', () => {
    const r = base({ uid: 'd', gid: 'root', additionalGids: [5, 'c'], rlimits: ['nofile, unlimited ,unlimited'] });
    const c = r.config as any;
    expect(c.process.user).toEqual({ uid: 101, gid: 0, additionalGids: [5, 100] });
    expect(encodeJson(r.config).toString()).toContain('"hard": 18446744073709551615');
  });

  it('volume binds become the volume merged dir; a read-only volume needs :ro', () => {
    const c = base({ binds: ['rw:/data', 'ro:/ro:ro', '/host:/host:ro'] }).config as any;
    const byDest = Object.fromEntries(c.mounts.map((m: any) => [m.destination, m]));
    expect(byDest['/data']).toEqual({ destination: '/data', type: 'bind', source: '/containers/volumes/rw/merged', options: ['rw', 'rbind', 'rshared'] });
    expect(byDest['/ro'].source).toBe('/containers/volumes/ro/merged');
    expect(byDest['/host'].source).toBe('/host');
    expect(() => base({ binds: ['ro:/ro'] })).toThrow(/c: binds "ro:\/ro": volume "ro" is read-only/);
    expect(() => base({ 'binds.add': ['nope:/x'] })).toThrow(/c: binds.add "nope:\/x": volume "nope" is not declared/);
  });

  it('camelCase keys Go cannot decode in resources and id mappings are dropped', () => {
    const c = base({
      resources: { memory: { limit: 10, kernelTCP: 5, disableOOMKiller: true }, blockio: { weight: 7, leafWeight: 3 } },
      uidMappings: [{ containerID: 1, hostID: 2, size: 3 }],
    }).config as any;
    expect(c.linux.resources).toEqual({ memory: { limit: 10 }, blockIO: { weight: 7 } });
    expect(c.linux.uidMappings).toEqual([{ containerID: 0, hostID: 0, size: 3 }]);
  });

  it('readonly bundles bind their rootfs; shared images point at the first copy', () => {
    const ro = base({ readonly: true }).runtime as any;
    expect(ro.mounts).toEqual([{ destination: '/containers/services/c/rootfs', source: '/containers/services/c/rootfs', options: ['bind'] }]);
    const shared = convertConfig({
      image: { name: 'c', image: 'x' },
      imageConfig: img,
      ids: new Map(),
      placement: { dir: 'containers/services/c', sharedWith: 'containers/onboot/000-a/lower' },
      volumes: new Map(),
    }).runtime as any;
    expect(shared.mounts[2].options[0]).toBe('lowerdir=/containers/onboot/000-a/lower');
  });

  it('checkImageEntry reports each problem with the container name', () => {
    expect(
      checkImageEntry({
        name: 'c',
        image: 'x',
        tmpfs: ['/a:b:c'],
        binds: ['/x:/y:z:w'],
        ambient: ['CAP_NOPE'],
        devices: [{ path: '/dev/x', type: 'c', major: 1, minor: 1, mode: '999' }],
        rlimits: ['nofile,1'],
      }),
    ).toEqual([
      expect.stringMatching(/^c: tmpfs "\/a:b:c": too many ':'/),
      expect.stringMatching(/^c: bind "\/x:\/y:z:w": too many ':'/),
      expect.stringMatching(/^c: ambient: unknown capability "CAP_NOPE"/),
      expect.stringMatching(/^c: rlimit "nofile,1": want NAME,SOFT,HARD/),
      expect.stringMatching(/^c: device \/dev\/x: mode "999" is not an octal number/),
    ]);
    // A lone `all` in capabilities.add depends on the label: not reported.
    expect(checkImageEntry({ name: 'c', image: 'x', 'capabilities.add': ['all'] })).toEqual([]);
  });

  it('encodeJson writes Go MarshalIndent bytes', () => {
    expect(encodeJson({ a: [], b: {}, c: ['<&>'], d: { e: 1 } }).toString()).toBe(
      '{\n    "a": [],\n    "b": {},\n    "c": [\n        "\\u003c\\u0026\\u003e"\n    ],\n    "d": {\n        "e": 1\n    }\n}',
    );
  });
});
