"""The outgoing side: everything ``smsgate worker`` sends out of the deployment.

- ``worker``: the job registry and the loop ``smsgate worker`` runs;
- ``retry``: leases, the backoff and the retryable-status rule every queue shares;
- ``senders``: one SMS through one provider's send API;
- ``sms_job``: the ``outbound`` job sending queued SMS under per-provider token buckets;
- ``destinations``, ``event_queue``, ``event_job``: delivering outbox events to the tally;
- ``outbox_cli``: ``smsgate outbox status|retry``; ``sqlite_lock``: one worker per SQLite file.

What runs inside an inbound transaction (queueing a reply, writing an event) lives in
``smsgate.services`` and never imports this package: the services decide, the worker sends.
"""
