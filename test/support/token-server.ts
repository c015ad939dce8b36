import { createSign, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

/**
 * A minimal Docker token service for tests, run inside a test node:
 * GET /token with Basic credentials, or POST /token with an OAuth2 refresh
 * token, answers a JWT the registry (auth: token) accepts: RS256, signed by
 * the key whose self-signed certificate is the registry's root bundle.
 * Usage: token-server.js <port> <key.pem> <cert.pem> <issuer> <user> <password> <refresh token>
 */
const [port, keyFile, certFile, issuer, user, password, refresh] = process.argv.slice(2) as [string, string, string, string, string, string, string];
const key = readFileSync(keyFile, 'utf8');
const certDer = Buffer.from(
  readFileSync(certFile, 'utf8')
    .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
    .replace(/\s+/g, ''),
  'base64',
);

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

function token(service: string, scope: string): string {
  const access = scope
    .split(' ')
    .filter(Boolean)
    .map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: (actions ?? '').split(',') };
    });
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] }));
  const claims = b64url(
    JSON.stringify({ iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access }),
  );
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key);
  return `${header}.${claims}.${b64url(signature)}`;
}

createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    const service = url.searchParams.get('service') ?? new URLSearchParams(body).get('service') ?? '';
    const scope = url.searchParams.get('scope') ?? new URLSearchParams(body).get('scope') ?? '';
    if (req.method === 'POST') {
      const form = new URLSearchParams(body);
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== refresh) {
        res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token(service, scope) }));
      return;
    }
    const basic = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    if (req.headers.authorization !== basic) {
      res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: token(service, scope) }));
  });
}).listen(Number(port), '127.0.0.1', () => console.log('token server listening'));
