// Reads Headcount's Monitoring API subset with the unmodified @mux/mux-node SDK
// (client.data.monitoring). Configuration from MUX_BASE_URL, MUX_TOKEN_ID, MUX_TOKEN_SECRET;
// argument: the video_id to filter the timeseries by. Prints one JSON document.
import Mux from '@mux/mux-node';

const mux = new Mux({ maxRetries: 0 });
const video = process.argv[2];
const metric = 'current-concurrent-viewers';

async function outcome(promise) {
  try {
    return { ok: await promise };
  } catch (err) {
    return { name: err.constructor.name, status: err.status ?? null, error: err.error ?? null };
  }
}

const result = {
  metrics: await mux.data.monitoring.metrics.list(),
  dimensions: await mux.data.monitoring.listDimensions(),
  timeseries: await mux.data.monitoring.metrics.getTimeseries(metric),
  filtered: await mux.data.monitoring.metrics.getTimeseries(metric, {
    filters: [`video_id:${video}`],
  }),
  breakdown: await mux.data.monitoring.metrics.getBreakdown(metric, { dimension: 'video_id' }),
  breakdownTimeseries: await mux.data.monitoring.metrics.getBreakdownTimeseries(metric, {
    dimension: 'video_id',
    limit: 5,
  }),
  unserved: await outcome(mux.data.monitoring.metrics.getTimeseries('current-rebuffering-percentage')),
};
console.log(JSON.stringify(result));
