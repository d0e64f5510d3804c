import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { creditsSettingsFromEnvironment } from '../../lambda/credits/server';
import {
  cutRequestsSettleMillisecondsMax,
  drainMillisecondsMaxDefault,
} from '../../runtime/node-server';
import {
  checkPortsFree,
  localTopologyEnvironment,
  portsInUse,
  signalGroup,
  repoRoot,
  stopGraceMilliseconds,
  type LocalService,
  startLocalService,
  stopLocalServices,
  waitUntilHealthy,
} from '../../scripts/local-services';

/** Local topologies (npm run dev, the benchmarks) side by side, and a service that fails to start. */

const common = {
  dataFile: '/tmp/unused.tbj',
  gatewayToken: 'token',
  adminKey: 'admin',
  proxyKey: 'proxy',
  logLevel: 'WARN',
};

describe('local topologies', () => {
  it('put the /metrics listeners on ephemeral ports unless asked otherwise, so two topologies never collide', () => {
    const dev = localTopologyEnvironment({
      ...common,
      gatewayPort: 7300,
      creditsPort: 7200,
      proxyPort: 7100,
      metricsPortOffset: 90,
    });
    const bench = localTopologyEnvironment({ ...common, gatewayPort: 7310, creditsPort: 7210 });
    expect(dev.credits.CREDITS_METRICS_PORT).toBe('7290');
    expect(dev.proxy.PROXY_METRICS_PORT).toBe('7190');
    // Before: the benchmark's credits metrics took 7210 + 90 = 7300, the dev gateway's port.
    expect(bench.credits.CREDITS_METRICS_PORT).toBe('0');
    expect(bench.proxy.PROXY_METRICS_PORT).toBe('0');
  });

  it("keeps the proxy's pending settlements beside the ledger's data file (one data directory per topology)", () => {
    const environment = localTopologyEnvironment({
      ...common,
      dataFile: '/tmp/topology-a/ledger.tbj',
      gatewayPort: 1,
      creditsPort: 2,
    });
    expect(environment.proxy.SETTLEMENT_FILE).toBe('/tmp/topology-a/settlements.jsonl');
  });

  it('run the proxy and the credits service as stage dev, whatever STAGE the shell exports', () => {
    const environment = localTopologyEnvironment({
      ...common,
      gatewayToken: 'a gateway token of 32 characters or more',
      gatewayPort: 1,
      creditsPort: 2,
    });
    // As startLocalService merges them: the shell's environment, then the topology's.
    const shell = { ...process.env, STAGE: 'production' };
    expect(
      creditsSettingsFromEnvironment({ ...shell, ...environment.credits }).settings?.stage,
    ).toBe('dev');
    expect({ ...shell, ...environment.proxy }.STAGE).toBe('dev');
  });

  it('logs the internal hops at their own level (npm run dev: only the proxy logs each client request)', () => {
    const environment = localTopologyEnvironment({
      ...common,
      gatewayPort: 1,
      creditsPort: 2,
      logLevel: 'INFO',
      internalLogLevel: 'WARN',
    });
    expect([
      environment.proxy.LOG_LEVEL,
      environment.credits.LOG_LEVEL,
      environment.gateway.LOG_LEVEL,
    ]).toEqual(['INFO', 'WARN', 'WARN']);
  });

  it("a service that fails to start is reported with its own error, not only 'did not become healthy'", async () => {
    // The credits service refuses to start without its configuration, and says why.
    const service = startLocalService('credits', 'lambda/credits/server.ts', {}, { quiet: true });
    try {
      await expect(
        waitUntilHealthy('credits', 'http://127.0.0.1:9/api/v1/ready', service),
      ).rejects.toThrow(
        /credits exited \(1\) before it became healthy; its last output:\n(.|\n)*refusing to start/,
      );
    } finally {
      await stopLocalServices([service]);
    }
  }, 60_000);

  it('a service whose output is shown (not quiet) has its error printed once: the failure points to it', async () => {
    const shown: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line: string) => shown.push(line));
    const service = startLocalService('credits', 'lambda/credits/server.ts', {});
    try {
      const failure = await waitUntilHealthy(
        'credits',
        'http://127.0.0.1:9/api/v1/ready',
        service,
      ).then(
        () => 'healthy',
        (error: Error) => error.message,
      );
      expect(failure).toBe('credits exited (1) before it became healthy; its output is above');
      expect(shown.filter((line) => line.includes('refusing to start'))).toEqual([
        '[credits] credits: refusing to start:',
      ]);
    } finally {
      log.mockRestore();
      await stopLocalServices([service]);
    }
  }, 60_000);

  it('stop the last started first, one at a time, and kill one that outlives its grace period', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'local-services-'));
    const script = (name: string, body: string) => {
      writeFileSync(join(directory, name), body);
      return join(directory, name);
    };
    // The one started first stops on SIGTERM; the last ignores it (a drain that never ends).
    const polite = startLocalService(
      'polite',
      script('polite.ts', "console.log('ready');\nsetInterval(() => undefined, 60_000);\n"),
      {},
      { quiet: true },
    );
    const stubborn = startLocalService(
      'stubborn',
      script(
        'stubborn.ts',
        "process.on('SIGTERM', () => undefined);\nconsole.log('ready');\nsetInterval(() => undefined, 60_000);\n",
      ),
      {},
      { quiet: true },
    );
    const services = [polite, stubborn];
    const exits: string[] = [];
    for (const service of services) service.process.once('exit', () => exits.push(service.name));
    const ready = (service: LocalService) =>
      new Promise<void>((resolve) => {
        const check = (chunk: string) => {
          if (chunk.includes('ready')) resolve();
        };
        service.process.stdout?.on('data', check);
      });
    try {
      await Promise.all(services.map(ready));
      await stopLocalServices(services, 500);
      expect(exits).toEqual(['stubborn', 'polite']);
      expect(stubborn.process.signalCode).toBe('SIGKILL');
      expect(polite.process.signalCode).not.toBe('SIGKILL');
    } finally {
      for (const service of services) service.process.kill('SIGKILL');
      rmSync(directory, { recursive: true, force: true });
    }
  }, 60_000);

  it('give each service longer than its own drain bound and the settling of what it cut before it is killed', () => {
    expect(stopGraceMilliseconds).toBeGreaterThan(
      drainMillisecondsMaxDefault + cutRequestsSettleMillisecondsMax,
    );
  });

  it('a supervisor killed with SIGKILL (no exit handler runs) still stops its services: their stdin pipe ends', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'local-services-'));
    // The service: a real server with the services' shutdown, reporting to the test over a socket
    // that closes when its process is gone (its stdout goes to the supervisor, which will be dead).
    writeFileSync(
      join(directory, 'service.ts'),
      `import { connect } from 'node:net';
import { shutDownOnSignals, startServer } from ${JSON.stringify(join(repoRoot, 'runtime/node-server'))};
import { createLogger } from ${JSON.stringify(join(repoRoot, 'runtime/logger'))};
async function main() {
  const server = await startServer({ fetch: () => new Response('ok'), hostname: '127.0.0.1', port: 0 });
  const report = connect(Number(process.env.REPORT_PORT), '127.0.0.1');
  const release = () => new Promise<void>((resolve) => report.write('released\\n', () => resolve()));
  shutDownOnSignals({ server, logger: createLogger('test', 'INFO'), name: 'test service', release });
  report.write(JSON.stringify({ port: server.port, group: process.ppid }) + '\\n');
}
void main();
`,
    );
    // The supervisor: one Node process (tsx as a loader, no wrapper) starting the service through tsx.
    writeFileSync(
      join(directory, 'supervisor.ts'),
      `import { startLocalService } from ${JSON.stringify(join(repoRoot, 'scripts/local-services'))};
startLocalService('service', ${JSON.stringify(join(directory, 'service.ts'))}, { REPORT_PORT: process.env.REPORT_PORT ?? '' }, { quiet: true });
setInterval(() => undefined, 60_000);
`,
    );
    const reports = createServer();
    const connected = new Promise<Socket>((resolve) => reports.once('connection', resolve));
    await new Promise<void>((resolve) => reports.listen(0, '127.0.0.1', resolve));
    const supervisor = spawn(
      process.execPath,
      ['--import', 'tsx', join(directory, 'supervisor.ts')],
      {
        cwd: repoRoot,
        env: { ...process.env, REPORT_PORT: String((reports.address() as { port: number }).port) },
        stdio: 'ignore',
      },
    );
    let group: number | undefined;
    try {
      const report = await connected;
      const gone = new Promise<void>((resolve) => report.once('close', () => resolve()));
      let text = '';
      const first = new Promise<string>((resolve) => {
        report.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
          if (text.includes('\n')) resolve(text.split('\n')[0]);
        });
      });
      const reported = JSON.parse(await first) as { port: number; group: number };
      group = reported.group;
      expect(await portsInUse([reported.port])).toEqual([reported.port]);
      supervisor.kill('SIGKILL');
      // Bounded, so that a service left running fails the test instead of hanging it.
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        gone.then(() => true),
        new Promise<boolean>(
          (resolve) => (timer = setTimeout(resolve, stopGraceMilliseconds, false)),
        ),
      ]);
      clearTimeout(timer);
      expect(stopped).toBe(true);
      expect(text).toContain('\nreleased\n'); // stopped as on SIGTERM (drained, released), not killed
      expect(await portsInUse([reported.port])).toEqual([]);
    } finally {
      supervisor.kill('SIGKILL');
      try {
        if (group !== undefined) process.kill(-group, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
      await new Promise((resolve) => reports.close(resolve));
      rmSync(directory, { recursive: true, force: true });
    }
  }, 60_000);

  it('a health check against a listener that accepts and closes (no answer ever) times out, so a service that exits is reported', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'local-services-'));
    writeFileSync(
      join(directory, 'waits.ts'),
      "console.log('cannot listen: the port is taken');\nsetInterval(() => undefined, 60_000);\n",
    );
    const service = startLocalService('waits', join(directory, 'waits.ts'), {}, { quiet: true });
    // Node's fetch to such a listener never settles; the service (once it said why) exits while
    // one hangs.
    const silent = createServer((connection) => {
      connection.destroy();
      if (service.recentOutput.length > 0) service.process.kill('SIGKILL');
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}/ready`;
    let timer: NodeJS.Timeout | undefined;
    try {
      const outcome = await Promise.race([
        waitUntilHealthy('waits', url, service).then(
          () => 'healthy',
          (error: Error) => error.message,
        ),
        // Bounded, so that a health check that hangs fails the test instead of hanging it.
        new Promise<string>((resolve) => (timer = setTimeout(resolve, 20_000, 'still waiting'))),
      ]);
      expect(outcome).toMatch(/^waits exited \(SIGKILL\) before it became healthy/);
      expect(outcome).toContain('cannot listen: the port is taken');
    } finally {
      clearTimeout(timer);
      signalGroup(service, 'SIGKILL');
      await new Promise((resolve) => silent.close(resolve));
      rmSync(directory, { recursive: true, force: true });
    }
  }, 60_000);

  it('a slow start is said to be one, with what the service is doing (no silent wait)', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'local-services-'));
    writeFileSync(join(directory, 'slow.ts'), 'setInterval(() => undefined, 60_000);\n');
    const service = startLocalService('slow', join(directory, 'slow.ts'), {}, { quiet: true });
    const notices: string[] = [];
    try {
      const failure = await waitUntilHealthy('gateway', 'http://127.0.0.1:9/ready', service, {
        whileWaiting: () => 'opening the ledger (journal 625 MiB, snapshot beside it)',
        noticeAfterMilliseconds: 0,
        notice: (line) => {
          notices.push(line);
          service.process.kill('SIGKILL'); // the notice came: end the wait
        },
      }).catch((error: Error) => error.message);
      expect(notices).toEqual([
        expect.stringMatching(
          /^gateway is still starting after \d+ s: opening the ledger \(journal 625 MiB, snapshot beside it\) \(it may take up to 30 s\)$/,
        ),
      ]);
      expect(failure).toMatch(/^gateway exited \(SIGKILL\) before it became healthy/);
    } finally {
      signalGroup(service, 'SIGKILL');
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('refuse to start over a port something holds, naming the port and the hint', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      await expect(checkPortsFree([port], 'is another benchmark running?')).rejects.toThrow(
        `port ${port} already in use on 127.0.0.1: is another benchmark running? Find it with: ss -ltnp 'sport = :${port}'`,
      );
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
