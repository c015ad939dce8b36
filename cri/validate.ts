import { isIP } from 'node:net';
import { posix } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import { pathLengthProblem } from '../core/fs-util.js';

/**
 * Checks on what a CRI caller sends, made at the edge before anything is
 * created: names as kubelet allows them, paths that cannot leave their
 * roots, strings that cannot add lines to a file or pairs to an
 * environment. Each failure names the field.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** RFC 1123 host names; node host names may carry capitals. */
const HOSTNAME = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/;
/** The kernel's HOST_NAME_MAX. */
const MAX_HOSTNAME = 64;
/** Kubernetes' own limit on a pod's annotations (TotalAnnotationSizeLimitB); labels get the same. */
export const MAX_MAP_BYTES = 256 * 1024;
const MAX_PATH = 4096;

const show = (v: string) => JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);

/** No control characters (a newline would add a line to a file, NUL cuts a C string). */
export function plain(field: string, value: string, maxLength = MAX_PATH): string {
  if (/\p{Cc}/u.test(value)) throw new InvalidArgumentError(`${field} ${show(value)} holds control characters`);
  if (value.length > maxLength) throw new InvalidArgumentError(`${field} is ${value.length} characters long; at most ${maxLength} are allowed`);
  return value;
}

/** No NUL: what becomes an argument or environment entry of a process. */
export function noNul(field: string, value: string): string {
  if (value.includes('\0')) throw new InvalidArgumentError(`${field} ${show(value)} holds a NUL byte`);
  return value;
}

export function dnsLabel(field: string, value: string): string {
  if (value.length > 63 || !DNS1123_LABEL.test(value))
    throw new InvalidArgumentError(`${field} ${show(value)} is not a DNS-1123 label (lowercase letters, digits and "-", at most 63)`);
  return value;
}

export function dnsSubdomain(field: string, value: string): string {
  if (value.length > 253 || !DNS1123_SUBDOMAIN.test(value))
    throw new InvalidArgumentError(`${field} ${show(value)} is not a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", at most 253)`);
  return value;
}

/**
 * A container name: kubelet's are DNS-1123 labels; validation suites send
 * longer ones, so the length is a subdomain's, and nothing that could
 * leave a path element or a pair.
 */
export function objectName(field: string, value: string): string {
  if (value.length > 253 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(value))
    throw new InvalidArgumentError(`${field} ${show(value)} is not a name (letters, digits, "-", "_" and ".", at most 253)`);
  return value;
}

/** A pod uid: kubelet's are UUIDs or hashes; nothing that could end a CNI_ARGS pair or a path element. */
export function podUid(field: string, value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(value))
    throw new InvalidArgumentError(`${field} ${show(value)} is not a uid (letters, digits, ".", "_" and "-", at most 128)`);
  return value;
}

export function hostname(field: string, value: string): string {
  if (value === '') return value;
  if (value.length > MAX_HOSTNAME || !HOSTNAME.test(value))
    throw new InvalidArgumentError(`${field} ${show(value)} is not a host name (RFC 1123, at most ${MAX_HOSTNAME} characters)`);
  return value;
}

/** An absolute path with no ".." element and no control characters. */
export function absolutePath(field: string, value: string): string {
  plain(field, value);
  if (!posix.isAbsolute(value)) throw new InvalidArgumentError(`${field} ${show(value)} must be an absolute path`);
  if (value.split('/').includes('..')) throw new InvalidArgumentError(`${field} ${show(value)} must not contain ".."`);
  const tooLong = pathLengthProblem(value);
  if (tooLong) throw new InvalidArgumentError(`${field} ${show(value)} ${tooLong}`);
  return value;
}

/** An absolute path or nothing. */
export function optionalAbsolutePath(field: string, value: string): string {
  return value === '' ? value : absolutePath(field, value);
}

export function ipAddress(field: string, value: string): string {
  if (isIP(value) === 0) throw new InvalidArgumentError(`${field} ${show(value)} is not an IP address`);
  return value;
}

/** A DNS search domain (a trailing dot is fine). */
export function searchDomain(field: string, value: string): string {
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  if (name.length === 0 || name.length > 253 || !HOSTNAME.test(name.replace(/_/g, 'x')))
    throw new InvalidArgumentError(`${field} ${show(value)} is not a DNS domain`);
  return value;
}

/** A resolv.conf option such as "ndots:5" or "edns0". */
export function resolverOption(field: string, value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/.test(value)) throw new InvalidArgumentError(`${field} ${show(value)} is not a resolver option (like "ndots:5")`);
  return value;
}

/** A user or group id: uid_t, without (uid_t)-1, which means "unchanged" to the kernel. */
export function unixId(field: string, value: bigint): bigint {
  if (value < 0n || value > 4_294_967_294n) throw new InvalidArgumentError(`${field} ${value} is not a valid id (0-4294967294)`);
  return value;
}

/** Labels or annotations: keys without control characters, and a bounded size. */
export function stringMap(field: string, map: Readonly<Record<string, string>>): Record<string, string> {
  let bytes = 0;
  for (const [k, v] of Object.entries(map)) {
    if (k === '') throw new InvalidArgumentError(`${field} has an empty key`);
    plain(`${field} key`, k, 1024);
    bytes += k.length + v.length;
  }
  if (bytes > MAX_MAP_BYTES) throw new InvalidArgumentError(`${field} hold ${bytes} bytes; at most ${MAX_MAP_BYTES} are allowed`);
  return { ...map };
}

/** An IP network such as "10.244.1.0/24" or "fd00::/64". */
export function cidr(field: string, value: string): string {
  const [ip = '', prefix = '', ...rest] = value.split('/');
  const family = isIP(ip);
  const bits = Number(prefix);
  if (family === 0 || rest.length > 0 || !/^\d{1,3}$/.test(prefix) || bits > (family === 4 ? 32 : 128))
    throw new InvalidArgumentError(`${field} ${show(value)} is not a CIDR (like "10.244.1.0/24")`);
  return value;
}

/** An id field that must be set (an unknown id is the domain's NOT_FOUND). */
export function requireId(field: string, id: string): string {
  if (id === '') throw new InvalidArgumentError(`${field} is empty`);
  return id;
}

export function port(field: string, value: number, allowZero: boolean): number {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 65535)
    throw new InvalidArgumentError(`${field} ${value} must be within ${allowZero ? 0 : 1}-65535`);
  return value;
}
