import type { ConfigStore } from '../../config/store.js';
import type { Metrics } from '../../observability/metrics.js';
import { secretEquals } from '../../protocol/auth-token.js';
import type { ActivationStore } from '../../store/activation.js';
import { addressMatcher } from '../../config/cidr.js';
import { activationPasses } from '../device-auth.js';
import { HttpError, readJson, sendJson } from '../http-util.js';
import type { HttpRoutes, RouteHandler } from '../http-app.js';
import { verifyMqttLogin } from './credentials.js';
import { brokerTopics, mqttSigningKey } from './ota.js';

export const BROKER_AUTH_PATH = '/mqtt/auth';
export const BROKER_ACL_PATH = '/mqtt/acl';

type Body = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
/** The broker's JSON body; anything else (null, an array, a number) has no fields and is denied. */
const fieldsOf = (body: unknown): Body =>
  body && typeof body === 'object' && !Array.isArray(body) ? (body as Body) : {};

/**
 * HTTP authentication and authorization for an external broker (EMQX's HTTP authenticator and authorizer), so that
 * devices log in there with the credentials OTA issued and reach only their own topics:
 *   POST /mqtt/auth {clientid, username, password}         → {"result": "allow" | "deny"}
 *   POST /mqtt/acl  {clientid, username, topic, action}    → {"result": "allow" | "deny"}
 * Linus's own connection (the user and password of `server.mqtt.broker_url`) is allowed everything. Registered
 * only with `server.mqtt.broker_url` set, and answered only to `server.mqtt.broker_auth_allow` (default loopback):
 * the answers tell which credentials log in.
 */
export function registerBrokerAuthRoutes(
  router: HttpRoutes,
  deps: { config: ConfigStore; activations: ActivationStore; authKey: string; metrics: Metrics },
): void {
  // Read at start, as the broker connection is.
  const url = new URL(deps.config.current.server.mqtt.broker_url);
  const linusUser = decodeURIComponent(url.username);
  const linusPassword = decodeURIComponent(url.password);
  /** Whether these credentials are Linus's own, from the broker URL (a URL without a password has none). */
  const isLinus = (username: string, password: string): boolean =>
    linusPassword !== '' && secretEquals(linusUser, username) && secretEquals(linusPassword, password);
  const answer = (res: Parameters<typeof sendJson>[0], allow: boolean, extra: Body = {}): void =>
    sendJson(res, 200, { result: allow ? 'allow' : 'deny', ...extra });
  // Followed on reload: the matcher is rebuilt when the list changes.
  let allowed = { list: [] as readonly string[], match: addressMatcher([]) };
  const fromBroker =
    (handler: RouteHandler): RouteHandler =>
    (req, res, params, url) => {
      const list = deps.config.current.server.mqtt.broker_auth_allow;
      if (allowed.list !== list) allowed = { list, match: addressMatcher(list) };
      if (!allowed.match(req.socket.remoteAddress))
        throw new HttpError(403, 'this address may not ask: add it to server.mqtt.broker_auth_allow');
      return handler(req, res, params, url);
    };

  router.add(
    'POST',
    BROKER_AUTH_PATH,
    fromBroker(async (req, res) => {
      const body = fieldsOf(await readJson(req));
      const [clientId, username, password] = [str(body.clientid), str(body.username), str(body.password)];
      if (isLinus(username, password)) return answer(res, true, { is_superuser: true });
      const config = deps.config.current;
      const login = verifyMqttLogin(mqttSigningKey(config, deps.authKey), clientId, username, password);
      if (!login.ok) {
        deps.metrics.rejectedUpgrades.labels('auth').inc();
        return answer(res, false);
      }
      const refused = deps.metrics.rejectedUpgrades.labels('not_activated');
      if (!(await activationPasses(config, deps.activations, login.deviceId, refused))) return answer(res, false);
      answer(res, true, { is_superuser: false });
    }),
  );

  router.add(
    'POST',
    BROKER_ACL_PATH,
    fromBroker(async (req, res) => {
      const body = fieldsOf(await readJson(req));
      const [clientId, username, topic, action] = [
        str(body.clientid),
        str(body.username),
        str(body.topic),
        str(body.action),
      ];
      // Linus's own client is a superuser at login; a broker that still asks gets its user name matched.
      if (linusUser !== '' && username === linusUser) return answer(res, true);
      const own = brokerTopics(deps.config.current.server.mqtt.topic_prefix, clientId);
      answer(
        res,
        clientId !== '' &&
          ((action === 'publish' && topic === own.publish_topic) ||
            (action === 'subscribe' && topic === own.subscribe_topic)),
      );
    }),
  );
}
