// Drives the System API of a live Headcount server with the unmodified @mux/mux-node SDK.
//
// Configuration comes the SDK's own way, from its documented environment variables:
// MUX_BASE_URL, MUX_TOKEN_ID, MUX_TOKEN_SECRET. Argument: how many keys to create (default 5).
// Prints one JSON document with what the SDK returned, for the Python test to check.
import Mux from '@mux/mux-node';

const created = Number(process.argv[2] ?? '5');
const PAGE_LIMIT = 2;
const RUNAWAY = 1000; // a server that never sends an empty page would loop forever

// maxRetries 0: a retried request would hide a wrong status from the test.
const mux = new Mux({ maxRetries: 0 });

function describe(err) {
  return { name: err.constructor.name, status: err.status ?? null, error: err.error ?? null };
}

async function expectError(promise) {
  try {
    await promise;
  } catch (err) {
    return describe(err);
  }
  return { name: 'no error', status: null, error: null };
}

const keys = [];
for (let i = 0; i < created; i += 1) {
  keys.push(await mux.system.signingKeys.create());
}

const listed = [];
for await (const key of mux.system.signingKeys.list({ limit: PAGE_LIMIT })) {
  listed.push(key);
  if (listed.length > RUNAWAY) throw new Error('list never ended');
}

const retrieved = await mux.system.signingKeys.retrieve(keys[0].id);
const deleteResult = await mux.system.signingKeys.delete(keys[0].id);
const afterDelete = await expectError(mux.system.signingKeys.retrieve(keys[0].id));
const deleteAgain = await expectError(mux.system.signingKeys.delete(keys[0].id));
const listedAfterDelete = [];
for await (const key of mux.system.signingKeys.list({ limit: PAGE_LIMIT })) {
  listedAfterDelete.push(key.id);
  if (listedAfterDelete.length > RUNAWAY) throw new Error('list never ended');
}

// The private key the API returned, used as-is by mux-node's own signer.
const token = await mux.jwt.signViewerCounts('video-from-node', {
  type: 'video',
  keyId: keys[1].id,
  keySecret: keys[1].private_key,
});

const wrongSecret = new Mux({ maxRetries: 0, tokenSecret: 'not-the-secret' });
const unauthorized = await expectError(wrongSecret.system.signingKeys.list());

// mux-node's other credential: an authorization token, sent as `Authorization: Bearer`.
const bearer = new Mux({
  maxRetries: 0,
  tokenId: null,
  tokenSecret: null,
  authorizationToken: `${process.env.MUX_TOKEN_ID}.${process.env.MUX_TOKEN_SECRET}`,
});
const bearerPage = await bearer.system.signingKeys.list({ limit: 1 });

// What Mux's CLI asks in `mux login` and before `signing-keys create`.
const whoami = await mux.system.utilities.whoami();

console.log(
  JSON.stringify({
    created: keys,
    listed,
    retrieved,
    deleteResult: deleteResult ?? null,
    afterDelete,
    deleteAgain,
    listedAfterDelete,
    token,
    unauthorized,
    bearerPage: bearerPage.data,
    whoami,
  }),
);
