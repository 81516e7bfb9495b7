#!/usr/bin/env node
// s3rver (npm) on ADDRESS:PORT serving DIR, with the test keys instead of its built-in S3RVER/S3RVER.
// Usage: node serve-s3rver.js DIR ADDRESS PORT ACCESS_KEY SECRET_KEY
'use strict';

const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

const [directory, address, port, accessKey, secretKey] = process.argv.slice(2);
if (!secretKey) {
  console.error('usage: serve-s3rver.js DIR ADDRESS PORT ACCESS_KEY SECRET_KEY');
  process.exit(2);
}
DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
DUMMY_ACCOUNT.createKeyPair(accessKey, secretKey);

new S3rver({ directory, address, port: Number(port), silent: false, vhostBuckets: false })
  .run()
  .then(where => console.log(`s3rver ${require('s3rver/package.json').version} on ${where.address}:${where.port}`))
  .catch(err => { console.error(err); process.exit(1); });
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
