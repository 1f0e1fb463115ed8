#!/bin/sh
# Gammu SMSD RunOnReceive hook: post each received SMS to smsgate and send the reply back.
#
# In /etc/gammu-smsdrc:
#   [smsd]
#   RunOnReceive = /usr/local/bin/gammu-smsd-runonreceive.sh
# and in the environment of gammu-smsd (e.g. a systemd drop-in):
#   SMSGATE_URL=https://smsgate.example.org/webhooks/kannel
#   SMSGATE_KANNEL_SECRET=<the same secret as the smsgate server>
#
# Gammu runs the script with the inbox ids of the message parts as arguments and the message
# in SMS_MESSAGES, SMS_<n>_NUMBER, SMS_<n>_TEXT (and DECODED_* for joined multipart messages);
# the first inbox id is a unique, stable id for the message, so a rerun is deduplicated.
# The reply (text/plain, empty when there is nothing to send) goes out with gammu-smsd-inject.
set -eu

: "${SMSGATE_URL:?set SMSGATE_URL}"
: "${SMSGATE_KANNEL_SECRET:?set SMSGATE_KANNEL_SECRET}"

number="${SMS_1_NUMBER:-}"
[ -n "$number" ] || exit 0
# A multipart message arrives as several parts; Gammu joins the text in DECODED_1_TEXT when it can.
if [ "${DECODED_PARTS:-0}" -gt 0 ] && [ -n "${DECODED_1_TEXT:-}" ]; then
    text="$DECODED_1_TEXT"
else
    text=""
    i=1
    while [ "$i" -le "${SMS_MESSAGES:-1}" ]; do
        eval "part=\${SMS_${i}_TEXT:-}"
        text="$text$part"
        i=$((i + 1))
    done
fi
id="gammu:${1:-$(date +%s)-$number}"

reply=$(curl --silent --show-error --fail --max-time 30 \
    -H "X-Smsgate-Secret: $SMSGATE_KANNEL_SECRET" \
    --data-urlencode "sender=$number" \
    --data-urlencode "text=$text" \
    --data-urlencode "id=$id" \
    --data-urlencode "time=$(date +%s)" \
    --data-urlencode "smsc=gammu" \
    "$SMSGATE_URL")

if [ -n "$reply" ]; then
    gammu-smsd-inject TEXT "$number" -text "$reply"
fi
