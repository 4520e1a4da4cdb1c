/**
 * The numbers of rpm's v4 package format this encoder uses, as rpm 4.18
 * defines them (include/rpm/rpmtag.h, include/rpm/rpmds.h,
 * include/rpm/rpmfiles.h; docs/manual/tags.md). Only what dockyard writes or
 * reads back in tests is listed.
 */

/** Header data types (rpmtag.h rpmTagType_e; "RPM File Format", "The Header Structure"). */
export const RpmType = {
  NULL: 0,
  CHAR: 1,
  INT8: 2,
  INT16: 3,
  INT32: 4,
  INT64: 5,
  STRING: 6,
  BIN: 7,
  STRING_ARRAY: 8,
  I18NSTRING: 9,
} as const;
export type RpmType = (typeof RpmType)[keyof typeof RpmType];

/** Region tags (rpmtag.h HEADER_SIGNATURES / HEADER_IMMUTABLE; docs/manual/hregions.md). */
export const HEADER_SIGNATURES = 62;
export const HEADER_IMMUTABLE = 63;
/** Lowest tag an ordinary (non-region) entry may have (header.c hdrchkTag). */
export const HEADER_I18NTABLE = 100;

/** Main header tags (rpmtag.h rpmTag_e). The comment is rpm's type: s string, s[] array, s{} i18n, i int32, h int16, l int64. */
export const Tag = {
  HEADERI18NTABLE: 100, // s[] locales of the s{} tags: ["C"]
  NAME: 1000, // s
  VERSION: 1001, // s
  RELEASE: 1002, // s
  EPOCH: 1003, // i
  SUMMARY: 1004, // s{}
  DESCRIPTION: 1005, // s{}
  BUILDTIME: 1006, // i
  BUILDHOST: 1007, // s
  SIZE: 1009, // i
  VENDOR: 1011, // s
  LICENSE: 1014, // s
  PACKAGER: 1015, // s
  GROUP: 1016, // s{}
  URL: 1020, // s
  OS: 1021, // s
  ARCH: 1022, // s
  PREIN: 1023, // s
  POSTIN: 1024, // s
  PREUN: 1025, // s
  POSTUN: 1026, // s
  FILESIZES: 1028, // i[]
  FILEMODES: 1030, // h[]
  FILERDEVS: 1033, // h[]
  FILEMTIMES: 1034, // i[]
  FILEDIGESTS: 1035, // s[]
  FILELINKTOS: 1036, // s[]
  FILEFLAGS: 1037, // i[]
  FILEUSERNAME: 1039, // s[]
  FILEGROUPNAME: 1040, // s[]
  SOURCERPM: 1044, // s
  FILEVERIFYFLAGS: 1045, // i[]
  ARCHIVESIZE: 1046, // i (the signature header's PAYLOADSIZE, merged in by rpm)
  PROVIDENAME: 1047, // s[]
  REQUIREFLAGS: 1048, // i[]
  REQUIRENAME: 1049, // s[]
  REQUIREVERSION: 1050, // s[]
  CONFLICTFLAGS: 1053, // i[]
  CONFLICTNAME: 1054, // s[]
  CONFLICTVERSION: 1055, // s[]
  RPMVERSION: 1064, // s
  CHANGELOGTIME: 1080, // i[]
  CHANGELOGNAME: 1081, // s[]
  CHANGELOGTEXT: 1082, // s[]
  PREINPROG: 1085, // s (s[] with arguments)
  POSTINPROG: 1086,
  PREUNPROG: 1087,
  POSTUNPROG: 1088,
  OBSOLETENAME: 1090, // s[]
  FILEDEVICES: 1095, // i[]
  FILEINODES: 1096, // i[]
  FILELANGS: 1097, // s[]
  PROVIDEFLAGS: 1112, // i[]
  PROVIDEVERSION: 1113, // s[]
  OBSOLETEFLAGS: 1114, // i[]
  OBSOLETEVERSION: 1115, // s[]
  DIRINDEXES: 1116, // i[]
  BASENAMES: 1117, // s[]
  DIRNAMES: 1118, // s[]
  PAYLOADFORMAT: 1124, // s
  PAYLOADCOMPRESSOR: 1125, // s
  PAYLOADFLAGS: 1126, // s
  PLATFORM: 1132, // s
  LONGFILESIZES: 5008, // l[]
  LONGSIZE: 5009, // l
  FILEDIGESTALGO: 5011, // i
  RECOMMENDNAME: 5046, // s[]
  RECOMMENDVERSION: 5047, // s[]
  RECOMMENDFLAGS: 5048, // i[]
  SUGGESTNAME: 5049, // s[]
  SUGGESTVERSION: 5050, // s[]
  SUGGESTFLAGS: 5051, // i[]
  ENCODING: 5062, // s
  PAYLOADDIGEST: 5092, // s[]
  PAYLOADDIGESTALGO: 5093, // i
  PAYLOADDIGESTALT: 5097, // s[]
} as const;

/** Signature header tags (rpmtag.h rpmSigTag_e; docs/manual/signatures_digests.md). */
export const SigTag = {
  SHA1: 269, // s: hex SHA-1 of the main header
  LONGSIZE: 270, // l: header + compressed payload, when SIZE cannot hold it
  LONGARCHIVESIZE: 271, // l: uncompressed payload, when PAYLOADSIZE cannot hold it
  SHA256: 273, // s: hex SHA-256 of the main header
  SIZE: 1000, // i: header + compressed payload bytes
  MD5: 1004, // x (16 bytes): MD5 of header + compressed payload
  PAYLOADSIZE: 1007, // i: uncompressed payload (cpio) bytes
  RESERVEDSPACE: 1008, // x: zeros that a later rpmsign can turn into a signature in place
} as const;

/** Dependency flags (rpmds.h rpmsenseFlags_e). */
export const Sense = {
  ANY: 0,
  LESS: 1 << 1,
  GREATER: 1 << 2,
  EQUAL: 1 << 3,
  PREREQ: 1 << 6,
  INTERP: 1 << 8,
  SCRIPT_PRE: 1 << 9,
  SCRIPT_POST: 1 << 10,
  SCRIPT_PREUN: 1 << 11,
  SCRIPT_POSTUN: 1 << 12,
  RPMLIB: 1 << 24,
  CONFIG: 1 << 28,
} as const;

/** File flags (rpmfiles.h rpmfileAttrs_e). */
export const FileFlag = {
  CONFIG: 1 << 0,
  DOC: 1 << 1,
  NOREPLACE: 1 << 4,
  GHOST: 1 << 6,
} as const;

/** File verify flags (rpmfiles.h rpmVerifyAttrs_e): rpmbuild writes all bits, less what a %ghost cannot be checked for. */
export const Verify = {
  ALL: 0xffffffff,
  FILEDIGEST: 1 << 0,
  FILESIZE: 1 << 1,
  LINKTO: 1 << 2,
  MTIME: 1 << 5,
} as const;

/** Hash algorithm numbers (RFC 4880 §9.4, rpmpgp.h pgpHashAlgo): FILEDIGESTALGO, PAYLOADDIGESTALGO. */
export const HASH_SHA256 = 8;

/** File type bits of st_mode, as FILEMODES and cpio's c_mode carry them. */
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
