"""Background execution of imports: RQ on Redis, or an in-process thread without Redis."""
