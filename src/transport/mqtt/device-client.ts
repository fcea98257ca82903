import { connect, type MqttClient } from 'mqtt';

/** The OTA `mqtt` block, as the firmware stores it and connects with. */
export interface MqttSettings {
  endpoint: string;
  client_id: string;
  username: string;
  password: string;
  publish_topic: string;
  /** Stored by the firmware, never subscribed to; where the server's messages go. */
  subscribe_topic?: string;
}

/**
 * Connects the way the firmware does with its OTA settings (MQTT 3.1.1, keepalive 240 s, no reconnect: the device
 * reconnects on its next interaction). For `linus simulate` and test devices; rejects with the broker's refusal.
 */
export function connectLikeFirmware(settings: MqttSettings): Promise<MqttClient> {
  const client = connect(`mqtt://${settings.endpoint}`, {
    clientId: settings.client_id,
    username: settings.username,
    password: settings.password,
    keepalive: 240,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}
