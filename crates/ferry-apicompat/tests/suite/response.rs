// tests for the response direction
