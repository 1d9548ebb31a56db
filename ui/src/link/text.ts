// Text from peers, made safe to show: no control, invisible or text-direction characters (they
// make a name look empty, or like someone else's).

const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

export function stripHidden(text: string): string {
  return text.replace(HIDDEN, "");
}
