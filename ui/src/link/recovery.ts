// Keeping a connection up, as confab-core decides it (crates/core/src/peer/recovery.rs; both
// pass tests/vectors/recovery.json): when to restart ICE, and when to give the connection up.
import { ICE_RESTART_AFTER_MS, ICE_RESTART_EVERY_MS, ICE_RESTART_GIVE_UP_MS } from "../gen/constants";

export type RecoveryInput = "up" | "down" | "failed" | "network_changed" | "signaling_back" | "tick";
export type RecoveryAction = "restart" | "give_up" | null;

export class Recovery {
  /** The connection has been up: until then, failing is the connect timeout's business. */
  private wasUp = false;
  private downSinceMs: number | null = null;
  private restartedAtMs: number | null = null;

  /** Down after having been up: the UI says "reconnecting". */
  get reconnecting(): boolean {
    return this.downSinceMs !== null;
  }

  handle(nowMs: number, input: RecoveryInput): RecoveryAction {
    switch (input) {
      case "up":
        this.wasUp = true;
        this.downSinceMs = null;
        this.restartedAtMs = null;
        return null;
      case "down":
        if (this.wasUp) this.downSinceMs ??= nowMs;
        return null;
      case "failed": {
        if (!this.wasUp) return "give_up";
        this.downSinceMs ??= nowMs;
        // ICE reports the generation it gave up; a restart just made is a new one.
        const recent = this.restartedAtMs !== null && nowMs - this.restartedAtMs < ICE_RESTART_AFTER_MS;
        return recent ? null : this.restart(nowMs);
      }
      case "network_changed":
        return this.wasUp ? this.restart(nowMs) : null;
      case "signaling_back":
        return this.reconnecting ? this.restart(nowMs) : null;
      case "tick": {
        if (this.downSinceMs === null) return null;
        const downFor = nowMs - this.downSinceMs;
        if (downFor >= ICE_RESTART_GIVE_UP_MS) return "give_up";
        const due =
          this.restartedAtMs === null
            ? downFor >= ICE_RESTART_AFTER_MS
            : nowMs - this.restartedAtMs >= ICE_RESTART_EVERY_MS;
        return due ? this.restart(nowMs) : null;
      }
    }
  }

  private restart(nowMs: number): RecoveryAction {
    this.restartedAtMs = nowMs;
    return "restart";
  }
}
