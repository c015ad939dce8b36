import { createConnection, createServer } from 'node:net';

/**
 * A TCP proxy that passes the upstream's answers on at a bounded rate, so a
 * pull from a loopback registry lasts long enough to be watched. Run in a
 * test node: node slow-proxy.js LISTEN_PORT TARGET_PORT BYTES_PER_SECOND.
 * Prints "listening" once it accepts connections.
 */
const [listenPort, targetPort, rate] = process.argv.slice(2).map(Number) as [number, number, number];

createServer((client) => {
  const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
  client.pipe(upstream);
  upstream.on('data', (chunk: Buffer) => {
    upstream.pause();
    client.write(chunk);
    setTimeout(() => upstream.resume(), (chunk.length / rate) * 1000);
  });
  upstream.on('end', () => client.end());
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
}).listen(listenPort, '127.0.0.1', () => process.stdout.write('listening\n'));
