// The mesh's decisions, as plain functions: what BrowserLink does with a connection when
// signaling or the connection itself says something. confab-core decides the same way.
import type { PeerId, SignalData } from "../gen/protocol";

/** After we rejoin signaling: verified connections stay and learn our new id (re-keyed);
 * half-made ones are closed, as their negotiation ran under our old id and cannot finish. The
 * peers still in the room get a fresh offer from us. */
export function onRejoin(connections: Iterable<[PeerId, { verified: boolean }]>): { rekey: PeerId[]; close: PeerId[] } {
  const plan = { rekey: [] as PeerId[], close: [] as PeerId[] };
  for (const [id, { verified }] of connections) (verified ? plan.rekey : plan.close).push(id);
  return plan;
}

/** Whether a signal starts a new connection: only an offer, from a peer that signaling announced
 * (in `welcome` or `peer_joined`) and that we have no connection with. Anything else from a
 * stranger is dropped, never answered. */
export function opensConnection(data: SignalData, announced: boolean, connected: boolean): boolean {
  return !connected && announced && "sdp" in data && data.sdp.type === "offer";
}

/** What we tell the person when a connection is given up: the peer leaves the participant list,
 * and this says why. */
export function lostPeerNotice(name: string, cause: { kind: "intercepted" } | { kind: "failed"; reason: string }): string {
  if (cause.kind === "intercepted") {
    return `The connection to ${name} may be intercepted (or they hold another key to this meeting), so it was closed. Check the link you both used.`;
  }
  return `The connection to ${name} was lost: ${cause.reason}.`;
}

/** What we tell the person when a TURN relay fails us (the ICE agent's `icecandidateerror`): its
 * STUN error code, or one of the browser's own in 700–799 (no answer, unreachable). Worded as
 * the engine words it (confab-core's turn_probe). */
export function relayProblemNotice(url: string, code: number, text: string): string {
  const unusable = "peers that can meet only through it will not connect";
  const why = [code, text].filter((part) => part !== "" && part !== 0).join(" ");
  if (code === 401) {
    return `The relay ${url} refused this meeting's credentials (${why}): they have expired, or the signaling server's TURN secret is not the relay's; ${unusable}.`;
  }
  if (code >= 700) return `The relay ${url} cannot be reached (${why}); ${unusable}.`;
  return `The relay ${url} refused to relay for us (${why}); ${unusable}.`;
}
