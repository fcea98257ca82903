import { BlockList, isIP } from 'node:net';

/** An address or a CIDR block (`10.0.0.0/8`, `::1/128`, `192.168.1.20`); undefined when it is neither. */
export function parseCidr(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', bits, ...rest] = entry.trim().split('/');
  const version = isIP(address);
  if (!version || rest.length) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!/^\d+$/.test(bits ?? String(max)) || prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * Whether a socket's remote address is in a list of addresses and CIDR blocks (entries checked by the config
 * schema). An IPv4 address mapped into IPv6 (`::ffff:127.0.0.1`, a dual-stack listener) is matched as IPv4.
 */
export function addressMatcher(entries: readonly string[]): (remote: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const cidr = parseCidr(entry);
    if (cidr) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return (remote) => {
    if (!remote) return false;
    const v4 = remote.startsWith('::ffff:') && isIP(remote.slice(7)) === 4 ? remote.slice(7) : remote;
    const family = isIP(v4);
    return family !== 0 && list.check(v4, family === 4 ? 'ipv4' : 'ipv6');
  };
}
