"""The neutral kernel: types and ports every other layer builds on; imports nothing of the project."""
