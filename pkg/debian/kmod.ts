/**
 * modules.dep, as depmod(8) writes it, from the modules' own ELF symbol
 * tables (ELF-64, either byte order: the System V gABI "Sections" and
 * "Symbol Table" chapters):
 *
 *   ELF header       0x28 e_shoff (8)  0x3A e_shentsize (2)  0x3C e_shnum (2)
 *   section header   0x04 sh_type (4: 2 = SHT_SYMTAB)  0x18 sh_offset (8)
 *                    0x20 sh_size (8)  0x28 sh_link (4: its string table)
 *   symbol (24 B)    0x00 st_name (4)  0x04 st_info (1: binding << 4 | type)
 *                    0x06 st_shndx (2: 0 = undefined)
 *
 * A module exports what its symbol table names `__ksymtab_NAME`; it needs
 * every global symbol it leaves undefined. A module depends on the modules
 * exporting what it needs (symbols of the kernel itself are not in any
 * module), and modules.dep lists, for each module, every module it needs
 * directly or through others, each before the ones it needs itself
 * (modprobe loads them in reverse).
 */
import { DockyardError } from '../errors.js';

export interface ModuleSymbols {
  exports: string[];
  needs: string[];
}

const SHT_SYMTAB = 2;
const STB_GLOBAL = 1;

/** The exported and needed symbols of one module (`what` names it in errors). */
export function moduleSymbols(elf: Buffer, what: string): ModuleSymbols {
  const bad = (why: string) => new DockyardError('E_ARCHIVE_FORMAT', `${what}: not a kernel module (${why})`);
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) throw bad('no ELF signature');
  if (elf[4] !== 2) throw bad('not ELF-64');
  const le = elf[5] === 1;
  const u16 = (o: number) => (le ? elf.readUInt16LE(o) : elf.readUInt16BE(o));
  const u32 = (o: number) => (le ? elf.readUInt32LE(o) : elf.readUInt32BE(o));
  const u64 = (o: number) => Number(le ? elf.readBigUInt64LE(o) : elf.readBigUInt64BE(o));
  const shoff = u64(0x28);
  const shentsize = u16(0x3a);
  const shnum = u16(0x3c);
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length) throw bad('section headers outside the file');
  const section = (i: number) => {
    const h = shoff + i * shentsize;
    return { type: u32(h + 0x04), offset: u64(h + 0x18), size: u64(h + 0x20), link: u32(h + 0x28) };
  };
  const exports: string[] = [];
  const needs: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== SHT_SYMTAB) continue;
    const str = section(s.link);
    if (s.offset + s.size > elf.length || str.offset + str.size > elf.length) throw bad('a symbol table outside the file');
    const name = (off: number) => {
      const start = str.offset + off;
      const end = elf.indexOf(0, start);
      return elf.toString('latin1', start, end < 0 || end > str.offset + str.size ? str.offset + str.size : end);
    };
    for (let o = s.offset + 24; o + 24 <= s.offset + s.size; o += 24) {
      const n = u32(o);
      if (n === 0) continue;
      const info = elf[o + 4];
      const shndx = u16(o + 6);
      const sym = name(n);
      if (sym.startsWith('__ksymtab_')) exports.push(sym.slice('__ksymtab_'.length));
      else if (shndx === 0 && info >> 4 === STB_GLOBAL) needs.push(sym);
    }
  }
  return { exports, needs };
}

/**
 * modules.dep's text for `modules` (paths relative to lib/modules/VERSION,
 * in the order lines are written): each module's dependencies, transitive,
 * each listed before what it depends on.
 */
export function modulesDep(modules: Map<string, ModuleSymbols>, order: string[]): string {
  const provider = new Map<string, string>();
  // The first module (in `order`) exporting a symbol provides it, as depmod takes them in modules.order order.
  for (const m of order) for (const s of modules.get(m)?.exports ?? []) if (!provider.has(s)) provider.set(s, m);
  const direct = new Map<string, string[]>();
  for (const [m, syms] of modules) {
    const deps = new Set<string>();
    for (const s of syms.needs) {
      const p = provider.get(s);
      if (p && p !== m) deps.add(p);
    }
    direct.set(m, [...deps].sort());
  }
  // A topological order of every module, needers before what they need (Kahn's algorithm from the
  // modules nothing needs, a stack as kmod's depmod keeps it): each line lists its dependencies in
  // this order. The sets are depmod's; the order within a line can differ from its (modprobe loads
  // the dependencies of each dependency first either way).
  const dependents = new Map<string, number>();
  for (const deps of direct.values()) for (const d of deps) dependents.set(d, (dependents.get(d) ?? 0) + 1);
  const rank = new Map<string, number>();
  const stack = order.filter((m) => modules.has(m) && !dependents.get(m)).reverse();
  for (let i = 0; stack.length > 0; i++) {
    const m = stack.pop()!;
    rank.set(m, i);
    for (const d of direct.get(m) ?? []) {
      const left = dependents.get(d)! - 1;
      dependents.set(d, left);
      if (left === 0) stack.push(d);
    }
  }
  const lines: string[] = [];
  for (const m of order) {
    if (!modules.has(m)) continue;
    const all = new Set<string>();
    const walk = (x: string) => {
      for (const d of direct.get(x) ?? []) {
        if (d === m || all.has(d)) continue;
        all.add(d);
        walk(d);
      }
    };
    walk(m);
    // A dependency cycle (a broken set of modules) leaves some unranked: they go last, by name.
    const deps = [...all].sort((a, b) => (rank.get(a) ?? Infinity) - (rank.get(b) ?? Infinity) || (a < b ? -1 : a > b ? 1 : 0));
    lines.push(`${m}:${deps.length ? ' ' + deps.join(' ') : ''}`);
  }
  return lines.join('\n') + (lines.length ? '\n' : '');
}
