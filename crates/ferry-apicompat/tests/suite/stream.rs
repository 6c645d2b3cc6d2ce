// tests for the stream direction
