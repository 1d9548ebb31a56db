// Text from people, checked and made safe to show: no control, invisible or text-direction
// characters (they make a name look empty, or like someone else's). The rules are confab-proto's
// (`DisplayName::new`), held equal by tests/vectors/display-name.json.
import { MAX_NAME_CHARS } from "../gen/constants";

/** Unicode's Cc, then the zero-width, filler and direction characters confab-proto refuses. */
const HIDDEN_CLASS =
  "\\u0000-\\u001f\\u007f-\\u009f\\u034f\\u061c\\u115f\\u1160\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2069\\u3164\\ufeff\\uffa0";
const HIDDEN = new RegExp(`[${HIDDEN_CLASS}]`, "g");
const FIRST_HIDDEN = new RegExp(`[${HIDDEN_CLASS}]`);
/** Unicode's White_Space, which Rust's `trim` removes. Not JavaScript's `trim`: that one also
 * takes U+FEFF (which confab-proto refuses as invisible) and leaves U+0085. */
const WHITE_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const AROUND = new RegExp(`^[${WHITE_SPACE}]+|[${WHITE_SPACE}]+$`, "g");

export function stripHidden(text: string): string {
  return text.replace(HIDDEN, "");
}

/** `text` without the white space around it, as confab-proto trims. */
export function trimWhiteSpace(text: string): string {
  return text.replace(AROUND, "");
}

export type NameCheck =
  | { ok: true; name: string }
  | { ok: false; problem: "name_length"; chars: number }
  /** `char` is the first refused character, as `U+XXXX`. */
  | { ok: false; problem: "name_characters"; char: string };

/** A display name as the signaling service will take it (trimmed), or why it will refuse it. */
export function checkDisplayName(input: string): NameCheck {
  const name = trimWhiteSpace(input);
  const chars = [...name].length;
  if (chars === 0 || chars > MAX_NAME_CHARS) return { ok: false, problem: "name_length", chars };
  const hidden = FIRST_HIDDEN.exec(name);
  if (hidden) {
    const code = hidden[0].codePointAt(0)?.toString(16).toUpperCase().padStart(4, "0");
    return { ok: false, problem: "name_characters", char: `U+${code}` };
  }
  return { ok: true, name };
}
