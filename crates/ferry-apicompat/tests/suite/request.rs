// tests for the request direction
