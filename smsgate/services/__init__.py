"""Domain services. Each takes a session from its caller; the caller owns the transaction."""
