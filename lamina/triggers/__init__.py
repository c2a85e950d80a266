"""Push event sources: schedules and object events that invoke functions asynchronously."""
