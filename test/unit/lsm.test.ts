import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import { appArmorChoice } from '../../cri/convert/security-profiles.js';
import { SecurityProfile_ProfileType } from '../../cri/generated/api.js';
import { appArmorProfile, relabelTree, selinuxLabels, type HostLsm } from '../../oci/lsm.js';

const host = (over: Partial<HostLsm> = {}): HostLsm => ({
  appArmor: true,
  selinux: true,
  appArmorProfiles: () => new Set(['cradle-default', 'custom']),
  ...over,
});

describe('AppArmor and SELinux options', () => {
  it('reads the AppArmor choice from the SecurityProfile or the deprecated string', () => {
    expect(appArmorChoice({ profile_type: SecurityProfile_ProfileType.Localhost, localhost_ref: 'localhost/custom' }, '')).to.deep.equal({
      kind: 'localhost',
      profile: 'custom',
    });
    expect(appArmorChoice({ profile_type: SecurityProfile_ProfileType.RuntimeDefault, localhost_ref: '' }, 'unconfined')).to.deep.equal({
      kind: 'runtime-default',
    });
    expect(appArmorChoice(undefined, 'localhost/custom')).to.deep.equal({ kind: 'localhost', profile: 'custom' });
    expect(appArmorChoice(undefined, '')).to.deep.equal({ kind: 'unset' });
    expect(() => appArmorChoice(undefined, 'docker-default')).to.throw(InvalidArgumentError);
    expect(() => appArmorChoice({ profile_type: SecurityProfile_ProfileType.Localhost, localhost_ref: '' }, '')).to.throw(InvalidArgumentError);
  });

  it('applies the configured default, Localhost profiles only when loaded, and nothing without AppArmor', () => {
    expect(appArmorProfile({ kind: 'unset' }, host(), 'cradle-default', false)).to.equal('cradle-default');
    expect(appArmorProfile({ kind: 'runtime-default' }, host(), 'cradle-default', false)).to.equal('cradle-default');
    expect(appArmorProfile({ kind: 'runtime-default' }, host(), 'cradle-default', true)).to.equal('unconfined');
    expect(appArmorProfile({ kind: 'runtime-default' }, host(), 'unconfined', false)).to.equal('unconfined');
    expect(appArmorProfile({ kind: 'unconfined' }, host(), 'cradle-default', false)).to.equal('unconfined');
    expect(appArmorProfile({ kind: 'localhost', profile: 'custom' }, host(), 'cradle-default', false)).to.equal('custom');
    expect(() => appArmorProfile({ kind: 'localhost', profile: 'missing' }, host(), '', false)).to.throw(InvalidArgumentError, '"missing" is not loaded');
    expect(() => appArmorProfile({ kind: 'unset' }, host(), 'not-loaded', false)).to.throw(FailedPreconditionError, 'apparmor_default_profile');
    expect(appArmorProfile({ kind: 'localhost', profile: 'custom' }, host({ appArmor: false }), 'cradle-default', false)).to.equal(undefined);
  });

  it('fills SELinux labels with the container types, and sets none when SELinux is off', () => {
    expect(selinuxLabels({ user: '', role: '', type: '', level: 's0:c1,c2' }, host(), false)).to.deep.equal({
      processLabel: 'system_u:system_r:container_t:s0:c1,c2',
      mountLabel: 'system_u:object_r:container_file_t:s0:c1,c2',
    });
    expect(selinuxLabels({ user: 'u', role: 'r', type: 't', level: '' }, host(), false).processLabel).to.equal('u:r:t:s0');
    expect(selinuxLabels({ user: '', role: '', type: '', level: 's0' }, host(), true).processLabel).to.equal('system_u:system_r:spc_t:s0');
    expect(selinuxLabels({ user: '', role: '', type: '', level: '' }, host(), false)).to.deep.equal({});
    expect(selinuxLabels({ user: '', role: '', type: 'x', level: '' }, host({ selinux: false }), false)).to.deep.equal({});
    expect(() => selinuxLabels({ user: 'a b', role: '', type: '', level: '' }, host(), false)).to.throw(InvalidArgumentError);
  });
});

describe('SELinux relabeling of mounts', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cradle-relabel-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'file'), 'x');
    symlinkSync('/etc/passwd', join(dir, 'link'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('labels every entry below the host path without following links', async () => {
    const labelled: string[] = [];
    await relabelTree(`${dir}/./`, 'L', (p, label) => {
      expect(label).to.equal('L');
      labelled.push(p);
    });
    expect(labelled.sort()).to.deep.equal([dir, join(dir, 'link'), join(dir, 'sub'), join(dir, 'sub', 'file')].sort());
  });

  it('refuses to relabel system directories', async () => {
    for (const p of ['/', '/etc', '/usr/', '/var/../usr']) {
      const err = await relabelTree(p, 'L', () => expect.fail(`labelled under ${p}`)).catch((e: unknown) => e);
      expect(err, p).to.be.instanceOf(InvalidArgumentError);
    }
  });
});
