// `tessera chain --subtensor ws://… --netuid N [--key FILE | --address SS58] [--json]`: a
// contributor's registration, incentive and emission on a Bittensor subnet, read through
// @polkadot/api. Read-only: nothing is signed or sent.
import { CommandUsageError, parseCommandArgs } from './args.ts';
import { ChainConfigError, parseChainOptions } from '../coordinator/chain-weights.ts';
import { ChainError, connectSubtensor, type NeuronStanding } from '../coordinator/chain.ts';
import { cryptoReady, isValidAddress } from '../wallet/keys.ts';
import { keyFileAddress, ownKeyFile } from '../node/hotkey-file.ts';
import { DEFAULT_WALLET_FILE } from '../node/wallet-file.ts';

export const CHAIN_USAGE = `usage:
  tessera chain --subtensor ws://NODE:9944 --netuid N [--key FILE | --address SS58] [--json]
  Shows whether your hotkey is registered on the subnet, its uid, incentive and last emission.
  --key: your hotkey file (default: your wallet, ${DEFAULT_WALLET_FILE}, whose address needs no
  password); --address: any ss58 hotkey address.`;

/** Rao per token: the chain counts in 1e-9 of the subnet token. */
const RAO = 1_000_000_000n;

export function formatNeuron(n: NeuronStanding): string {
  if (!n.registered) return `${n.hotkey} is not registered on netuid ${n.netuid}: register it (btcli subnet register --netuid ${n.netuid}) to earn on chain`;
  const whole = n.emission / RAO;
  const frac = (n.emission % RAO).toString().padStart(9, '0');
  return `${n.hotkey} on netuid ${n.netuid}: uid ${n.uid}, incentive ${(100 * n.incentive).toFixed(2)}%, emission ${whole}.${frac} (last epoch, subnet token)`;
}

export async function chainCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args,
    options: {
      subtensor: { type: 'string' },
      netuid: { type: 'string' },
      key: { type: 'string' },
      address: { type: 'string' },
      'password-file': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }, (m) => new CommandUsageError('chain', m, CHAIN_USAGE));
  if (values.help) {
    console.log(CHAIN_USAGE);
    return 0;
  }
  try {
    const options = parseChainOptions({ subtensor: values.subtensor, netuid: values.netuid });
    if (!options) throw new ChainConfigError('--subtensor', 'and --netuid say which chain and subnet to read');
    if (values.key !== undefined && values.address !== undefined) throw new ChainConfigError('--address', 'goes instead of --key, not with it');
    if (values.address !== undefined && !isValidAddress(values.address)) throw new ChainConfigError('--address', `must be an ss58 address (prefix 42), got '${values.address}'`);
    await cryptoReady();
    const hotkey = values.address ?? keyFileAddress(ownKeyFile({ key: values.key }));
    const { chain, disconnect } = await connectSubtensor(options, null);
    try {
      const neuron = await chain.neuron(hotkey);
      console.log(values.json ? JSON.stringify(neuron, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) : formatNeuron(neuron));
    } finally {
      await disconnect();
    }
    return 0;
  } catch (e) {
    if (e instanceof ChainConfigError) {
      console.error(`tessera ${e.message}\n\n${CHAIN_USAGE}`);
      return 2;
    }
    if (e instanceof ChainError) {
      console.error(`tessera chain: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
