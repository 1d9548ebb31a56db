// What to tell a person the server would not let in: what happened and what to do about it.
import type { ErrorCode } from "../gen/protocol";

export interface RefusalText {
  title: string;
  detail: string;
  /** The button that reloads the page (back to the pre-join form), when trying again can help. */
  retry: string | null;
}

/** The words for a refusal during a join; `message` is the server's own. */
export function refusalText(code: ErrorCode, message: string): RefusalText {
  switch (code) {
    case "room_full": {
      const people = /\((\d+) people\)/.exec(message)?.[1];
      const size = people ? `${people} ${people === "1" ? "person" : "people"}` : "as many people as the server allows";
      return {
        title: "This meeting is full",
        detail: `It already has ${size}. Ask the host whether someone can leave, then try again.`,
        retry: "Try again",
      };
    }
    case "unsupported_version":
      return {
        title: "Your app is out of date",
        detail: "This page speaks an older version of Confab than the server. Reload the page to get the current one.",
        retry: "Reload the page",
      };
    case "bad_room":
      return {
        title: "This link does not work",
        detail: "The server does not accept the meeting in this link. Ask the person who sent it for the link again.",
        retry: null,
      };
    case "bad_token":
      if (/refused your access token/.test(message)) {
        return {
          title: "Your access token was refused",
          detail: "The server did not accept the access token this page gave it. Start the meeting again from the start page with the right one, or ask the person who invited you for the link.",
          retry: null,
        };
      }
      return {
        title: "This meeting has not started",
        detail:
          "On this server only people with an access token start meetings. Once the person who invited you has joined, this link works: try again then.",
        retry: "Try again",
      };
    case "join_timeout":
      return {
        title: "Joining took too long",
        detail: "The server did not hear from this page in time. Check your network connection and try again.",
        retry: "Try again",
      };
    case "bad_message":
      return {
        title: "The server did not let you in",
        detail: `It said: “${message}”. Check your name, then try again; if it happens again, reload the page.`,
        retry: "Try again",
      };
    default:
      return {
        title: "Cannot join this meeting",
        detail: `The server said: “${message}” (${code}). Try again in a moment.`,
        retry: "Try again",
      };
  }
}
