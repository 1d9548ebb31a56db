#!/bin/sh
# Starts GNOME Keyring's secret service in this D-Bus session with its login collection unlocked
# (made with the password $1 in a fresh HOME), as a desktop login does; returns once it answers
# on the bus. Asked for secrets before then, D-Bus would start a second daemon, a locked one,
# and the app would meet a password prompt nobody can answer. Used by the desktop's tests.
echo -n "${1:?the keyring password}" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
for _ in $(seq 200); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
    grep -q "boolean true" && exit 0
  sleep 0.05
done
echo "unlock-keyring: the secret service never came up on the session bus" >&2
exit 1
