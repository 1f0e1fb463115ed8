#!/bin/sh
# Gammu SMSD RunOnReceive hook: hand the received message to smsgate's spool and exit at once.
#
# Gammu waits for this program before it reads the next SMS, kills it after about two minutes
# and may run it again for the same message, so it does no network I/O: it writes the message
# to a spool directory that `smsgate gammu forward` posts to smsgate, with retries.
#
# In /etc/gammu-smsdrc:
#   [smsd]
#   PhoneID = modem-banjar-1          # names this modem in smsgate (inbound_messages.device)
#   RunOnReceive = /usr/local/bin/gammu-smsd-runonreceive.sh
# and optionally, in gammu-smsd's environment, SMSGATE_GAMMU_SPOOL (default below).
#
# Gammu passes the inbox ids of the message's parts as arguments and describes the message in
# SMS_MESSAGES, SMS_<n>_NUMBER, SMS_<n>_TEXT, SMS_<n>_CLASS, SMS_<n>_REFERENCE, DECODED_PARTS,
# DECODED_<n>_TEXT and PHONE_ID. A spool file is those variables, NUL-separated NAME=value,
# plus SMSGATE_IDS (the arguments) and SMSGATE_SPOOLED_AT (Unix seconds); it appears under its
# final name only once complete (written aside, then renamed).
set -eu

spool="${SMSGATE_GAMMU_SPOOL:-/var/spool/smsgate-gammu}"
mkdir -p "$spool"
name="$(date +%s)-$$-${1:-none}"
name="$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.+-' '_')"
tmp="$spool/.$name.tmp"
{
    env -0 | grep -z -E '^(SMS_MESSAGES|DECODED_PARTS|PHONE_ID|SMS_[0-9]+_[A-Z]+|DECODED_[0-9]+_[A-Z_]+)=' || true
    printf 'SMSGATE_IDS=%s\0SMSGATE_SPOOLED_AT=%s\0' "$*" "$(date +%s)"
} > "$tmp"
mv "$tmp" "$spool/$name"
