// Signs viewer-count tokens with the real @mux/mux-node SDK, for the token-style tests.
// stdin: a JSON list of jobs {id, type, keyId, keySecret, expiration?};
// stdout: a JSON list of tokens, one per job, in order.
import Mux from '@mux/mux-node';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const jobs = JSON.parse(Buffer.concat(chunks).toString('utf8'));

// signViewerCounts needs no API credentials; the constructor only wants some to exist.
const mux = new Mux({ tokenId: 'unused', tokenSecret: 'unused' });
const tokens = [];
for (const job of jobs) {
  const options = { type: job.type, keyId: job.keyId, keySecret: job.keySecret };
  if (job.expiration !== undefined) options.expiration = job.expiration;
  tokens.push(await mux.jwt.signViewerCounts(job.id, options));
}
process.stdout.write(JSON.stringify(tokens));
