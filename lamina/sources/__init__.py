"""Pull event sources: event source mappings that poll queues and streams and invoke with batches."""
