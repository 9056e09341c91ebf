"""Record building: one ``Interaction`` or event dict -> one row dict, by pure functions.

No I/O, no clock, no globals, no logging; runs on the writer thread. The composition lives in
:mod:`.pipeline` (``interaction_row``, ``event_row``); the last step, :func:`.columns.fit_to_table`,
fits a row onto a table. One module per idea: :mod:`.flatten` (the seed's ``PARENT_CHILD`` keys and
``kwargs_``/``request_`` prefixes), :mod:`.identity` (Azure auth), :mod:`.messages` (the prompt as
text), :mod:`.params` (SDK arguments), :mod:`.columns` (matching and coercion).
"""
