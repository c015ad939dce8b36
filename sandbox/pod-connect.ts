import { connect as netConnect, Socket } from 'node:net';
import { loadNative } from '../native/index.js';
import type { Pins } from './namespace-pins.js';

/**
 * A TCP connection to `port` on a pod's loopback (port-forward): made
 * inside the pod's network namespace from a socket the addon creates
 * there, or on the host's loopback for host-network pods.
 */
export async function connectInPod(pins: Pins, port: number): Promise<Socket> {
  if (!pins.net) {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
  }
  const fd = await loadNative().connectInNetns(pins.net, port);
  return new Socket({ fd, readable: true, writable: true });
}
