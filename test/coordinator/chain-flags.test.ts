// The coordinator's chain flags: off unless given, each missing or malformed one named, the
// validator's hotkey loaded from its file, and no chain without the validator.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChainConfigError } from '../../src/coordinator/chain-weights.ts';
import { chainSettings, readRunFile, startCoordinator } from '../../src/cli/coordinator-command.ts';
import { Hotkey, WalletError, cryptoReady } from '../../src/wallet/keys.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
beforeAll(cryptoReady);
afterEach(removeTempDirs);

const fieldOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof ChainConfigError) return e.field;
    throw e;
  }
  return null;
};

describe('coordinator chain flags', () => {
  it('are off without --subtensor/--netuid', () => {
    expect(chainSettings({})).toBeNull();
  });

  it("load the validator's hotkey with the endpoint and netuid", () => {
    const file = join(tempDir(), 'validator-hotkey');
    writeFileSync(file, `${DEV}//Alice\n`, { mode: 0o600 });
    const settings = chainSettings({ subtensor: 'ws://127.0.0.1:9944', netuid: '3', hotkey: file })!;
    expect(settings).toMatchObject({ endpoint: 'ws://127.0.0.1:9944', netuid: 3, versionKey: undefined });
    expect(settings.hotkey.address).toBe(Hotkey.fromMnemonic(DEV, '//Alice').address);
  });

  it('name the flag that is missing or does not fit', () => {
    expect(fieldOf(() => chainSettings({ subtensor: 'ws://127.0.0.1:9944', netuid: '3' }))).toBe('--hotkey');
    expect(fieldOf(() => chainSettings({ hotkey: 'some-file' }))).toBe('--hotkey');
    expect(fieldOf(() => chainSettings({ subtensor: 'ws://127.0.0.1:9944', hotkey: 'some-file' }))).toBe('--netuid');
    expect(() => chainSettings({ subtensor: 'ws://127.0.0.1:9944', netuid: '3', hotkey: join(tempDir(), 'absent') })).toThrow(WalletError);
  });

  it('refuse a chain on a coordinator that does not validate', async () => {
    const hotkey = Hotkey.fromMnemonic(DEV, '//Alice');
    await expect(startCoordinator(readRunFile(undefined), { port: 0, log: () => undefined, validate: false, chain: { endpoint: 'ws://127.0.0.1:9', netuid: 3, hotkey } }))
      .rejects.toThrow(/'--subtensor' sets weights from the validator's scores, so it cannot go with --no-validate/);
  });
});

describe('tessera chain output', () => {
  it('shows registration, incentive and emission (rao → token with 9 decimals)', async () => {
    const { formatNeuron } = await import('../../src/cli/chain-command.ts');
    const hotkey = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
    expect(formatNeuron({ registered: true, netuid: 3, hotkey, uid: 12, incentive: 0.123456, emission: 1_500_000_001n }))
      .toBe(`${hotkey} on netuid 3: uid 12, incentive 12.35%, emission 1.500000001 (last epoch, subnet token)`);
    expect(formatNeuron({ registered: false, netuid: 3, hotkey })).toMatch(/is not registered on netuid 3: register it \(btcli subnet register --netuid 3\)/);
  });
});
