// Real gRPC clients against Sightline's OTLP/gRPC receiver, driven by
// tests/integration/test_grpc.py. Prints one JSON object per line.
//
//   node client.mjs sdk PORT TENANT N COMPRESSION
//       exports N traces of 3 spans with the OpenTelemetry JS SDK's gRPC
//       exporter (x-scope-orgid = TENANT; COMPRESSION none or gzip) and
//       prints {"trace_ids": [...], "result": code}
//   node client.mjs raw PORT PATH FILE [key=value metadata...]
//       one unary call whose request bytes are FILE's (or "big:N" for N
//       zero bytes, "none" for an empty message) and prints
//       {"code": grpc status, "details": message, "response": hex,
//        "retry_info": bool}
//   node client.mjs flood PORT PATH FILE K
//       K concurrent unary calls of FILE's bytes on one channel; prints
//       {"codes": {code: count}, "unavailable_with_retry_info": count}
import grpc from '@grpc/grpc-js';
import fs from 'node:fs';

const [mode, port, ...rest] = process.argv.slice(2);
const target = `127.0.0.1:${port}`;

// TLS when SL_GRPC_CA names the server's CA; a client certificate for mutual
// TLS from SL_GRPC_CLIENT_CERT and SL_GRPC_CLIENT_KEY.
function credentials() {
  const ca = process.env.SL_GRPC_CA;
  if (!ca) {
    return grpc.credentials.createInsecure();
  }
  const key = process.env.SL_GRPC_CLIENT_KEY;
  const cert = process.env.SL_GRPC_CLIENT_CERT;
  return grpc.credentials.createSsl(fs.readFileSync(ca), key ? fs.readFileSync(key) : null,
    cert ? fs.readFileSync(cert) : null);
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function sdk(tenant, n, compression) {
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
  const { BasicTracerProvider, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const api = await import('@opentelemetry/api');
  const metadata = new grpc.Metadata();
  metadata.set('x-scope-orgid', tenant);
  const exporter = new OTLPTraceExporter({
    url: `${process.env.SL_GRPC_CA ? 'https' : 'http'}://${target}`,
    credentials: credentials(),
    metadata,
    compression: compression === 'gzip' ? 'gzip' : 'none',
  });
  const results = [];
  const wrapped = {
    export(spans, done) {
      exporter.export(spans, (r) => {
        results.push(r.code);
        done(r);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush(),
  };
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'grpc-js-client' }),
    spanProcessors: [new SimpleSpanProcessor(wrapped)],
  });
  const tracer = provider.getTracer('sightline-grpc-test', '1.0.0');
  const ids = [];
  for (let i = 0; i < n; i++) {
    const root = tracer.startSpan(`grpc-root-${i}`, { kind: api.SpanKind.SERVER });
    const ctx = api.trace.setSpan(api.context.active(), root);
    const child = tracer.startSpan('grpc-child', { attributes: { 'test.index': i } }, ctx);
    const grandchild = tracer.startSpan('grpc-grandchild', {}, api.trace.setSpan(ctx, child));
    grandchild.end();
    child.end();
    root.end();
    ids.push(root.spanContext().traceId);
  }
  await provider.forceFlush();
  await provider.shutdown();
  out({ trace_ids: ids, results });
}

function raw(path, file, meta) {
  const client = new grpc.Client(target, credentials(), {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  let body;
  if (file.startsWith('big:')) {
    body = Buffer.alloc(Number(file.slice(4)));
  } else if (file === 'none') {
    body = Buffer.alloc(0);
  } else {
    body = fs.readFileSync(file);
  }
  const md = new grpc.Metadata();
  for (const kv of meta) {
    const i = kv.indexOf('=');
    md.set(kv.slice(0, i), kv.slice(i + 1));
  }
  const deadline = new Date(Date.now() + 20000);
  client.makeUnaryRequest(path, (b) => b, (b) => b, body, md, { deadline }, (err, resp) => {
    if (err) {
      const details = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
      const retry = details.length > 0 &&
        Buffer.from(details[0]).toString('latin1').includes('google.rpc.RetryInfo');
      out({ code: err.code, details: err.details, retry_info: retry });
    } else {
      out({ code: 0, response: Buffer.from(resp).toString('hex') });
    }
    client.close();
  });
}

function flood(path, file, k) {
  const client = new grpc.Client(target, credentials());
  const body = fs.readFileSync(file);
  const codes = {};
  let retry = 0;
  let left = k;
  const deadline = new Date(Date.now() + 30000);
  for (let i = 0; i < k; i++) {
    client.makeUnaryRequest(path, (b) => b, (b) => b, body, new grpc.Metadata(), { deadline },
      (err) => {
        const code = err ? err.code : 0;
        codes[code] = (codes[code] || 0) + 1;
        if (err && code === 14) {
          const d = err.metadata.get('grpc-status-details-bin');
          if (d.length > 0 && Buffer.from(d[0]).toString('latin1').includes('RetryInfo')) {
            retry++;
          }
        }
        if (--left === 0) {
          out({ codes, unavailable_with_retry_info: retry });
          client.close();
        }
      });
  }
}

if (mode === 'flood') {
  flood(rest[0], rest[1], Number(rest[2]));
} else if (mode === 'sdk') {
  await sdk(rest[0], Number(rest[1]), rest[2]);
} else if (mode === 'raw') {
  raw(rest[0], rest[1], rest.slice(2));
} else {
  console.error('usage: client.mjs sdk|raw PORT ...');
  process.exit(2);
}
