import { normalizeId } from '../../protocol/ids.js';
import type { PeerConfig } from './config.js';

/**
 * Who may message whom (C4), decided before any LLM work. With `allow_all` every device may message every device;
 * otherwise a sender needs a grant that matches the target:
 *   `*`            any device
 *   `broadcast`    may send to ["broadcast"] (also needs `allow_broadcast`)
 *   `same_group`   devices of the sender's workflow group
 *   `group:<key>`  devices of that group
 *   `role:<name>`  devices with that role
 *   `<device id>`  that device
 * Grants come from the allowlist (a list of senders = `*` + `broadcast`; or a map sender → grants) and from
 * `roles_grants` of the sender's role (`device_roles`, else devices.yaml) plus the role `*` (everyone).
 */
export interface AclDirectory {
  roleOf(deviceId: string): string | undefined;
  groupOf(deviceId: string): string;
}

interface CompiledAcl {
  listed: Set<string>;
  bySender: Map<string, string[]>;
  roles: Map<string, string>;
  roleGrants: Map<string, string[]>;
}

const compiled = new WeakMap<PeerConfig, CompiledAcl>();

function compile(cfg: PeerConfig): CompiledAcl {
  const hit = compiled.get(cfg);
  if (hit) return hit;
  const listed = new Set<string>();
  const bySender = new Map<string, string[]>();
  if (Array.isArray(cfg.allowlist)) {
    for (const raw of cfg.allowlist) {
      const id = normalizeId(raw);
      if (id) listed.add(id);
    }
  } else {
    for (const [raw, grants] of Object.entries(cfg.allowlist)) {
      const id = normalizeId(raw);
      if (id) bySender.set(id, [...(bySender.get(id) ?? []), ...grants]);
    }
  }
  const roles = new Map<string, string>();
  for (const [raw, role] of Object.entries(cfg.device_roles)) {
    const id = normalizeId(raw);
    if (id && role.trim()) roles.set(id, role.trim());
  }
  const roleGrants = new Map(Object.entries(cfg.roles_grants).map(([role, grants]) => [role.trim(), grants]));
  const acl = { listed, bySender, roles, roleGrants };
  compiled.set(cfg, acl);
  return acl;
}

export class PeerAcl {
  constructor(
    private readonly cfg: PeerConfig,
    private readonly dir: AclDirectory,
  ) {}

  roleOf(deviceId: string): string | undefined {
    return compile(this.cfg).roles.get(deviceId) ?? this.dir.roleOf(deviceId);
  }

  grantsOf(sender: string): string[] {
    const acl = compile(this.cfg);
    const grants: string[] = [];
    if (acl.listed.has(sender)) grants.push('*', 'broadcast');
    grants.push(...(acl.bySender.get(sender) ?? []));
    const role = this.roleOf(sender);
    if (role) grants.push(...(acl.roleGrants.get(role) ?? []));
    grants.push(...(acl.roleGrants.get('*') ?? []));
    return grants;
  }

  mayMessage(sender: string, target: string): boolean {
    if (this.cfg.allow_all) return true;
    return this.grantsOf(sender).some((g) => this.#matches(g, sender, target));
  }

  mayBroadcast(sender: string): boolean {
    if (!this.cfg.allow_broadcast) return false;
    if (this.cfg.allow_all) return true;
    return this.grantsOf(sender).some((g) => g === 'broadcast' || g === '*');
  }

  #matches(grant: string, sender: string, target: string): boolean {
    if (grant === '*') return true;
    if (grant === 'broadcast') return false;
    if (grant === 'same_group') return this.dir.groupOf(sender) === this.dir.groupOf(target);
    if (grant.startsWith('group:')) return this.dir.groupOf(target) === grant.slice(6).trim();
    if (grant.startsWith('role:')) return this.roleOf(target) === grant.slice(5).trim();
    return normalizeId(grant) === target;
  }
}
