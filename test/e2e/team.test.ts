import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

/** The features working together through the real server: meeting → workflow, peer task → workflow. */
describe('team features together', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer({
      selected_module: { LLM: 'Fake' },
      LLM: { Fake: { type: 'openai', base_url: fake.baseUrl, model_name: 'fake', api_key: 'k', timeout_ms: 5000 } },
      meeting: { disable_tts: true },
      peer: { enabled: true, allow_all: true, peer_task_to_workflow: true },
    });
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  const connect = async (deviceId: string) => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId });
    await dev.hello();
    return dev;
  };

  it("imports a finished meeting's actions and next steps as tasks of the meeting device's group", async () => {
    const dev = await connect('c1:00:00:00:00:01');
    dev.send({ type: 'mode', state: 'start', mode: 'meeting' });
    await dev.next((m) => m.type === 'mode' && m.state === 'start');
    dev.send({
      type: 'meeting',
      phase: 'snippet',
      items: [{ tag: 'a', text: 'We agreed to ship the beta on Friday.' }],
    });
    await dev.next((m) => m.type === 'meeting' && m.status === 'ok');
    fake.chat = {
      chunks: [
        JSON.stringify({
          title: 'Beta planning',
          bullets: ['Ship the beta'],
          decisions: ['Friday'],
          actions: ['Write release notes', 'Tag the build'],
          risks: [],
          nextSteps: ['Collect feedback'],
        }),
      ],
    };
    dev.send({ type: 'meeting', phase: 'finalize' });
    const summary = await dev.next((m) => m.type === 'meeting' && m.phase === 'summary', 10_000);
    const meetingId = String(
      summary.sessionId ?? (await dev.next((m) => m.type === 'meeting' && m.phase === 'finalize')).sessionId,
    );
    const res = await fetch(server.url('/supie/workflow/import-from-meeting'), {
      method: 'POST',
      body: JSON.stringify({ meetingId }),
    });
    const body = (await res.json()) as Json;
    assert.equal(res.status, 200, JSON.stringify(body));
    const list = (await (await fetch(server.url('/supie/workflow?deviceId=c1:00:00:00:00:01'))).json()) as {
      data: { items: { title: string }[] };
    };
    const titles = list.data.items.map((t) => t.title).sort();
    assert.deepEqual(titles, ['Collect feedback', 'Tag the build', 'Write release notes']);
    await dev.close();
  });

  it("a peer task lands in the target's group, owned by the target, and the target's group sees the snapshot", async () => {
    const sender = await connect('d1:00:00:00:00:01');
    const target = await connect('d2:00:00:00:00:02');
    sender.send({
      type: 'peer',
      to: ['D2:00:00:00:00:02'],
      category: 'task',
      payload: { text: 'Please review the PR', normalized: { title: 'Review the PR', priority: 1 } },
    });
    const msg = await target.next((m) => m.type === 'peer' && m.event === 'message', 5000);
    assert.equal(msg.category, 'task');
    const snapshot = await target.next(
      (m) =>
        m.type === 'workflow' &&
        m.event === 'update' &&
        Array.isArray(m.tasks) &&
        (m.tasks as Json[]).some((t) => t.title === 'Review the PR'),
      5000,
    );
    const task = (snapshot.tasks as Json[]).find((t) => t.title === 'Review the PR')!;
    assert.equal(task.priority, 1);
    assert.match(String(task.owner), /d2:00:00:00:00:02/);
    await waitFor(
      async () => {
        const list = (await (await fetch(server.url('/supie/workflow?deviceId=d2:00:00:00:00:02'))).json()) as {
          data: { items: Json[] };
        };
        return list.data.items.some((t) => t.title === 'Review the PR');
      },
      3000,
      'task stored in the target group',
    );
    await Promise.all([sender.close(), target.close()]);
  });
});
