"""Record building: one ``Interaction`` or event dict -> one row dict, by pure functions.

Runs on the writer's lanes, through the builder the recorder hands them (:mod:`.build`). The
composition lives in :mod:`.pipeline` (``interaction_row``, ``event_row``); fitting a row onto a
table is the sink's, in :mod:`wonkalytics.store.fit` (:mod:`.columns` re-exports it for old imports).
One module per idea: :mod:`.flatten` (the seed's ``PARENT_CHILD`` keys and ``kwargs_``/``request_``
prefixes), :mod:`.identity` (Azure auth), :mod:`.messages` (the prompt as text), :mod:`.params` (SDK
arguments), :mod:`.cost` (prices; it keeps a cache and reads the prices file it is handed, see
docs/architecture.md), :mod:`.secrets` and :mod:`.redact` (what never leaves the process).
"""
