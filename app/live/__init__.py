"""Live training sessions streamed over WebSockets."""
