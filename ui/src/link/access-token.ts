// The access token a person gave this tab to make a meeting, on a server that asks for one
// (docs/protocol.md, "Access tokens"). Kept for the tab only (sessionStorage) and sent with each
// join, so that after a server restart, which forgets which meetings were open, this tab can
// open its meeting again.
const KEY = "confab.access-token";

export function rememberAccessToken(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // Storage refused (a private window's quota): the token served its first purpose.
  }
}

export function accessToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined;
  }
}
