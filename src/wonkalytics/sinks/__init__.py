"""Where rows go. The SQL table sink is the default; others plug into the same writer."""
