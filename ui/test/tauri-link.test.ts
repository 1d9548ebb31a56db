// The desktop link's bookkeeping of who is here, fed the engine's events as confab-core sends
// them around reconnects: nobody is lost, nobody's media forgotten.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EngineEvent } from "../src/gen/api";
import type { LinkEvent, Participant } from "../src/link/meeting-link";
import { TauriLink } from "../src/link/tauri-link";

const ADA = "AAAAAAAAAAAAAAAAAAAAAA";

/** A link fed `events`; answers the participants as last reported. */
function participantsAfter(events: EngineEvent[]): Participant[] {
  const link = new TauriLink("https://example.org/m/room#k=key", "Me", async () => null);
  let participants: Participant[] = [];
  link.subscribe((event: LinkEvent) => {
    if (event.type === "participants") participants = event.participants;
  });
  for (const event of events) link["onEngineEvent"](event);
  return participants;
}

const joined: EngineEvent = { event: "peer_joined", id: ADA, name: "Ada", client: "browser" };
const connected: EngineEvent = { event: "peer_connected", id: ADA, name: "Ada" };
const camera: EngineEvent = { event: "media", id: ADA, mic: true, cam: true, screen: false };

test("after our own reconnect, a peer still connected stays connected with its media", () => {
  const [ada] = participantsAfter([joined, connected, camera, joined]);
  assert.equal(ada?.status, "connected");
  assert.deepEqual(ada?.media, { mic: true, cam: true, screen: false });
  assert.equal(ada?.client, "browser");
});

test("a peer that connects again after failing is back in the list", () => {
  const failed: EngineEvent = { event: "peer_failed", id: ADA, reason: "ICE failed" };
  assert.deepEqual(participantsAfter([joined, connected, failed]), []);
  const [ada] = participantsAfter([joined, connected, failed, connected]);
  assert.equal(ada?.status, "connected");
  assert.equal(ada?.client, "browser", "remembered from signaling's announcement");
});

test("a peer that left is gone", () => {
  assert.deepEqual(participantsAfter([joined, connected, { event: "peer_left", id: ADA }]), []);
});
